"""AttnGAN reference networks (Xu et al., "AttnGAN: Fine-Grained Text to Image Generation with
Attentional Generative Adversarial Networks", CVPR 2018), in PyTorch.

The architecture and the ``state_dict()`` key names are those of the authors' release
(taoxugit/AttnGAN, ``code/model.py`` and ``code/GlobalAttention.py``), so that a checkpoint of
theirs (``netG_*.pth``, ``text_encoder*.pth``, the projections of ``image_encoder*.pth``) loads
into these modules with ``load_state_dict`` and gives their outputs. ``nn.Sequential`` children
sit at the authors' indices (e.g. ``h_net1.fc.0`` Linear, ``h_net1.fc.1`` BatchNorm1d,
``*.upsample*.1`` conv, ``*.upsample*.2`` BatchNorm, ``*.residual.N.block.{0,1,3,4}``,
``img_net*.img.0``).

Interface changes only: sizes are constructor arguments instead of the global ``cfg``, and
``CA_NET``'s standard normal draw ``eps`` is a ``forward`` argument. Forward semantics are the
authors', including:

- ``CA_NET``: Linear(t_dim, 4 c_dim) -> GLU -> first c_dim values are mu, the rest logvar;
  c = eps * exp(logvar / 2) + mu.
- ``INIT_STAGE_G`` concatenates ``[c_code, z_code]`` (condition first).
- ``GlobalAttentionGeneral`` masks padding words with ``mask.repeat(queryL, 1)`` against
  attention rows laid out batch-major (row ``b * queryL + q``), so with more than one caption
  in the batch, region ``q`` of sample ``b`` gets the mask of sample ``(b * queryL + q) % B``.
- Upsampling is nearest x2, every block ends in a GLU (first half times sigmoid of the second
  half along channels), batch norms use running statistics in ``eval()``.

Shapes (B batch, T words, G = ngf, E = text_dim, C = condition_dim, Z = z_dim):
``G_NET.forward(z [B,Z], sent_emb [B,E], word_embs [B,E,T], mask [B,T] bool, eps [B,C])``
returns images ``[B,3,64,64]``, ``[B,3,128,128]``, ``[B,3,256,256]`` (one per branch),
attention maps ``[B,T,64,64]`` (h_net2, on the 64x64 features) and ``[B,T,128,128]``
(h_net3), mu and logvar ``[B,C]``.
"""

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

__all__ = [
    "GLU",
    "conv1x1",
    "conv3x3",
    "upBlock",
    "ResBlock",
    "CA_NET",
    "INIT_STAGE_G",
    "GlobalAttentionGeneral",
    "NEXT_STAGE_G",
    "GET_IMAGE_G",
    "G_NET",
    "RNN_ENCODER",
    "CNN_ENCODER_PROJ",
]


class GLU(nn.Module):
    """Gated linear unit over dim 1: ``x[:, :n] * sigmoid(x[:, n:])`` with n = channels / 2."""

    def forward(self, x):
        half = x.size(1) // 2
        if 2 * half != x.size(1):
            raise ValueError(f"GLU needs an even channel count, got {x.size(1)}")
        return x[:, :half] * torch.sigmoid(x[:, half:])


def conv1x1(in_planes, out_planes, bias=False):
    """1x1 convolution, stride 1, no padding (no bias unless asked)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=1, padding=0, bias=bias)


def conv3x3(in_planes, out_planes):
    """3x3 convolution, stride 1, padding 1, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False)


def upBlock(in_planes, out_planes):
    """Nearest x2 -> conv3x3 to 2*out -> BatchNorm2d -> GLU: ``[B,in,H,W] -> [B,out,2H,2W]``.

    Children: 0 Upsample, 1 Conv2d, 2 BatchNorm2d, 3 GLU.
    """
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        conv3x3(in_planes, 2 * out_planes),
        nn.BatchNorm2d(2 * out_planes),
        GLU(),
    )


class ResBlock(nn.Module):
    """``x + block(x)``, block = conv3x3(c, 2c), BN, GLU, conv3x3(c, c), BN (no final activation).

    Args:
        channel_num: channels c of the input and output.
    """

    def __init__(self, channel_num):
        super().__init__()
        self.block = nn.Sequential(
            conv3x3(channel_num, 2 * channel_num),
            nn.BatchNorm2d(2 * channel_num),
            GLU(),
            conv3x3(channel_num, channel_num),
            nn.BatchNorm2d(channel_num),
        )

    def forward(self, x):
        return self.block(x) + x


class CA_NET(nn.Module):
    """Conditioning augmentation with a GLU.

    Args:
        t_dim: width of the sentence embedding (``cfg.TEXT.EMBEDDING_DIM``, 256).
        c_dim: width of the condition (``cfg.GAN.CONDITION_DIM``, 100).

    ``forward(text_embedding [B,t_dim], eps [B,c_dim]) -> (c_code, mu, logvar)``, each
    ``[B,c_dim]``; ``eps`` is the standard normal draw the authors make inside forward.
    """

    def __init__(self, t_dim=256, c_dim=100):
        super().__init__()
        self.t_dim = t_dim
        self.c_dim = c_dim
        self.fc = nn.Linear(t_dim, 4 * c_dim, bias=True)
        self.glu = GLU()

    def encode(self, text_embedding):
        h = self.glu(self.fc(text_embedding))  # [B, 2C]
        return h[:, : self.c_dim], h[:, self.c_dim :]

    @staticmethod
    def reparametrize(mu, logvar, eps):
        return eps * torch.exp(0.5 * logvar) + mu

    def forward(self, text_embedding, eps):
        mu, logvar = self.encode(text_embedding)
        return self.reparametrize(mu, logvar, eps), mu, logvar


class INIT_STAGE_G(nn.Module):
    """First stage: ``[c_code, z_code]`` -> 4x4 x ngf -> four up-blocks -> 64x64 x ngf/16.

    Args:
        ngf: channels of the 4x4 map (``G_NET`` passes 16 * its ngf).
        ncf: condition width (``cfg.GAN.CONDITION_DIM``).
        z_dim: noise width (``cfg.GAN.Z_DIM``).

    ``forward(z_code [B,z_dim], c_code [B,ncf]) -> [B, ngf/16, 64, 64]``.
    """

    def __init__(self, ngf, ncf, z_dim=100):
        super().__init__()
        self.gf_dim = ngf
        self.in_dim = z_dim + ncf
        self.fc = nn.Sequential(
            nn.Linear(self.in_dim, ngf * 4 * 4 * 2, bias=False),
            nn.BatchNorm1d(ngf * 4 * 4 * 2),
            GLU(),
        )
        self.upsample1 = upBlock(ngf, ngf // 2)
        self.upsample2 = upBlock(ngf // 2, ngf // 4)
        self.upsample3 = upBlock(ngf // 4, ngf // 8)
        self.upsample4 = upBlock(ngf // 8, ngf // 16)

    def forward(self, z_code, c_code):
        x = self.fc(torch.cat((c_code, z_code), dim=1))  # condition first
        x = x.view(-1, self.gf_dim, 4, 4)
        x = self.upsample1(x)  # 8x8
        x = self.upsample2(x)  # 16x16
        x = self.upsample3(x)  # 32x32
        return self.upsample4(x)  # 64x64


class GlobalAttentionGeneral(nn.Module):
    """Word attention of the generator (paper Eq. 2).

    Args:
        idf: channels of the image features (queries), the generator's ngf.
        cdf: width of the word features (context), ``cfg.TEXT.EMBEDDING_DIM``.

    Set the padding mask with ``applyMask(mask)`` (``[B,T]``, true/1 at padding words) as the
    authors' ``NEXT_STAGE_G`` does, then ``forward(input [B,idf,H,W], context [B,cdf,T])``
    returns the word-context ``[B,idf,H,W]`` and the attention ``[B,T,H,W]``.

    The mask is laid out as the authors do it: ``mask.repeat(queryL, 1)`` (row r is sample
    ``r % B``) against the attention viewed as ``[B*queryL, T]`` (row r is sample
    ``r // queryL``), so regions get other samples' masks when B > 1.
    """

    def __init__(self, idf, cdf):
        super().__init__()
        self.conv_context = conv1x1(cdf, idf)
        self.sm = nn.Softmax(dim=1)
        self.mask = None

    def applyMask(self, mask):
        self.mask = mask

    def forward(self, input, context):
        batch, _, height, width = input.shape
        query_len = height * width
        source_len = context.size(2)

        queries = input.reshape(batch, -1, query_len).transpose(1, 2)  # [B, N, idf]
        words = self.conv_context(context.unsqueeze(3)).squeeze(3)  # [B, idf, T]

        scores = torch.bmm(queries, words).reshape(batch * query_len, source_len)
        if self.mask is not None:
            rows = self.mask.repeat(query_len, 1).to(torch.bool)  # [N*B, T], row r: sample r % B
            scores = scores.masked_fill(rows, float("-inf"))
        weights = self.sm(scores).reshape(batch, query_len, source_len)
        weights = weights.transpose(1, 2).contiguous()  # [B, T, N]

        weighted = torch.bmm(words, weights)  # [B, idf, N]
        return (
            weighted.reshape(batch, -1, height, width),
            weights.reshape(batch, -1, height, width),
        )


class NEXT_STAGE_G(nn.Module):
    """Later stage: word attention, ``[h, context]`` -> r_num ResBlocks -> up-block.

    Args:
        ngf: channels of the incoming (and outgoing) features.
        nef: width of the word features.
        ncf: condition width (kept as an attribute; the authors' stage does not use c).
        r_num: residual blocks (``cfg.GAN.R_NUM``, 2).

    ``forward(h_code [B,ngf,S,S], c_code, word_embs [B,nef,T], mask [B,T])``
    -> ``([B,ngf,2S,2S], attention [B,T,S,S])``.
    """

    def __init__(self, ngf, nef, ncf, r_num=2):
        super().__init__()
        self.gf_dim = ngf
        self.ef_dim = nef
        self.cf_dim = ncf
        self.num_residual = r_num
        self.att = GlobalAttentionGeneral(ngf, nef)
        self.residual = nn.Sequential(*[ResBlock(2 * ngf) for _ in range(r_num)])
        self.upsample = upBlock(2 * ngf, ngf)

    def forward(self, h_code, c_code, word_embs, mask):
        self.att.applyMask(mask)
        context, att = self.att(h_code, word_embs)
        x = self.residual(torch.cat((h_code, context), dim=1))
        return self.upsample(x), att


class GET_IMAGE_G(nn.Module):
    """Image head: conv3x3(ngf, 3) -> tanh (children ``img.0``, ``img.1``).

    ``forward([B,ngf,S,S]) -> [B,3,S,S]`` in [-1, 1].
    """

    def __init__(self, ngf):
        super().__init__()
        self.gf_dim = ngf
        self.img = nn.Sequential(conv3x3(ngf, 3), nn.Tanh())

    def forward(self, h_code):
        return self.img(h_code)


class G_NET(nn.Module):
    """The AttnGAN generator.

    Args:
        ngf: ``cfg.GAN.GF_DIM`` (birds 32): every stage's features have this many channels,
            the first stage's 4x4 map 16 times as many.
        text_dim: ``cfg.TEXT.EMBEDDING_DIM`` (256): sentence and word feature width.
        condition_dim: ``cfg.GAN.CONDITION_DIM`` (100).
        z_dim: ``cfg.GAN.Z_DIM`` (100).
        r_num: ``cfg.GAN.R_NUM`` (2), residual blocks per later stage.
        branch_num: ``cfg.TREE.BRANCH_NUM`` (3): stages at 64, 128, 256 px, 1 to 3.

    ``forward(z [B,z_dim], sent_emb [B,text_dim], word_embs [B,text_dim,T], mask [B,T],
    eps [B,condition_dim]) -> (fake_imgs, att_maps, mu, logvar)``: ``fake_imgs`` one
    ``[B,3,S,S]`` per stage (S = 64, 128, 256), ``att_maps`` one per later stage,
    ``[B,T,64,64]`` then ``[B,T,128,128]``; ``mask`` is true at padding words.
    """

    def __init__(self, ngf=32, text_dim=256, condition_dim=100, z_dim=100, r_num=2, branch_num=3):
        super().__init__()
        if not 1 <= branch_num <= 3:
            raise ValueError(f"branch_num must be 1, 2 or 3, got {branch_num}")
        self.branch_num = branch_num
        self.ca_net = CA_NET(text_dim, condition_dim)
        self.h_net1 = INIT_STAGE_G(16 * ngf, condition_dim, z_dim)
        self.img_net1 = GET_IMAGE_G(ngf)
        if branch_num > 1:
            self.h_net2 = NEXT_STAGE_G(ngf, text_dim, condition_dim, r_num)
            self.img_net2 = GET_IMAGE_G(ngf)
        if branch_num > 2:
            self.h_net3 = NEXT_STAGE_G(ngf, text_dim, condition_dim, r_num)
            self.img_net3 = GET_IMAGE_G(ngf)

    def forward(self, z_code, sent_emb, word_embs, mask, eps):
        fake_imgs, att_maps = [], []
        c_code, mu, logvar = self.ca_net(sent_emb, eps)
        h = self.h_net1(z_code, c_code)
        fake_imgs.append(self.img_net1(h))
        if self.branch_num > 1:
            h, att = self.h_net2(h, c_code, word_embs, mask)
            fake_imgs.append(self.img_net2(h))
            att_maps.append(att)
        if self.branch_num > 2:
            h, att = self.h_net3(h, c_code, word_embs, mask)
            fake_imgs.append(self.img_net3(h))
            att_maps.append(att)
        return fake_imgs, att_maps, mu, logvar


class RNN_ENCODER(nn.Module):
    """DAMSM text encoder: embedding -> dropout -> bidirectional LSTM (or GRU), batch first.

    Args:
        ntoken: vocabulary size (rows of ``encoder``), ``<end>`` = 0 included.
        ninput: word embedding width (300).
        drop_prob: dropout on the embeddings (0.5; active in ``train()`` only). The authors
            also pass it to the RNN, where with one layer it does nothing; here it is passed
            only when ``nlayers > 1`` (same network, no PyTorch warning).
        nhidden: output feature width D; each direction has ``nhidden // 2`` units when
            bidirectional (the authors' DAMSM uses 256).
        nlayers: RNN layers (1).
        bidirectional: True in the authors' use.
        rnn_type: ``'LSTM'`` (``cfg.RNN_TYPE``) or ``'GRU'``.

    ``forward(captions [B,T] int64, cap_lens [B] int64 sorted descending, hidden=None)``
    -> ``(words_emb [B,D,Tmax], sent_emb [B,D])`` with Tmax = max(cap_lens); word features
    are zero past each length (``pad_packed_sequence``); ``sent_emb`` is the last hidden state
    of each direction, forward first.
    """

    def __init__(
        self,
        ntoken,
        ninput=300,
        drop_prob=0.5,
        nhidden=256,
        nlayers=1,
        bidirectional=True,
        rnn_type="LSTM",
    ):
        super().__init__()
        self.ntoken = ntoken
        self.ninput = ninput
        self.drop_prob = drop_prob
        self.nlayers = nlayers
        self.bidirectional = bidirectional
        self.rnn_type = rnn_type
        self.num_directions = 2 if bidirectional else 1
        self.nhidden = nhidden // self.num_directions

        self.encoder = nn.Embedding(ntoken, ninput)
        self.drop = nn.Dropout(drop_prob)
        rnn_dropout = drop_prob if nlayers > 1 else 0.0
        if rnn_type == "LSTM":
            rnn_class = nn.LSTM
        elif rnn_type == "GRU":
            rnn_class = nn.GRU
        else:
            raise ValueError(f"rnn_type must be 'LSTM' or 'GRU', got {rnn_type!r}")
        self.rnn = rnn_class(
            ninput,
            self.nhidden,
            nlayers,
            batch_first=True,
            dropout=rnn_dropout,
            bidirectional=bidirectional,
        )
        # The authors' init: embedding rows uniform in [-0.1, 0.1], RNN left at PyTorch's.
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        shape = (self.nlayers * self.num_directions, bsz, self.nhidden)
        if self.rnn_type == "LSTM":
            return (weight.new_zeros(shape), weight.new_zeros(shape))
        return weight.new_zeros(shape)

    def forward(self, captions, cap_lens, hidden=None):
        if hidden is None:
            hidden = self.init_hidden(captions.size(0))
        emb = self.drop(self.encoder(captions))  # [B, T, ninput]
        lengths = [int(n) for n in cap_lens.tolist()]
        packed = pack_padded_sequence(emb, lengths, batch_first=True)
        output, hidden = self.rnn(packed, hidden)
        output = pad_packed_sequence(output, batch_first=True)[0]  # [B, Tmax, D]
        words_emb = output.transpose(1, 2)  # [B, D, Tmax]
        last = hidden[0] if self.rnn_type == "LSTM" else hidden  # [layers*dirs, B, H]
        sent_emb = last.transpose(0, 1).contiguous()
        sent_emb = sent_emb.view(-1, self.nhidden * self.num_directions)
        return words_emb, sent_emb


class CNN_ENCODER_PROJ(nn.Module):
    """The two trainable projections of the authors' ``CNN_ENCODER`` (its frozen Inception-v3
    is left out; in their checkpoint its tensors sit beside these under torchvision names).

    Args:
        nef: joint feature width D (256).
        local_dim: channels of Inception's Mixed_6e output (768).
        global_dim: width of the pooled Mixed_7c output (2048).

    ``forward(features [B,768,h,w], cnn_code [B,2048]) -> (features [B,D,h,w], cnn_code [B,D])``:
    ``emb_features`` is a bias-free 1x1 conv, ``emb_cnn_code`` a Linear with bias.
    """

    def __init__(self, nef=256, local_dim=768, global_dim=2048):
        super().__init__()
        self.nef = nef
        self.emb_features = conv1x1(local_dim, nef)
        self.emb_cnn_code = nn.Linear(global_dim, nef)
        nn.init.uniform_(self.emb_features.weight, -0.1, 0.1)
        nn.init.uniform_(self.emb_cnn_code.weight, -0.1, 0.1)

    def forward(self, features, cnn_code):
        return self.emb_features(features), self.emb_cnn_code(cnn_code)

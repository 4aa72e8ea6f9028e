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


# ---------------------------------------------------------------------------------------------
# Added for tools/gpu_bench_pytorch.py: the discriminators, losses, DAMSM term and training
# step of OUR Rust AttnGAN (src/attngan.rs, src/damsm.rs, train/src/attngan/train.rs), written
# from the Rust code. Module and attribute names are the Rust field names; heads return logits
# and the losses use BCE-with-logits.
# ---------------------------------------------------------------------------------------------

import torch.nn.functional as F  # noqa: E402

__all__ += [
    "LEAK",
    "orthogonal_scale_init",
    "DownBlock",
    "LeakyBlock3x3",
    "ImageEncoder16",
    "DGetLogits",
    "DNet64",
    "DNet128",
    "DNet256",
    "AttnGanDiscriminators",
    "bce_with_logits",
    "kl_loss",
    "discriminator_stage_loss",
    "generator_loss",
    "cosine_matrix",
    "batch_matching_loss",
    "word_scores",
    "damsm_loss",
    "damsm_term",
    "attngan_train_step",
]

LEAK = 0.2
# Score given to masked entries before a softmax (the Rust `MASKED`).
MASKED = -1e9


def orthogonal_scale_init(module):
    """The Rust init (``orthogonal_scale``): conv and linear weights Gaussian with variance
    1 / max(out, in k k), linear biases 0, batch-norm gamma N(1, 0.02) and beta 0 (logit-conv
    biases keep PyTorch's default, as the Rust keeps burn's)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            rows = m.weight.shape[0]
            cols = m.weight[0].numel()
            nn.init.normal_(m.weight, 0.0, 1.0 / max(rows, cols) ** 0.5)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


class DownBlock(nn.Module):
    """4x4 conv stride 2 (no bias) -> BN -> LeakyReLU 0.2: ``[B,in,S,S] -> [B,out,S/2,S/2]``."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.leaky_relu(self.bn(self.conv(x)), LEAK)


class LeakyBlock3x3(nn.Module):
    """3x3 conv (no bias) -> BN -> LeakyReLU 0.2."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = conv3x3(cin, cout)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.leaky_relu(self.bn(self.conv(x)), LEAK)


class ImageEncoder16(nn.Module):
    """Four stride-2 4x4 convs with LeakyReLU, BN on all but the first:
    ``[B,3,S,S] -> [B,8F,S/16,S/16]``."""

    def __init__(self, ndf):
        super().__init__()
        f = ndf
        self.conv1 = nn.Conv2d(3, f, 4, 2, 1, bias=False)
        self.conv2 = nn.Conv2d(f, 2 * f, 4, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * f)
        self.conv3 = nn.Conv2d(2 * f, 4 * f, 4, 2, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * f)
        self.conv4 = nn.Conv2d(4 * f, 8 * f, 4, 2, 1, bias=False)
        self.bn4 = nn.BatchNorm2d(8 * f)

    def forward(self, image):
        x = F.leaky_relu(self.conv1(image), LEAK)
        x = F.leaky_relu(self.bn2(self.conv2(x)), LEAK)
        x = F.leaky_relu(self.bn3(self.conv3(x)), LEAK)
        return F.leaky_relu(self.bn4(self.conv4(x)), LEAK)


class DGetLogits(nn.Module):
    """With a condition width: the 4x4 code joined with the sentence feature replicated 4x4
    through a LeakyBlock3x3 first; then a 4x4 stride-4 conv (with bias) to one logit [B]."""

    def __init__(self, ndf, condition_dim=None):
        super().__init__()
        width = 8 * ndf
        self.joint_conv = (
            None if condition_dim is None else LeakyBlock3x3(width + condition_dim, width)
        )
        self.outlogits = nn.Conv2d(width, 1, 4, stride=4, bias=True)

    def forward(self, code, condition=None):
        b, _, size, _ = code.shape
        x = code
        if self.joint_conv is not None and condition is not None:
            grid = condition.view(b, -1, 1, 1).expand(b, condition.shape[1], size, size)
            x = self.joint_conv(torch.cat([code, grid], 1))
        return self.outlogits(x).view(b)


class DNet64(nn.Module):
    """64x64 -> [B, 8F, 4, 4]."""

    def __init__(self, ndf=64, text_dim=256):
        super().__init__()
        self.img_code_s16 = ImageEncoder16(ndf)
        self.uncond_dnet = DGetLogits(ndf, None)
        self.cond_dnet = DGetLogits(ndf, text_dim)

    def forward(self, image):
        return self.img_code_s16(image)


class DNet128(nn.Module):
    """128x128 -> 8x8x8F -> 4x4x16F -> 4x4x8F."""

    def __init__(self, ndf=64, text_dim=256):
        super().__init__()
        f = ndf
        self.img_code_s16 = ImageEncoder16(f)
        self.img_code_s32 = DownBlock(8 * f, 16 * f)
        self.img_code_s32_1 = LeakyBlock3x3(16 * f, 8 * f)
        self.uncond_dnet = DGetLogits(f, None)
        self.cond_dnet = DGetLogits(f, text_dim)

    def forward(self, image):
        return self.img_code_s32_1(self.img_code_s32(self.img_code_s16(image)))


class DNet256(nn.Module):
    """256x256 -> 16x16x8F -> 8x8x16F -> 4x4x32F -> 4x4x16F -> 4x4x8F."""

    def __init__(self, ndf=64, text_dim=256):
        super().__init__()
        f = ndf
        self.img_code_s16 = ImageEncoder16(f)
        self.img_code_s32 = DownBlock(8 * f, 16 * f)
        self.img_code_s64 = DownBlock(16 * f, 32 * f)
        self.img_code_s64_1 = LeakyBlock3x3(32 * f, 16 * f)
        self.img_code_s64_2 = LeakyBlock3x3(16 * f, 8 * f)
        self.uncond_dnet = DGetLogits(f, None)
        self.cond_dnet = DGetLogits(f, text_dim)

    def forward(self, image):
        x = self.img_code_s64(self.img_code_s32(self.img_code_s16(image)))
        return self.img_code_s64_2(self.img_code_s64_1(x))


class AttnGanDiscriminators(nn.Module):
    """One discriminator per stage (``d_net64``, ``d_net128``, ``d_net256``)."""

    def __init__(self, ndf=64, text_dim=256, branch_num=3):
        super().__init__()
        self.d_net64 = DNet64(ndf, text_dim)
        self.d_net128 = DNet128(ndf, text_dim) if branch_num > 1 else None
        self.d_net256 = DNet256(ndf, text_dim) if branch_num > 2 else None
        self.nets = [n for n in (self.d_net64, self.d_net128, self.d_net256) if n is not None]

    def encode(self, stage, image):
        return self.nets[stage](image)

    def stage_logits(self, stage, real, fake, sentence):
        """Real and (detached) generated images of one stage, encoded in separate calls ->
        dict of cond_real, cond_fake, cond_wrong (real i with sentence i + 1), uncond_real,
        uncond_fake."""
        net = self.nets[stage]
        real = net(real)
        fake = net(fake)
        b = real.shape[0]
        if b < 2:
            raise ValueError(f"the mismatched pairs need a batch of at least 2, got {b}")
        return {
            "cond_real": net.cond_dnet(real, sentence),
            "cond_fake": net.cond_dnet(fake, sentence),
            "cond_wrong": net.cond_dnet(real[: b - 1], sentence[1:]),
            "uncond_real": net.uncond_dnet(real),
            "uncond_fake": net.uncond_dnet(fake),
        }

    def fake_logits(self, stage, fake, sentence):
        net = self.nets[stage]
        code = net(fake)
        return net.cond_dnet(code, sentence), net.uncond_dnet(code)


def bce_with_logits(logits, label):
    """mean(softplus(x) - y x): the Rust ``bce_with_logits``."""
    return (F.softplus(logits) - logits * label).mean()


def kl_loss(mu, logvar):
    """-0.5 mean(1 + logvar - mu^2 - exp(logvar))."""
    return -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp()).mean()


def discriminator_stage_loss(logits):
    """``(uncond_real + cond_real) / 2 + (uncond_fake + cond_fake + cond_wrong) / 3``."""
    real = bce_with_logits(logits["uncond_real"], 1.0) + bce_with_logits(logits["cond_real"], 1.0)
    fake = (
        bce_with_logits(logits["uncond_fake"], 0.0)
        + bce_with_logits(logits["cond_fake"], 0.0)
        + bce_with_logits(logits["cond_wrong"], 0.0)
    )
    return 0.5 * real + fake / 3.0


def generator_loss(stages, mu, logvar, kl_weight=1.0):
    """Every stage's ``(cond, uncond)`` fooling terms summed, plus ``kl_weight`` x KL."""
    total = kl_loss(mu, logvar) * kl_weight
    for cond, uncond in stages:
        total = total + bce_with_logits(uncond, 1.0) + bce_with_logits(cond, 1.0)
    return total


def _l2_norm(x, dim):
    """sqrt(sum x^2 + 1e-16) along ``dim``, kept (finite gradient at zero vectors)."""
    return (x.pow(2).sum(dim, keepdim=True) + 1e-16).sqrt()


def cosine_matrix(a, b):
    """[B, D] x [B, D] -> [B, B] cosines."""
    norms = (_l2_norm(a, 1) @ _l2_norm(b, 1).t()).clamp_min(1e-8)
    return (a @ b.t()) / norms


def batch_matching_loss(scores, same_class=None):
    """Cross-entropy of the batch posteriors both ways, matches on the diagonal; ``same_class``
    [B, B] bool (off the diagonal) takes same-class captions out of the softmax."""
    if same_class is not None:
        scores = scores.masked_fill(same_class, MASKED)
    batch = scores.shape[0]
    eye = torch.eye(batch, device=scores.device, dtype=scores.dtype)
    image_to_text = -(F.log_softmax(scores, 1) * eye).sum() / batch
    text_to_image = -(F.log_softmax(scores.t(), 1) * eye).sum() / batch
    return image_to_text, text_to_image


def word_scores(regions, words, padding, gamma1, gamma2):
    """Our ``word_scores``: every image against every caption at once.
    regions [B, D, h, w], words [Bc, D, T] (zero at padding), padding [Bc, T] bool
    -> (scores [B, Bc], each pair's own attention [B, T, h, w])."""
    batch, dim, height, width = regions.shape
    captions, _, max_words = words.shape
    n_regions = height * width
    regions = regions.reshape(batch, dim, n_regions)  # [Bi, D, R]
    pad = padding.view(1, 1, captions, max_words)
    all_words = words.transpose(0, 1).reshape(dim, captions * max_words)  # [D, Bc*T]
    region_rows = regions.transpose(1, 2).reshape(batch * n_regions, dim)  # [Bi*R, D]
    similarity = (region_rows @ all_words).reshape(batch, n_regions, captions, max_words)
    similarity = F.softmax(similarity.masked_fill(pad, MASKED), 3)  # over words
    attention = F.softmax(similarity * gamma1, 1)  # over regions
    context = torch.bmm(regions, attention.reshape(batch, n_regions, captions * max_words))
    context = context.reshape(batch, dim, captions, max_words)  # [Bi, D, Bc, T]
    words_b = words.transpose(0, 1).unsqueeze(0)  # [1, D, Bc, T]
    dots = (context * words_b).sum(1, keepdim=True)  # [Bi, 1, Bc, T]
    cosine = dots / (_l2_norm(context, 1) * _l2_norm(words_b, 1)).clamp_min(1e-8)
    real_words = (~pad).to(cosine.dtype)
    scores = ((cosine * gamma2).exp() * real_words).sum(3).log().reshape(batch, captions)
    diagonal = torch.arange(batch, device=regions.device) * (captions + 1)
    own = (
        attention.transpose(1, 2)
        .reshape(batch * captions, n_regions, max_words)
        .index_select(0, diagonal)
        .transpose(1, 2)
        .reshape(batch, max_words, height, width)
    )
    return scores, own


def damsm_loss(regions, global_feature, words, sentence, padding, same_class=None,
               gammas=(4.0, 5.0, 10.0)):
    """L_DAMSM = L1^w + L2^w + L1^s + L2^s (our ``damsm_loss(..).total()``)."""
    gamma1, gamma2, gamma3 = gammas
    w_scores, _ = word_scores(regions, words, padding, gamma1, gamma2)
    s_scores = cosine_matrix(global_feature, sentence)
    w1, w2 = batch_matching_loss(w_scores * gamma3, same_class)
    s1, s2 = batch_matching_loss(s_scores * gamma3, same_class)
    return w1 + w2 + s1 + s2


def damsm_term(images, inception, image_encoder, words, sentence, padding, same_class,
               image_size=299, gammas=(4.0, 5.0, 10.0)):
    """Our ``damsm_term``: generated images [B, 3, S, S] resized to ``image_size`` (bilinear,
    corners aligned) -> frozen Inception-v3 -> frozen DAMSM projections -> L_DAMSM."""
    if images.shape[-1] != image_size or images.shape[-2] != image_size:
        images = F.interpolate(images, size=(image_size, image_size), mode="bilinear",
                               align_corners=True)
    local, pool3 = inception(images)
    regions, global_feature = image_encoder(local, pool3)
    return damsm_loss(regions, global_feature, words, sentence, padding, same_class, gammas)


def attngan_train_step(G, Ds, opt_g, opt_d, text_encoder, inception, image_encoder, tokens,
                       cap_lens, padding, reals, same_class, kl_weight=1.0, damsm_lambda=5.0,
                       damsm_image_size=299, gammas=(4.0, 5.0, 10.0)):
    """One step of our ``AttnGanPair::step``:

    1. the frozen text encoder (eval, ``no_grad``) on the batch's ``tokens`` [B, T] (``cap_lens``
       sorted descending, on the CPU) -> words [B, E, T], sentence [B, E];
    2. noise and CA's eps drawn on the device; G -> one image per stage;
    3. every stage's D loss on (real, fake detached, sentences) summed, one Adam step for all;
    4. G on fooling every updated D + ``kl_weight`` KL + ``damsm_lambda`` L_DAMSM of the last
       stage's images through the frozen Inception-v3 and image encoder.

    ``padding`` [B, T] is true at padding words, ``reals`` the real images of every stage,
    ``same_class`` [B, B] the DAMSM mask. Nothing is read back to the host and the updates are
    not guarded (as the Rust step); returns the detached losses (``loss_d``, ``loss_g``,
    ``kl``, ``damsm``) as one-value tensors on the device."""
    with torch.no_grad():
        words, sentence = text_encoder(tokens, cap_lens)
    n = tokens.shape[0]
    device = tokens.device
    noise = torch.randn(n, G.h_net1.in_dim - G.ca_net.c_dim, device=device)
    eps = torch.randn(n, G.ca_net.c_dim, device=device)
    fake_imgs, _, mu, logvar = G(noise, sentence, words, padding, eps)

    loss_d = None
    for stage, (real, fake) in enumerate(zip(reals, fake_imgs)):
        loss = discriminator_stage_loss(Ds.stage_logits(stage, real, fake.detach(), sentence))
        loss_d = loss if loss_d is None else loss_d + loss
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    fakes = [Ds.fake_logits(stage, fake, sentence) for stage, fake in enumerate(fake_imgs)]
    kl = kl_loss(mu, logvar)  # the Rust computes this value apart from the loss too
    loss_g = generator_loss(fakes, mu, logvar, kl_weight)
    losses = {"loss_d": loss_d, "kl": kl}
    if damsm_lambda != 0:
        damsm = damsm_term(fake_imgs[-1], inception, image_encoder, words, sentence, padding,
                           same_class, damsm_image_size, gammas)
        losses["damsm"] = damsm
        loss_g = loss_g + damsm * damsm_lambda
    losses["loss_g"] = loss_g
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return {name: value.detach() for name, value in losses.items()}

"""StackGAN reference generators (Zhang et al., "StackGAN: Text to Photo-realistic Image
Synthesis with Stacked Generative Adversarial Networks", ICCV 2017), in PyTorch.

The architecture and the ``state_dict()`` key names are those of the authors' PyTorch release
(hanzhanggit/StackGAN-Pytorch, ``code/model.py``), so that their ``netG_epoch_*.pth`` loads into
these modules with ``load_state_dict``: ``ca_net.fc``, ``fc.0`` (Linear) / ``fc.1``
(BatchNorm1d), ``upsampleN.1`` (conv) / ``upsampleN.2`` (BatchNorm), ``img.0``, Stage-II's
``encoder.{0,2,3,5,6}``, ``hr_joint.{0,1}``, ``residual.N.block.{0,1,3,4}`` and the embedded
Stage-I under ``STAGE1_G.``.

Interface changes only: sizes are constructor arguments instead of the global ``cfg``, the CA
noise ``eps`` is a ``forward`` argument, and ``STAGE1_G.forward`` returns
``(fake_img, mu, logvar)`` (the authors return a leading ``None`` too). Forward semantics are
the authors': CA is Linear(t_dim, 2 c_dim) -> ReLU -> mu = first c_dim values, logvar the rest,
c = eps * exp(logvar / 2) + mu; Stage-I concatenates ``[noise, c_code]`` (noise first);
Stage-II concatenates ``[encoded_img, c_code replicated 16x16]``; up-blocks are nearest x2 ->
conv3x3 -> BN -> ReLU; residual blocks add the input and then apply a ReLU.
"""

import torch
import torch.nn as nn

__all__ = ["conv3x3", "upBlock", "ResBlock", "CA_NET", "STAGE1_G", "STAGE2_G"]


def conv3x3(in_planes, out_planes, stride=1):
    """3x3 convolution, padding 1, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def upBlock(in_planes, out_planes):
    """Nearest x2 -> conv3x3 -> BatchNorm2d -> ReLU (children 0 Upsample, 1 conv, 2 BN, 3 ReLU)."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        conv3x3(in_planes, out_planes),
        nn.BatchNorm2d(out_planes),
        nn.ReLU(True),
    )


class ResBlock(nn.Module):
    """``relu(x + block(x))``, block = conv3x3, BN, ReLU, conv3x3, BN (children 0, 1, 3, 4).

    Args:
        channel_num: channels of the input and output.
    """

    def __init__(self, channel_num):
        super().__init__()
        self.block = nn.Sequential(
            conv3x3(channel_num, channel_num),
            nn.BatchNorm2d(channel_num),
            nn.ReLU(True),
            conv3x3(channel_num, channel_num),
            nn.BatchNorm2d(channel_num),
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.block(x) + x)


class CA_NET(nn.Module):
    """Conditioning augmentation: Linear(t_dim, 2 c_dim) -> ReLU -> (mu, logvar).

    Args:
        t_dim: text embedding width (``cfg.TEXT.DIMENSION``, 1024 for char-CNN-RNN).
        c_dim: condition width (``cfg.GAN.CONDITION_DIM``, 128).

    ``forward(text_embedding [B,t_dim], eps [B,c_dim]) -> (c_code, mu, logvar)``, each
    ``[B,c_dim]``.
    """

    def __init__(self, t_dim=1024, c_dim=128):
        super().__init__()
        self.t_dim = t_dim
        self.c_dim = c_dim
        self.fc = nn.Linear(t_dim, 2 * c_dim, bias=True)
        self.relu = nn.ReLU()

    def encode(self, text_embedding):
        h = self.relu(self.fc(text_embedding))
        return h[:, : self.c_dim], h[:, self.c_dim :]

    @staticmethod
    def reparametrize(mu, logvar, eps):
        return eps * torch.exp(0.5 * logvar) + mu

    def forward(self, text_embedding, eps):
        mu, logvar = self.encode(text_embedding)
        return self.reparametrize(mu, logvar, eps), mu, logvar


class STAGE1_G(nn.Module):
    """Stage-I generator: ``[noise, c]`` -> 4x4 x 8 gf_dim -> four up-blocks -> 64x64x3.

    Args:
        gf_dim: ``cfg.GAN.GF_DIM`` (128 for birds); the 4x4 map has ``8 * gf_dim`` channels
            (stored as ``self.gf_dim``, as the authors do), the 64x64 one ``gf_dim / 2``.
        t_dim: text embedding width (``cfg.TEXT.DIMENSION``, 1024).
        c_dim: condition width (``cfg.GAN.CONDITION_DIM``, 128).
        z_dim: noise width (``cfg.Z_DIM``, 100).

    ``forward(text_embedding [B,t_dim], noise [B,z_dim], eps [B,c_dim])``
    -> ``(fake_img [B,3,64,64], mu [B,c_dim], logvar [B,c_dim])``.
    """

    def __init__(self, gf_dim=128, t_dim=1024, c_dim=128, z_dim=100):
        super().__init__()
        self.gf_dim = 8 * gf_dim
        self.ef_dim = c_dim
        self.z_dim = z_dim
        ngf = self.gf_dim
        if ngf // 16 < 1:
            raise ValueError(f"gf_dim must be at least 2, got {gf_dim}")
        self.ca_net = CA_NET(t_dim, c_dim)
        self.fc = nn.Sequential(
            nn.Linear(z_dim + c_dim, ngf * 4 * 4, bias=False),
            nn.BatchNorm1d(ngf * 4 * 4),
            nn.ReLU(True),
        )
        self.upsample1 = upBlock(ngf, ngf // 2)
        self.upsample2 = upBlock(ngf // 2, ngf // 4)
        self.upsample3 = upBlock(ngf // 4, ngf // 8)
        self.upsample4 = upBlock(ngf // 8, ngf // 16)
        self.img = nn.Sequential(conv3x3(ngf // 16, 3), nn.Tanh())

    def forward(self, text_embedding, noise, eps):
        c_code, mu, logvar = self.ca_net(text_embedding, eps)
        x = self.fc(torch.cat((noise, c_code), dim=1))  # noise first
        x = x.view(-1, self.gf_dim, 4, 4)
        x = self.upsample1(x)  # 8x8
        x = self.upsample2(x)  # 16x16
        x = self.upsample3(x)  # 32x32
        x = self.upsample4(x)  # 64x64
        return self.img(x), mu, logvar


class STAGE2_G(nn.Module):
    """Stage-II generator, holding its (frozen) Stage-I as the attribute ``STAGE1_G``.

    Args:
        gf_dim: ``cfg.GAN.GF_DIM`` (128): the 16x16 map has ``4 * gf_dim`` channels, the
            256x256 one ``gf_dim / 4``.
        t_dim: text embedding width (1024).
        c_dim: condition width (128), for both stages.
        z_dim: noise width (100).
        r_num: residual blocks at 16x16 (``cfg.GAN.R_NUM``, 2).
        stage1_gf_dim: the Stage-I ``gf_dim``; defaults to ``gf_dim`` (the authors build both
            from the same ``cfg.GAN.GF_DIM``).
        stage1: an existing ``STAGE1_G`` to embed instead of building one.

    ``forward(text_embedding [B,t_dim], noise [B,z_dim], eps1 [B,c_dim], eps2 [B,c_dim])``
    -> ``(stage1_img [B,3,64,64], fake_img [B,3,256,256], mu, logvar)``; ``eps1`` is Stage-I's
    CA draw, ``eps2`` Stage-II's; mu and logvar are Stage-II's.
    """

    def __init__(
        self,
        gf_dim=128,
        t_dim=1024,
        c_dim=128,
        z_dim=100,
        r_num=2,
        stage1_gf_dim=None,
        stage1=None,
    ):
        super().__init__()
        self.gf_dim = gf_dim
        self.ef_dim = c_dim
        self.z_dim = z_dim
        if gf_dim // 4 < 1:
            raise ValueError(f"gf_dim must be at least 4, got {gf_dim}")
        if stage1 is None:
            stage1 = STAGE1_G(stage1_gf_dim or gf_dim, t_dim, c_dim, z_dim)
        self.STAGE1_G = stage1
        for p in self.STAGE1_G.parameters():
            p.requires_grad = False

        ngf = gf_dim
        self.ca_net = CA_NET(t_dim, c_dim)
        self.encoder = nn.Sequential(
            conv3x3(3, ngf),
            nn.ReLU(True),
            nn.Conv2d(ngf, 2 * ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * ngf),
            nn.ReLU(True),
            nn.Conv2d(2 * ngf, 4 * ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(4 * ngf),
            nn.ReLU(True),
        )
        self.hr_joint = nn.Sequential(
            conv3x3(c_dim + 4 * ngf, 4 * ngf),
            nn.BatchNorm2d(4 * ngf),
            nn.ReLU(True),
        )
        self.residual = nn.Sequential(*[ResBlock(4 * ngf) for _ in range(r_num)])
        self.upsample1 = upBlock(4 * ngf, 2 * ngf)  # 32x32
        self.upsample2 = upBlock(2 * ngf, ngf)  # 64x64
        self.upsample3 = upBlock(ngf, ngf // 2)  # 128x128
        self.upsample4 = upBlock(ngf // 2, ngf // 4)  # 256x256
        self.img = nn.Sequential(conv3x3(ngf // 4, 3), nn.Tanh())

    def forward(self, text_embedding, noise, eps1, eps2):
        stage1_img, _, _ = self.STAGE1_G(text_embedding, noise, eps1)
        stage1_img = stage1_img.detach()
        encoded = self.encoder(stage1_img)  # [B, 4G, 16, 16]

        c_code, mu, logvar = self.ca_net(text_embedding, eps2)
        grid = c_code.view(-1, self.ef_dim, 1, 1).repeat(1, 1, encoded.size(2), encoded.size(3))
        x = self.hr_joint(torch.cat([encoded, grid], dim=1))
        x = self.residual(x)
        x = self.upsample1(x)
        x = self.upsample2(x)
        x = self.upsample3(x)
        x = self.upsample4(x)
        return stage1_img, self.img(x), mu, logvar

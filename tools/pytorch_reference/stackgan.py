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


# ---------------------------------------------------------------------------------------------
# Added for tools/gpu_bench_pytorch.py: the discriminators and the training step of OUR Rust
# StackGAN (src/stackgan.rs, train/src/stackgan/train.rs), written from the Rust code. Their
# discriminators compress the sentence embedding themselves (``TextEmbedding``) instead of
# reading the generator's mu, and heads return logits (losses use BCE-with-logits). Module and
# attribute names are the Rust field names.
# ---------------------------------------------------------------------------------------------

import torch.nn.functional as F  # noqa: E402

__all__ += [
    "LEAK",
    "dcgan_init",
    "down_conv",
    "logit_conv",
    "DownPath",
    "ConditionalLogits",
    "TextEmbedding",
    "StageIDiscriminator",
    "StageIIDiscriminator",
    "bce_with_logits",
    "kl_loss",
    "discriminator_loss",
    "generator_loss",
    "stage2_forward",
    "gan_adam",
    "update_stage",
    "stage1_train_step",
    "stage2_train_step",
]

LEAK = 0.2


def dcgan_init(module):
    """The Rust init (``dcgan_weights``, ``batch_norm``): conv and linear weights N(0, 0.02),
    linear biases 0, batch-norm gamma N(1, 0.02) and beta 0. (Logit-conv biases keep PyTorch's
    default, as the Rust keeps burn's.)"""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    return module


def down_conv(cin, cout):
    """4x4 convolution, stride 2, padding 1, no bias: halves the size."""
    return nn.Conv2d(cin, cout, 4, 2, 1, bias=False)


def logit_conv(cin):
    """The 4x4, stride-4 convolution to one logit, with bias."""
    return nn.Conv2d(cin, 1, 4, stride=4, bias=True)


class DownPath(nn.Module):
    """Stride-2 4x4 convolutions with LeakyReLU 0.2; every one but the first has batch norm.
    ``widths`` [3, F, 2F, ...]: ``[B, 3, S, S] -> [B, widths[-1], S / 2^n, S / 2^n]``."""

    def __init__(self, widths):
        super().__init__()
        self.convs = nn.ModuleList(down_conv(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm2d(c) for c in widths[2:])

    def forward(self, x):
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i > 0:
                x = self.norms[i - 1](x)
            x = F.leaky_relu(x, LEAK)
        return x


class ConditionalLogits(nn.Module):
    """Features [B, 8F, 4, 4] joined with the condition [B, C] replicated 4x4 -> conv3x3 (no
    bias) -> BN -> LeakyReLU -> 4x4 stride-4 conv -> logits [B]."""

    def __init__(self, ndf, condition_dim):
        super().__init__()
        self.joint = conv3x3(8 * ndf + condition_dim, 8 * ndf)
        self.joint_bn = nn.BatchNorm2d(8 * ndf)
        self.logit = logit_conv(8 * ndf)

    def forward(self, features, condition):
        b, _, size, _ = features.shape
        grid = condition.view(b, -1, 1, 1).expand(b, condition.shape[1], size, size)
        x = torch.cat([features, grid], 1)
        x = F.leaky_relu(self.joint_bn(self.joint(x)), LEAK)
        return self.logit(x).view(b)


class TextEmbedding(nn.Module):
    """The discriminators' compression of the sentence embedding: (text * text_scale) -> Linear
    (with bias) -> LeakyReLU 0.2: [B, P] -> [B, C]."""

    def __init__(self, text_dim, condition_dim, text_scale=1.0):
        super().__init__()
        self.fc = nn.Linear(text_dim, condition_dim, bias=True)
        self.text_scale = text_scale

    def forward(self, text):
        return F.leaky_relu(self.fc(text * self.text_scale), LEAK)


class StageIDiscriminator(nn.Module):
    """Our Stage-I D: 64x64 -> DownPath to [B, 8F, 4, 4]; conditional logits only."""

    def __init__(self, ndf=64, text_dim=256, condition_dim=128, text_scale=1.0):
        super().__init__()
        f = ndf
        self.encode_img = DownPath([3, f, 2 * f, 4 * f, 8 * f])
        self.embed_text = TextEmbedding(text_dim, condition_dim, text_scale)
        self.get_cond_logits = ConditionalLogits(f, condition_dim)
        dcgan_init(self)

    def encode(self, image):
        return self.encode_img(image)

    def condition(self, text):
        return self.embed_text(text)

    def cond_logits(self, features, condition):
        return self.get_cond_logits(features, condition)

    def uncond_logits(self, features):
        return None


class StageIIDiscriminator(nn.Module):
    """Our Stage-II D: 256x256 -> DownPath (6 convs) to [B, 32F, 4, 4] -> conv3x3-BN-LeakyReLU
    to 16F, then to 8F; conditional and unconditional logits."""

    def __init__(self, ndf=64, text_dim=256, condition_dim=128, text_scale=1.0):
        super().__init__()
        f = ndf
        self.encode_img = DownPath([3, f, 2 * f, 4 * f, 8 * f, 16 * f, 32 * f])
        self.narrow1 = conv3x3(32 * f, 16 * f)
        self.narrow1_bn = nn.BatchNorm2d(16 * f)
        self.narrow2 = conv3x3(16 * f, 8 * f)
        self.narrow2_bn = nn.BatchNorm2d(8 * f)
        self.embed_text = TextEmbedding(text_dim, condition_dim, text_scale)
        self.get_cond_logits = ConditionalLogits(f, condition_dim)
        self.get_uncond_logits = logit_conv(8 * f)
        dcgan_init(self)

    def encode(self, image):
        x = self.encode_img(image)  # [B, 32F, 4, 4]
        x = F.leaky_relu(self.narrow1_bn(self.narrow1(x)), LEAK)  # [B, 16F, 4, 4]
        return F.leaky_relu(self.narrow2_bn(self.narrow2(x)), LEAK)  # [B, 8F, 4, 4]

    def condition(self, text):
        return self.embed_text(text)

    def cond_logits(self, features, condition):
        return self.get_cond_logits(features, condition)

    def uncond_logits(self, features):
        return self.get_uncond_logits(features).view(features.shape[0])


def bce_with_logits(logits, label):
    """mean(softplus(x) - y x): the Rust ``bce_with_logits``."""
    return (F.softplus(logits) - logits * label).mean()


def kl_loss(mu, logvar):
    """-0.5 mean(1 + logvar - mu^2 - exp(logvar)) (the Rust ``kl_loss``)."""
    return -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp()).mean()


def discriminator_loss(real_right, real_wrong, fake_right, uncond=None):
    """Our ``discriminator_loss`` (logistic): ``real + (fake + wrong) / 2``; with the
    unconditional ``(real, fake)`` logits ``(real + uncond_real) / 2 + (fake + wrong +
    uncond_fake) / 3``. Returns (total, real, wrong, fake)."""
    real = bce_with_logits(real_right, 1.0)
    wrong = bce_with_logits(real_wrong, 0.0)
    fake = bce_with_logits(fake_right, 0.0)
    if uncond is None:
        total = real + 0.5 * (fake + wrong)
    else:
        uncond_real, uncond_fake = uncond
        total = 0.5 * (real + bce_with_logits(uncond_real, 1.0)) + (
            fake + wrong + bce_with_logits(uncond_fake, 0.0)
        ) / 3.0
    return total, real, wrong, fake


def generator_loss(fake_right, uncond_fake, kl, kl_weight):
    """Fool D on the right condition (and unconditionally), plus ``kl_weight`` x KL."""
    total = bce_with_logits(fake_right, 1.0)
    if uncond_fake is not None:
        total = total + bce_with_logits(uncond_fake, 1.0)
    return total + kl * kl_weight


def stage2_forward(g2, stage1_image, text, eps):
    """``STAGE2_G``'s own layers on a given Stage-I image (our ``StageIIGenerator.forward``,
    which does not hold Stage-I): -> (image [B, 3, 256, 256], mu, logvar)."""
    encoded = g2.encoder(stage1_image)  # [B, 4G, 16, 16]
    c_code, mu, logvar = g2.ca_net(text, eps)
    grid = c_code.view(-1, g2.ef_dim, 1, 1).expand(-1, g2.ef_dim, encoded.size(2), encoded.size(3))
    x = g2.hr_joint(torch.cat([encoded, grid], dim=1))
    x = g2.residual(x)
    x = g2.upsample4(g2.upsample3(g2.upsample2(g2.upsample1(x))))
    return g2.img(x), mu, logvar


def gan_adam(params, lr=2e-4, **kwargs):
    """The trainers' Adam (``gan_adam`` / the papers' recipe): beta1 0.5, beta2 0.999, eps
    1e-8. ``kwargs`` go to ``torch.optim.Adam`` (``foreach``, ``fused``)."""
    return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999), eps=1e-8, **kwargs)


def update_stage(D, opt_g, opt_d, image, mu, logvar, real, right, wrong, kl_weight):
    """Our ``update_stage``: D on (real, right), (real, wrong), (fake, right) [+ the
    unconditional real / fake logits], the real image encoded once; then G (whose output
    ``image`` was computed once, before D's update) on fooling the updated D plus the KL term.

    As the Rust step, nothing is read back to the host and the updates are not guarded: the
    losses come back as detached one-value tensors still on the device (``loss_d``, ``d_real``,
    ``d_wrong``, ``d_fake``, ``loss_g``, ``kl``), for the caller to read when it likes."""
    real_features = D.encode(real)
    fake_features = D.encode(image.detach())
    condition = D.condition(right)
    real_right = D.cond_logits(real_features, condition)
    real_wrong = D.cond_logits(real_features, D.condition(wrong))
    uncond_real = D.uncond_logits(real_features)
    uncond = None if uncond_real is None else (uncond_real, D.uncond_logits(fake_features))
    total, d_real, d_wrong, d_fake = discriminator_loss(
        real_right, real_wrong, D.cond_logits(fake_features, condition), uncond
    )
    losses = {"loss_d": total, "d_real": d_real, "d_wrong": d_wrong, "d_fake": d_fake}
    opt_d.zero_grad(set_to_none=True)
    total.backward()
    opt_d.step()

    fake_features = D.encode(image)
    fake_right = D.cond_logits(fake_features, D.condition(right))
    kl = kl_loss(mu, logvar)
    loss_g = generator_loss(fake_right, D.uncond_logits(fake_features), kl, kl_weight)
    losses["loss_g"] = loss_g
    losses["kl"] = kl
    opt_g.zero_grad(set_to_none=True)
    # D's parameters get gradients here too (as in the Rust step); they are dropped.
    loss_g.backward()
    opt_g.step()
    return {name: value.detach() for name, value in losses.items()}


def stage1_train_step(G1, D1, opt_g, opt_d, real, right, wrong, kl_weight=1.0):
    """One Stage-I step (``StageIPair::step``): noise z and CA's eps drawn on the device."""
    n = right.shape[0]
    noise = torch.randn(n, G1.z_dim, device=right.device)
    eps = torch.randn(n, G1.ef_dim, device=right.device)
    image, mu, logvar = G1(right, noise, eps)
    return update_stage(D1, opt_g, opt_d, image, mu, logvar, real, right, wrong, kl_weight)


def stage2_train_step(G1, G2, D2, opt_g, opt_d, real, right, wrong, kl_weight=1.0):
    """One Stage-II step (``StageIIPair::step``): z, Stage-I's eps and Stage-II's eps drawn on
    the device; the frozen Stage-I ``G1`` (in eval mode) runs under ``no_grad``."""
    n = right.shape[0]
    noise = torch.randn(n, G1.z_dim, device=right.device)
    eps1 = torch.randn(n, G1.ef_dim, device=right.device)
    eps2 = torch.randn(n, G2.ef_dim, device=right.device)
    with torch.no_grad():
        low, _, _ = G1(right, noise, eps1)  # [B, 3, 64, 64]
    image, mu, logvar = stage2_forward(G2, low, right, eps2)  # [B, 3, 256, 256]
    return update_stage(D2, opt_g, opt_d, image, mu, logvar, real, right, wrong, kl_weight)

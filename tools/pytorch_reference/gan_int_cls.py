"""PyTorch mirror of the t2i GAN-INT-CLS networks (src/gan_int_cls.rs) and of the loss the
trainer uses (train/src/gan_int_cls/train.rs), written from the Rust code.

`state_dict()` keys are the burn module paths of `Generator` and `Discriminator` (a bundle's
`generator.*` keys without the prefix), in PyTorch's conventions: Linear weight [out, in],
BatchNorm weight/bias/running_mean/running_var (burn: gamma/beta), ConvTranspose2d weight
[in, out, k, k], Conv2d weight [out, in, k, k]; convolutions have no bias (the authors' script
zeroes them). `t2i import gan-int-cls --generator netG.pth` reads a generator saved from here.

    G = Generator(ngf=128, text_dim=256, projected_text_dim=128, noise_dim=100)
    D = Discriminator(ndf=64, text_dim=256, projected_text_dim=128)
    image = G(noise, text)            # [B, 100], [B, 256] -> [B, 3, 64, 64]
    logits = D(image, text)           # -> [B]
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

LEAK = 0.2


def dcgan_init(module):
    """The Rust init: conv weights N(0, 0.02), batch-norm gamma N(1, 0.02), beta 0. (Linear
    layers keep PyTorch's default, as burn's default init; only shapes matter here.)"""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def up_conv(cin, cout, stride, padding):
    """4x4 transposed convolution: stride 1 / padding 0 maps 1x1 to 4x4, stride 2 / padding 1
    doubles the size."""
    return nn.ConvTranspose2d(cin, cout, 4, stride, padding, bias=False)


def down_conv(cin, cout):
    """4x4 convolution, stride 2, padding 1: halves the size."""
    return nn.Conv2d(cin, cout, 4, 2, 1, bias=False)


def conv(cin, cout, kernel):
    """Stride-1 convolution; kernel 3 pads 1, kernels 1 and 4 pad 0."""
    return nn.Conv2d(cin, cout, kernel, 1, 1 if kernel == 3 else 0, bias=False)


class TextProjection(nn.Module):
    """phi(t) -> fc -> (batch norm in D) -> LeakyReLU 0.2. Keys `fc.*`, `bn.*`."""

    def __init__(self, text_dim, output, with_bn):
        super().__init__()
        self.fc = nn.Linear(text_dim, output)
        self.bn = nn.BatchNorm1d(output) if with_bn else None

    def forward(self, text):
        x = self.fc(text)
        if self.bn is not None:
            x = self.bn(x)
        return F.leaky_relu(x, LEAK)


class ResidualBlock(nn.Module):
    """Bottleneck branch: 1x1 reduce, 3x3, 3x3 expand, each with batch norm; returns
    x + branch(x), the branch's inner activation given by `act`."""

    def __init__(self, channels, bottleneck):
        super().__init__()
        self.reduce = conv(channels, bottleneck, 1)
        self.reduce_bn = nn.BatchNorm2d(bottleneck)
        self.conv = conv(bottleneck, bottleneck, 3)
        self.conv_bn = nn.BatchNorm2d(bottleneck)
        self.expand = conv(bottleneck, channels, 3)
        self.expand_bn = nn.BatchNorm2d(channels)

    def forward(self, x, act):
        h = act(self.reduce_bn(self.reduce(x)))
        h = act(self.conv_bn(self.conv(h)))
        return x + self.expand_bn(self.expand(h))


class Generator(nn.Module):
    def __init__(self, ngf=128, text_dim=256, projected_text_dim=128, noise_dim=100):
        super().__init__()
        g = ngf
        self.text = TextProjection(text_dim, projected_text_dim, False)
        self.project = up_conv(noise_dim + projected_text_dim, 8 * g, 1, 0)
        self.project_bn = nn.BatchNorm2d(8 * g)
        self.residual_4 = ResidualBlock(8 * g, 2 * g)
        self.up_8 = up_conv(8 * g, 4 * g, 2, 1)
        self.up_8_bn = nn.BatchNorm2d(4 * g)
        self.residual_8 = ResidualBlock(4 * g, g)
        self.up_16 = up_conv(4 * g, 2 * g, 2, 1)
        self.up_16_bn = nn.BatchNorm2d(2 * g)
        self.up_32 = up_conv(2 * g, g, 2, 1)
        self.up_32_bn = nn.BatchNorm2d(g)
        self.to_rgb = up_conv(g, 3, 2, 1)
        dcgan_init(self)

    def forward(self, noise, text):
        """noise [B, Z], text [B, P] -> [B, 3, 64, 64] in [-1, 1]."""
        text = self.text(text)
        x = torch.cat([noise, text], 1)
        x = x.view(x.shape[0], x.shape[1], 1, 1)
        x = self.project_bn(self.project(x))  # [B, 8G, 4, 4]
        x = F.relu(self.residual_4(x, F.relu))
        x = self.up_8_bn(self.up_8(x))  # [B, 4G, 8, 8]
        x = F.relu(self.residual_8(x, F.relu))
        x = F.relu(self.up_16_bn(self.up_16(x)))  # [B, 2G, 16, 16]
        x = F.relu(self.up_32_bn(self.up_32(x)))  # [B, G, 32, 32]
        return torch.tanh(self.to_rgb(x))  # [B, 3, 64, 64]


class Discriminator(nn.Module):
    def __init__(self, ndf=64, text_dim=256, projected_text_dim=128):
        super().__init__()
        f = ndf
        self.down_32 = down_conv(3, f)
        self.down_16 = down_conv(f, 2 * f)
        self.down_16_bn = nn.BatchNorm2d(2 * f)
        self.down_8 = down_conv(2 * f, 4 * f)
        self.down_8_bn = nn.BatchNorm2d(4 * f)
        self.down_4 = down_conv(4 * f, 8 * f)
        self.down_4_bn = nn.BatchNorm2d(8 * f)
        self.residual_4 = ResidualBlock(8 * f, 2 * f)
        self.text = TextProjection(text_dim, projected_text_dim, True)
        self.joint = conv(8 * f + projected_text_dim, 8 * f, 1)
        self.joint_bn = nn.BatchNorm2d(8 * f)
        self.logit = conv(8 * f, 1, 4)
        dcgan_init(self)

    def forward(self, image, text):
        """image [B, 3, 64, 64], text [B, P] -> logits [B]."""
        leaky = lambda x: F.leaky_relu(x, LEAK)
        x = leaky(self.down_32(image))
        x = leaky(self.down_16_bn(self.down_16(x)))
        # No activation between the 8x8 and 4x4 blocks (the authors' script, as the Rust).
        x = self.down_8_bn(self.down_8(x))
        x = self.down_4_bn(self.down_4(x))
        x = leaky(self.residual_4(x, leaky))
        b, _, h, w = x.shape
        t = self.text(text)
        t = t.view(b, -1, 1, 1).expand(b, t.shape[1], h, w)
        x = torch.cat([x, t], 1)
        x = leaky(self.joint_bn(self.joint(x)))
        return self.logit(x).view(b)


def bce_with_logits(logits, label):
    """mean(softplus(x) - y x): the Rust `bce_with_logits`."""
    return (F.softplus(logits) - logits * label).mean()


def discriminator_loss(real_right, real_wrong, fake_right):
    """GAN-CLS: real/right is real; real/wrong and fake/right are fake at half weight each."""
    return bce_with_logits(real_right, 1.0) + 0.5 * (
        bce_with_logits(real_wrong, 0.0) + bce_with_logits(fake_right, 0.0)
    )


def generator_loss(fake_right, fake_interpolated, interp_weight):
    loss = bce_with_logits(fake_right, 1.0)
    if fake_interpolated is not None:
        loss = loss + interp_weight * bce_with_logits(fake_interpolated, 1.0)
    return loss


def interpolate_text(a, b, beta):
    return a * beta + b * (1.0 - beta)


def adam(module):
    """The trainer's Adam (`gan_adam`): lr set per step, beta1 0.5, beta2 0.999, eps 1e-8."""
    return torch.optim.Adam(module.parameters(), lr=2e-4, betas=(0.5, 0.999), eps=1e-8)


def _step(G, D, opt_g, opt_d, real, right, wrong, partner, noise, interp_noise, interp_weight,
          beta):
    """D on (real, right), (real, wrong), (fake, right); then G on (fake, right) and on
    interpolated texts, whose noise `interp_noise()` gives when G's update needs it. Returns the
    detached losses."""
    fake = G(noise, right).detach()
    loss_d = discriminator_loss(D(real, right), D(real, wrong), D(fake, right))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    fake = G(noise, right)
    interpolated = None
    if interp_weight > 0:
        text = interpolate_text(right, partner, beta)
        interpolated = D(G(interp_noise(), text), text)
    loss_g = generator_loss(D(fake, right), interpolated, interp_weight)
    opt_g.zero_grad(set_to_none=True)
    # D's parameters get gradients here too (as in the Rust step); they are dropped.
    loss_g.backward()
    opt_g.step()
    return loss_d.detach(), loss_g.detach()


def train_step(G, D, opt_g, opt_d, real, right, wrong, partner, noise, noise_interp,
               interp_weight=1.0, beta=0.5):
    """One step of `GanIntClsPair::step` with given noise: D on (real, right), (real, wrong),
    (fake, right); then G on (fake, right) and on interpolated texts. Returns (loss_d, loss_g)."""
    loss_d, loss_g = _step(G, D, opt_g, opt_d, real, right, wrong, partner, noise,
                           lambda: noise_interp, interp_weight, beta)
    return loss_d.item(), loss_g.item()


def train_step_on_device(G, D, opt_g, opt_d, real, right, wrong, partner, noise_dim=100,
                         interp_weight=1.0, beta=0.5):
    """`train_step` as the Rust step runs it (for tools/gpu_bench_pytorch.py): both noises drawn
    on the device inside the step (the first before D's update, the interpolation's during
    G's), nothing read back to the host and no guard on the updates. Returns the detached
    losses `{"loss_d", "loss_g"}` as one-value tensors on the device."""
    n = right.shape[0]
    noise = torch.randn(n, noise_dim, device=right.device)
    loss_d, loss_g = _step(G, D, opt_g, opt_d, real, right, wrong, partner, noise,
                           lambda: torch.randn(n, noise_dim, device=right.device),
                           interp_weight, beta)
    return {"loss_d": loss_d, "loss_g": loss_g}


if __name__ == "__main__":
    G, D = Generator(), Discriminator()
    print("G", sum(p.numel() for p in G.parameters()), "D", sum(p.numel() for p in D.parameters()))
    for k, v in G.state_dict().items():
        print(k, tuple(v.shape))

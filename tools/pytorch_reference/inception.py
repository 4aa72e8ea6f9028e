"""Inception-v3 as our Rust ``src/inception.rs`` runs it (the FID variant of the 2015-12-05
TensorFlow graph, frozen, in inference form), written for this project for timing: random
weights, no torchvision.

Layer sizes are the standard Inception-v3's; the names are the usual ``Conv2d_1a_3x3`` ...
``Mixed_7c`` (Rust: ``conv`` ... ``mixed_10``). As in the Rust network, every convolution block
is one convolution *with* bias followed by ReLU: the frozen batch norm (no scale, eps 0.001) is
folded into the convolution at load time, so at run time there is no batch norm. The FID
variant's pooling is kept: the 3x3 average pools do not count the padding, and the last block
(``Mixed_7c``, Rust ``mixed_10``) pools its fourth branch with a 3x3 max pool.

``InceptionV3()(x [N, 3, 299, 299])`` returns ``(mixed_6e [N, 768, 17, 17], pool3 [N, 2048])``:
the DAMSM region features (Rust ``mixed_7``) and the global average pool of ``Mixed_7c``.
Other input sizes from 75 up work as in the Rust (the regions shrink).

Weights start He-normal (std sqrt(2 / fan_in)), biases zero, so activations keep their scale
through the ~50 convolutions (PyTorch's default init would shrink them towards denormals, which
are slow on a CPU); only shapes matter for timing. ``freeze()`` turns gradients off for every
weight, as the AttnGAN trainer does; gradients still flow through to the input image.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["BasicConv", "InceptionV3"]


class BasicConv(nn.Module):
    """Convolution with bias (batch norm folded in) -> ReLU. ``kernel`` and ``padding`` may be
    ints or (rows, columns) pairs."""

    def __init__(self, cin, cout, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=True)

    def forward(self, x):
        return F.relu(self.conv(x))


def _avg_pool_same(x):
    """3x3 stride-1 average pool, padding 1, padding not counted (the FID graph's)."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35 x 35 block: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1 -> 224 + pool_features."""

    def __init__(self, cin, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv(cin, 64, 1)
        self.branch5x5_1 = BasicConv(cin, 48, 1)
        self.branch5x5_2 = BasicConv(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv(96, 96, 3, padding=1)
        self.branch_pool = BasicConv(cin, pool_features, 1)

    def forward(self, x):
        b0 = self.branch1x1(x)
        b1 = self.branch5x5_2(self.branch5x5_1(x))
        b2 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        b3 = self.branch_pool(_avg_pool_same(x))
        return torch.cat([b0, b1, b2, b3], 1)


class InceptionB(nn.Module):
    """Reduction 35 -> 17: 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2 -> 768."""

    def __init__(self, cin=288):
        super().__init__()
        self.branch3x3 = BasicConv(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv(96, 96, 3, stride=2)

    def forward(self, x):
        b0 = self.branch3x3(x)
        b1 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        b2 = F.max_pool2d(x, 3, stride=2)
        return torch.cat([b0, b1, b2], 1)


class InceptionC(nn.Module):
    """17 x 17 block with factorised 7x7 convolutions, 192 channels per branch -> 768."""

    def __init__(self, c7, cin=768):
        super().__init__()
        self.branch1x1 = BasicConv(cin, 192, 1)
        self.branch7x7_1 = BasicConv(cin, c7, 1)
        self.branch7x7_2 = BasicConv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv(cin, 192, 1)

    def forward(self, x):
        b0 = self.branch1x1(x)
        b1 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b2 = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                     self.branch7x7dbl_5):
            b2 = conv(b2)
        b3 = self.branch_pool(_avg_pool_same(x))
        return torch.cat([b0, b1, b2, b3], 1)


class InceptionD(nn.Module):
    """Reduction 17 -> 8: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2 -> 1280."""

    def __init__(self, cin=768):
        super().__init__()
        self.branch3x3_1 = BasicConv(cin, 192, 1)
        self.branch3x3_2 = BasicConv(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv(192, 192, 3, stride=2)

    def forward(self, x):
        b0 = self.branch3x3_2(self.branch3x3_1(x))
        b1 = self.branch7x7x3_1(x)
        for conv in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b1 = conv(b1)
        b2 = F.max_pool2d(x, 3, stride=2)
        return torch.cat([b0, b1, b2], 1)


class InceptionE(nn.Module):
    """8 x 8 block with split 1x3 / 3x1 outputs -> 2048; ``pool`` 'avg' (Mixed_7b) or 'max'
    (Mixed_7c, as the FID graph)."""

    def __init__(self, cin, pool):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.branch1x1 = BasicConv(cin, 320, 1)
        self.branch3x3_1 = BasicConv(cin, 384, 1)
        self.branch3x3_2a = BasicConv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv(cin, 192, 1)

    def forward(self, x):
        b0 = self.branch1x1(x)
        t = self.branch3x3_1(x)
        b1 = self.branch3x3_2a(t)
        b2 = self.branch3x3_2b(t)
        t = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3 = self.branch3x3dbl_3a(t)
        b4 = self.branch3x3dbl_3b(t)
        if self.pool == "avg":
            pooled = _avg_pool_same(x)
        else:
            pooled = F.max_pool2d(x, 3, stride=1, padding=1)
        b5 = self.branch_pool(pooled)
        return torch.cat([b0, b1, b2, b3, b4, b5], 1)


class InceptionV3(nn.Module):
    """The frozen FID Inception-v3 of ``src/inception.rs``; see the module documentation."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(128)
        self.Mixed_6c = InceptionC(160)
        self.Mixed_6d = InceptionC(160)
        self.Mixed_6e = InceptionC(192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, "avg")
        self.Mixed_7c = InceptionE(2048, "max")
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def freeze(self):
        """No gradients for the weights (the trainer's frozen Inception); inference mode."""
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()

    def forward(self, x):
        """x [N, 3, 299, 299] in [-1, 1] -> (mixed_6e [N, 768, 17, 17], pool3 [N, 2048])."""
        x = self.Conv2d_1a_3x3(x)  # [N, 32, 149, 149]
        x = self.Conv2d_2a_3x3(x)  # [N, 32, 147, 147]
        x = self.Conv2d_2b_3x3(x)  # [N, 64, 147, 147]
        x = F.max_pool2d(x, 3, stride=2)  # [N, 64, 73, 73]
        x = self.Conv2d_3b_1x1(x)  # [N, 80, 73, 73]
        x = self.Conv2d_4a_3x3(x)  # [N, 192, 71, 71]
        x = F.max_pool2d(x, 3, stride=2)  # [N, 192, 35, 35]
        x = self.Mixed_5b(x)  # [N, 256, 35, 35]
        x = self.Mixed_5c(x)  # [N, 288, 35, 35]
        x = self.Mixed_5d(x)  # [N, 288, 35, 35]
        x = self.Mixed_6a(x)  # [N, 768, 17, 17]
        x = self.Mixed_6b(x)
        x = self.Mixed_6c(x)
        x = self.Mixed_6d(x)
        mixed_6e = self.Mixed_6e(x)  # [N, 768, 17, 17]
        x = self.Mixed_7a(mixed_6e)  # [N, 1280, 8, 8]
        x = self.Mixed_7b(x)  # [N, 2048, 8, 8]
        x = self.Mixed_7c(x)  # [N, 2048, 8, 8]
        return mixed_6e, x.mean(dim=(2, 3))  # pool3 [N, 2048]


if __name__ == "__main__":
    net = InceptionV3().freeze()
    print("parameters", sum(p.numel() for p in net.parameters()))
    with torch.no_grad():
        local, pooled = net(torch.rand(1, 3, 299, 299) * 2 - 1)
    print(tuple(local.shape), tuple(pooled.shape))

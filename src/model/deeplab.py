"""DeepLabV3+ with the WideResNet38-A2 trunk: NVIDIA's DeepWV3Plus, as the published Meta-OoD weights use it."""
import torch
import torch.nn.functional as F
from torch import nn

from src.model.wide_resnet import wide_resnet38_stages


def upsample(x, size):
    """Bilinear resize with align_corners=True, as every upsampling of the original networks."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def conv_bn_relu(in_channels, out_channels, kernel_size, dilation=1):
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=dilation * (kernel_size // 2),
                  dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True))


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: image pooling, a 1x1 branch and one 3x3 branch per rate.

    forward: x (N, in_channels, h, w) -> (N, out_channels * (len(rates) + 2), h, w), the branches
    concatenated in the order image pooling, 1x1, rates[0], rates[1], ...
    """

    def __init__(self, in_channels, out_channels, rates):
        super().__init__()
        self.features = nn.ModuleList([conv_bn_relu(in_channels, out_channels, 1)] +
                                      [conv_bn_relu(in_channels, out_channels, 3, dilation=r) for r in rates])
        self.img_conv = conv_bn_relu(in_channels, out_channels, 1)

    def forward(self, x):
        pooled = self.img_conv(F.adaptive_avg_pool2d(x, 1))
        return torch.cat([upsample(pooled, x.shape[-2:])] + [branch(x) for branch in self.features], dim=1)


class DeepWV3Plus(nn.Module):
    """DeepLabV3+ on WideResNet38-A2 (output stride 8, ASPP rates 12/24/36, decoder skip from mod2).

    forward: x (N, 3, H, W) float32, ImageNet-normalised -> logits (N, num_classes, H, W) float32.
    Strides: mod1 1, mod2 2 (after pool2), mod3 4 (after pool3), mod4..mod7 and ASPP 8, decoder 2.
    The Dropout2d layers of mod6 (p 0.3) and mod7 (p 0.5) make MC dropout possible: mc_prefix holds
    everything before them, so forward(x) == mc_suffix(mc_prefix(x), x.shape[-2:]).
    """

    def __init__(self, num_classes=19):
        super().__init__()
        self.mod1, self.mod2, self.mod3, self.mod4, self.mod5, self.mod6, self.mod7 = wide_resnet38_stages()
        self.pool2 = nn.MaxPool2d(3, stride=2, padding=1)
        self.pool3 = nn.MaxPool2d(3, stride=2, padding=1)
        self.aspp = ASPP(4096, 256, rates=(12, 24, 36))
        self.bot_fine = nn.Conv2d(128, 48, 1, bias=False)
        self.bot_aspp = nn.Conv2d(1280, 256, 1, bias=False)
        self.final = nn.Sequential(
            nn.Conv2d(256 + 48, 256, 3, padding=1, bias=False),
            nn.BatchNorm2d(256),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1, bias=False),
            nn.BatchNorm2d(256),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, num_classes, 1, bias=False))
        for module in self.final.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)

    def mc_prefix(self, x):
        """x (N, 3, H, W) -> (mod5 features (N, 1024, H/8, W/8), decoder skip bot_fine(mod2) (N, 48, H/2, W/2)).

        Everything before the first dropout layer; MC dropout computes it once per image.
        """
        m2 = self.mod2(self.pool2(self.mod1(x)))
        x = self.mod5(self.mod4(self.mod3(self.pool3(m2))))
        return x, self.bot_fine(m2)

    def mc_suffix(self, prefix, out_size):
        """mc_prefix's tuple -> logits (N, num_classes, *out_size): mod6, mod7, ASPP, decoder.

        out_size None: the logits before the final upsampling, (N, num_classes, H/2, W/2).
        """
        x, fine = prefix
        x = self.bot_aspp(self.aspp(self.mod7(self.mod6(x))))
        x = self.final(torch.cat([fine, upsample(x, fine.shape[-2:])], dim=1))
        return x if out_size is None else upsample(x, out_size)

    def forward(self, x):
        return self.mc_suffix(self.mc_prefix(x), x.shape[-2:])

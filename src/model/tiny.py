"""A small DeepLabV3+ that trains from scratch on a CPU in minutes: the model of the demo and the tests.

Same shape of network as DeepWV3Plus (trunk at output stride 8, ASPP, a decoder with a skip at stride 4),
on a narrow ResNet of basic blocks with 16-32-64-128 channels. A Dropout2d before the classifier makes
MC dropout (OODMC) possible and cheap: everything before it is computed once per image.
"""
import torch
import torch.nn.functional as F
from torch import nn

from src.model.deeplab import ASPP, conv_bn_relu, upsample


class BasicBlock(nn.Module):
    """Post-activation ResNet basic block; a 1x1 projection shortcut when the shape changes."""

    def __init__(self, in_channels, out_channels, stride=1, dilation=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=dilation,
                               dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class TinyDeepLabV3Plus(nn.Module):
    """forward: x (N, 3, H, W) float32, ImageNet-normalised -> logits (N, num_classes, H, W) float32.

    Strides: stem 2, layer1 4 (decoder skip), layer2 and layer3 8 (layer3 dilated), ASPP 8, decoder 4.
    forward(x) == mc_suffix(mc_prefix(x), x.shape[-2:]); only the suffix holds the dropout.
    """

    def __init__(self, num_classes=19, width=16, dropout=0.2):
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(3, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w),
                                  nn.ReLU(inplace=True))
        self.layer1 = BasicBlock(w, 2 * w, stride=2)
        self.layer2 = BasicBlock(2 * w, 4 * w, stride=2)
        self.layer3 = BasicBlock(4 * w, 8 * w, dilation=2)
        self.aspp = ASPP(8 * w, 4 * w, rates=(2, 4, 6))
        self.bot_aspp = nn.Conv2d(5 * 4 * w, 4 * w, 1, bias=False)
        self.bot_fine = nn.Conv2d(2 * w, w, 1, bias=False)
        self.final = conv_bn_relu(5 * w, 4 * w, 3)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(4 * w, num_classes, 1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def mc_prefix(self, x):
        """x (N, 3, H, W) -> (decoder features (N, 4 * width, H/4, W/4),): everything before the dropout."""
        skip = self.layer1(self.stem(x))
        x = self.bot_aspp(self.aspp(self.layer3(self.layer2(skip))))
        fine = self.bot_fine(skip)
        return (self.final(torch.cat([fine, upsample(x, fine.shape[-2:])], dim=1)),)

    def mc_suffix(self, prefix, out_size):
        """mc_prefix's tuple -> logits (N, num_classes, *out_size); out_size None: before the final
        upsampling, (N, num_classes, H/4, W/4)."""
        (features,) = prefix
        logits = self.classifier(self.dropout(features))
        return logits if out_size is None else upsample(logits, out_size)

    def forward(self, x):
        return self.mc_suffix(self.mc_prefix(x), x.shape[-2:])

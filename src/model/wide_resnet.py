"""The WideResNet38-A2 trunk of NVIDIA's DeepWV3Plus (pre-activation identity-mapping blocks).

Layer names equal the published checkpoints': `modK.blockN.bn1.0`, `modK.blockN.convs.conv1`, ...,
`modK.blockN.proj_conv`.
"""
from collections import OrderedDict

from torch import nn


def bn_relu(channels):
    """BatchNorm2d + ReLU, kept as one Sequential so the keys read `bn1.0.weight`."""
    return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


class IdentityResidualBlock(nn.Module):
    """Pre-activation residual block: out = convs(bn_relu(x)) + shortcut.

    channels of length 2: two 3x3 convolutions (the first strided); of length 3: a 1x1 -> 3x3 -> 1x1
    bottleneck (the 1x1 strided). `dropout` > 0 puts a Dropout2d before the last convolution, as the
    original does in mod6 and mod7 (it replaces nn.Dropout by nn.Dropout2d there).
    The shortcut is x itself, or proj_conv applied to the pre-activated x when the shape changes.
    """

    def __init__(self, in_channels, channels, stride=1, dilation=1, dropout=0.0):
        super().__init__()
        if len(channels) not in (2, 3):
            raise ValueError(f"channels must have two or three values, got {channels}")
        self.bn1 = bn_relu(in_channels)
        if len(channels) == 2:
            layers = [
                ("conv1", nn.Conv2d(in_channels, channels[0], 3, stride=stride, padding=dilation,
                                    dilation=dilation, bias=False)),
                ("bn2", bn_relu(channels[0])),
                ("conv2", nn.Conv2d(channels[0], channels[1], 3, padding=dilation, dilation=dilation, bias=False)),
            ]
        else:
            layers = [
                ("conv1", nn.Conv2d(in_channels, channels[0], 1, stride=stride, bias=False)),
                ("bn2", bn_relu(channels[0])),
                ("conv2", nn.Conv2d(channels[0], channels[1], 3, padding=dilation, dilation=dilation, bias=False)),
                ("bn3", bn_relu(channels[1])),
                ("conv3", nn.Conv2d(channels[1], channels[2], 1, bias=False)),
            ]
        if dropout > 0:
            layers.insert(len(layers) - 1, ("dropout", nn.Dropout2d(dropout)))
        self.convs = nn.Sequential(OrderedDict(layers))
        self.proj_conv = None
        if stride != 1 or in_channels != channels[-1]:
            self.proj_conv = nn.Conv2d(in_channels, channels[-1], 1, stride=stride, bias=False)

    def forward(self, x):
        activated = self.bn1(x)
        shortcut = x if self.proj_conv is None else self.proj_conv(activated)
        return self.convs(activated) + shortcut


# mod2..mod7 of WideResNet38-A2 at output stride 8: (channels, blocks, stride of block1, dilation, dropout).
# mod2 and mod3 are each preceded by a 3x3/2 max pool; mod4 downsamples by its strided first block.
WIDE_RESNET38_STAGES = (
    ((128, 128), 3, 1, 1, 0.0),
    ((256, 256), 3, 1, 1, 0.0),
    ((512, 512), 6, 2, 1, 0.0),
    ((512, 1024), 3, 1, 2, 0.0),
    ((512, 1024, 2048), 1, 1, 4, 0.3),
    ((1024, 2048, 4096), 1, 1, 4, 0.5),
)


def wide_resnet38_stages():
    """[mod1, ..., mod7] of WideResNet38-A2 with dilations for output stride 8 (no pools, no classifier)."""
    stages = [nn.Sequential(OrderedDict([("conv1", nn.Conv2d(3, 64, 3, padding=1, bias=False))]))]
    in_channels = 64
    for channels, num_blocks, stride, dilation, dropout in WIDE_RESNET38_STAGES:
        blocks = []
        for i in range(num_blocks):
            block = IdentityResidualBlock(in_channels, channels, stride=stride if i == 0 else 1,
                                          dilation=dilation, dropout=dropout)
            blocks.append((f"block{i + 1}", block))
            in_channels = channels[-1]
        stages.append(nn.Sequential(OrderedDict(blocks)))
    return stages

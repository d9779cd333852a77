"""DGCNet (Dual Graph Convolutional Network) on a deep-stem ResNet-50 at output stride 8, as in GALD-DGCNet
and the Meta-OoD release ("DualSeg_res50"). Layer names equal the published checkpoint's.
"""
import torch
import torch.nn.functional as F
from torch import nn


def conv3x3(in_channels, out_channels, stride=1):
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class Bottleneck(nn.Module):
    """ResNet bottleneck (1x1 -> 3x3 -> 1x1, expansion 4), stride and dilation in the 3x3."""

    expansion = 4

    def __init__(self, in_channels, channels, stride=1, dilation=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, channels * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels * 4)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class SpatialGCN(nn.Module):
    """Graph reasoning over the channels of a (downsampled) feature map, with a residual connection."""

    def __init__(self, channels):
        super().__init__()
        inner = channels // 2
        self.node_k = nn.Conv2d(channels, inner, 1)
        self.node_v = nn.Conv2d(channels, inner, 1)
        self.node_q = nn.Conv2d(channels, inner, 1)
        self.conv_wg = nn.Conv1d(inner, inner, 1, bias=False)
        self.bn_wg = nn.BatchNorm1d(inner)
        self.out = nn.Sequential(nn.Conv2d(inner, channels, 1), nn.BatchNorm2d(channels))

    def forward(self, x):
        k, v, q = self.node_k(x), self.node_v(x), self.node_q(x)
        n, c, h, w = k.shape
        k, v, q = k.flatten(2), v.flatten(2), q.flatten(2)  # (n, c, hw)
        attention = torch.softmax(torch.bmm(q, v.transpose(1, 2)), dim=2)  # (n, c, c)
        # (k^T attention)^T = attention^T k: (n, c, hw)
        av = torch.bmm(k.transpose(1, 2), attention).transpose(1, 2)
        avw = self.bn_wg(self.conv_wg(av)).view(n, c, h, w)
        return F.relu(self.out(avw) + x)


class DualGCN(nn.Module):
    """Coordinate-space GCN (on a 1/8-downsampled copy) and feature-space GCN (projected to
    `planes // ratio` nodes), fused by a 1x1 convolution. (N, planes, h, w) -> (N, planes, h, w).
    """

    def __init__(self, planes, ratio=4):
        super().__init__()
        nodes, node_channels = planes // ratio, planes // ratio * 2
        self.phi = nn.Conv2d(planes, node_channels, 1, bias=False)
        self.bn_phi = nn.BatchNorm2d(node_channels)
        self.theta = nn.Conv2d(planes, nodes, 1, bias=False)
        self.bn_theta = nn.BatchNorm2d(nodes)
        self.conv_adj = nn.Conv1d(nodes, nodes, 1, bias=False)
        self.bn_adj = nn.BatchNorm1d(nodes)
        self.conv_wg = nn.Conv1d(node_channels, node_channels, 1, bias=False)
        self.bn_wg = nn.BatchNorm1d(node_channels)
        self.conv3 = nn.Conv2d(node_channels, planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.local = nn.Sequential(
            nn.Conv2d(planes, planes, 3, stride=2, padding=1, groups=planes, bias=False),
            nn.BatchNorm2d(planes),
            nn.Conv2d(planes, planes, 3, stride=2, padding=1, groups=planes, bias=False),
            nn.BatchNorm2d(planes),
            nn.Conv2d(planes, planes, 3, stride=2, padding=1, groups=planes, bias=False),
            nn.BatchNorm2d(planes))
        self.gcn_local_attention = SpatialGCN(planes)
        self.final = nn.Sequential(nn.Conv2d(planes * 2, planes, 1, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        n, _, h, w = x.shape
        local = self.gcn_local_attention(self.local(x))
        local = F.interpolate(local, size=(h, w), mode="bilinear", align_corners=True)
        spatial = x * local + x

        features = self.bn_phi(self.phi(x)).flatten(2)  # (n, 2m, hw)
        projection = self.bn_theta(self.theta(x)).flatten(2)  # (n, m, hw)
        # the projection sums over every pixel (32768 at 1024x2048), which can pass float16's 65504 under AMP
        with torch.autocast(x.device.type, enabled=False):
            features, projection = features.float(), projection.float()
            z_idt = torch.bmm(features, projection.transpose(1, 2))  # (n, 2m, m): 2m-dim features of m nodes
            # graph convolution over the nodes: (I - A_g) Z, then the state update W_g
            z = self.bn_adj(self.conv_adj(z_idt.transpose(1, 2))).transpose(1, 2) + z_idt
            z = self.bn_wg(self.conv_wg(z))
            y = torch.bmm(z, projection).view(n, -1, h, w)  # back to pixels
        graph = F.relu(x + self.bn3(self.conv3(y)))
        return self.final(torch.cat([spatial, graph], dim=1))


class DualGCNHead(nn.Module):
    def __init__(self, in_channels, inner, num_classes):
        super().__init__()
        self.conva = nn.Sequential(nn.Conv2d(in_channels, inner, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(inner), nn.ReLU(inplace=True))
        self.dualgcn = DualGCN(inner)
        self.convb = nn.Sequential(nn.Conv2d(inner, inner, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(inner), nn.ReLU(inplace=True))
        self.bottleneck = nn.Sequential(
            nn.Conv2d(in_channels + inner, inner, 3, padding=1, bias=False),
            nn.BatchNorm2d(inner),
            nn.ReLU(inplace=True),
            nn.Conv2d(inner, num_classes, 1))

    def forward(self, x):
        out = self.convb(self.dualgcn(self.conva(x)))
        return self.bottleneck(torch.cat([x, out], dim=1))


def make_layer(in_channels, channels, num_blocks, stride=1, dilation=1, multi_grid=None):
    """A ResNet stage; multi_grid multiplies the dilation of block i by multi_grid[i]."""
    downsample = None
    if stride != 1 or in_channels != channels * Bottleneck.expansion:
        downsample = nn.Sequential(nn.Conv2d(in_channels, channels * 4, 1, stride=stride, bias=False),
                                   nn.BatchNorm2d(channels * 4))
    grid = multi_grid or (1,) * num_blocks
    blocks = [Bottleneck(in_channels, channels, stride, dilation * grid[0], downsample)]
    blocks += [Bottleneck(channels * 4, channels, 1, dilation * grid[i]) for i in range(1, num_blocks)]
    return nn.Sequential(*blocks)


class DualGCNNet(nn.Module):
    """DGCNet on ResNet-50 with a three-conv deep stem, output stride 8 (layer3 dilation 2, layer4 4 x (1, 2, 4)).

    forward: x (N, 3, H, W) float32, ImageNet-normalised -> logits (N, num_classes, H, W) float32.
    Strides: conv1 2, maxpool 4, layer1 4, layer2..layer4 and head 8.
    `dsn` is the auxiliary training head of the original; its output never reaches the logits (the
    released forward discards it), so it is not computed and its parameters are frozen: they exist only
    so the published checkpoint loads strictly. Its Dropout2d is the model's only dropout, so MC dropout
    has nothing to sample here and the model has no mc_prefix.
    """

    def __init__(self, num_classes=19, layers=(3, 4, 6, 3)):
        super().__init__()
        self.conv1 = nn.Sequential(
            conv3x3(3, 64, stride=2), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            conv3x3(64, 64), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
            conv3x3(64, 128))
        self.bn1 = nn.BatchNorm2d(128)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.layer1 = make_layer(128, 64, layers[0])
        self.layer2 = make_layer(256, 128, layers[1], stride=2)
        self.layer3 = make_layer(512, 256, layers[2], dilation=2)
        self.layer4 = make_layer(1024, 512, layers[3], dilation=4, multi_grid=(1, 2, 4))
        self.head = DualGCNHead(2048, 512, num_classes)
        self.dsn = nn.Sequential(
            nn.Conv2d(1024, 512, 3, padding=1),
            nn.BatchNorm2d(512),
            nn.Dropout2d(0.1),
            nn.Conv2d(512, num_classes, 1))
        self.dsn.requires_grad_(False)

    def forward(self, x):
        size = x.shape[-2:]
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return F.interpolate(self.head(x), size=size, mode="bilinear", align_corners=True)

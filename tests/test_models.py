"""The networks: published key layouts, per-stage geometry, references for the tricky blocks, MC dropout split,
the tiny model's training, and the inference path. The big models are built once per module, inputs are tiny.
"""
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import config
from src.model import MODELS, build_model, infer_dataset, predict_logits
from src.model.deeplab import ASPP
from src.model.dualgcn import DualGCN
from src.model.wide_resnet import IdentityResidualBlock

# The published checkpoints' keys and shapes (copied from the project's shared/compat).
COMPAT = Path(__file__).resolve().parent / "data" / "checkpoint_keys.json"
# an odd size shows how every stage rounds: 33 x 47 -> 17 x 24 -> 9 x 12 -> 5 x 6 for WideResNet38
H, W = 33, 47


def randomize_batchnorm(model):
    """Non-trivial BatchNorm statistics and affine parameters, so eval-mode tests see every term."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)
    return model


def record_shapes(model, names, x):
    """Run model(x) and return {name: output shape} of the named submodules."""
    shapes, hooks = {}, []
    for name in names:
        module = model.get_submodule(name)
        hooks.append(module.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape))))
    with torch.no_grad():
        out = model(x)
    for hook in hooks:
        hook.remove()
    return shapes, out


@pytest.fixture(scope="module")
def wrn():
    torch.manual_seed(0)
    return randomize_batchnorm(build_model("DeepLabV3+_WideResNet38")).eval()


@pytest.fixture(scope="module")
def dgc():
    torch.manual_seed(0)
    return randomize_batchnorm(build_model("DualGCNNet_res50")).eval()


def test_model_names_are_the_config_names():
    assert list(MODELS) == list(config.MODELS)


def test_unknown_model_name_lists_the_legal_names():
    with pytest.raises(ValueError, match="DeepLabV3\\+_WideResNet38, DualGCNNet_res50, DeepLabV3\\+_TinyResNet"):
        build_model("DeepLabV3+_ResNet101")


@pytest.mark.parametrize("name", ["DeepLabV3+_WideResNet38", "DualGCNNet_res50"])
def test_state_dict_equals_the_published_checkpoint(name, wrn, dgc):
    published = json.loads(COMPAT.read_text())[name]
    model = {"DeepLabV3+_WideResNet38": wrn, "DualGCNNet_res50": dgc}[name]
    ours = [[key, list(value.shape), str(value.dtype).removeprefix("torch.")]
            for key, value in model.state_dict().items()]
    assert ours == published["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == published["num_parameters"]


# ---------------------------------------------------------------- DeepLabV3+ WideResNet38

def test_wide_resnet38_convolution_geometry(wrn):
    # (module, blocks, stride of block1, dilation, bottleneck) as in NVIDIA's WiderResNetA2(dilation=True)
    table = [("mod2", 3, 1, 1, False), ("mod3", 3, 1, 1, False), ("mod4", 6, 2, 1, False),
             ("mod5", 3, 1, 2, False), ("mod6", 1, 1, 4, True), ("mod7", 1, 1, 4, True)]
    for name, num_blocks, stride, dilation, bottleneck in table:
        blocks = list(wrn.get_submodule(name).children())
        assert len(blocks) == num_blocks
        for i, block in enumerate(blocks):
            s = stride if i == 0 else 1
            convs = block.convs
            kernel = 1 if bottleneck else 3
            assert (convs.conv1.kernel_size, convs.conv1.stride) == ((kernel, kernel), (s, s))
            three_by_three = [convs.conv2] if bottleneck else [convs.conv1, convs.conv2]
            for conv in three_by_three:
                assert conv.dilation == (dilation, dilation) and conv.padding == (dilation, dilation)
            assert (block.proj_conv is not None) == (i == 0)
            if block.proj_conv is not None:
                assert block.proj_conv.stride == (s, s)
    for pool in (wrn.pool2, wrn.pool3):
        assert (pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode) == (3, 2, 1, False)
    assert [branch[0].dilation for branch in wrn.aspp.features] == [(1, 1), (12, 12), (24, 24), (36, 36)]
    assert [branch[0].padding for branch in wrn.aspp.features] == [(0, 0), (12, 12), (24, 24), (36, 36)]
    dropouts = [(name, type(m), m.p) for name, m in wrn.named_modules()
                if isinstance(m, nn.modules.dropout._DropoutNd)]
    assert dropouts == [("mod6.block1.convs.dropout", nn.Dropout2d, 0.3),
                        ("mod7.block1.convs.dropout", nn.Dropout2d, 0.5)]


def reference_preactivation_block(block, x):
    """The original IdentityResidualBlock in functional form: BN-ReLU first, shortcut from the raw input
    unless there is a projection, which then sees the activated input."""
    def bn_relu(seq, t):
        bn = seq[0]
        return F.relu(F.batch_norm(t, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps))

    def conv(c, t):
        return F.conv2d(t, c.weight, None, c.stride, c.padding, c.dilation)

    c = block.convs
    a = bn_relu(block.bn1, x)
    if hasattr(c, "conv3"):
        out = conv(c.conv3, bn_relu(c.bn3, conv(c.conv2, bn_relu(c.bn2, conv(c.conv1, a)))))
    else:
        out = conv(c.conv2, bn_relu(c.bn2, conv(c.conv1, a)))
    return out + (x if block.proj_conv is None else conv(block.proj_conv, a))


@pytest.mark.parametrize("in_channels, channels, stride, dilation, dropout", [
    (8, (8, 8), 1, 2, 0.0),            # identity shortcut
    (4, (8, 8), 2, 1, 0.0),            # projected, strided
    (8, (4, 8, 16), 1, 4, 0.3),        # bottleneck with dropout (inactive in eval)
])
def test_identity_residual_block_matches_the_preactivation_reference(in_channels, channels, stride, dilation, dropout):
    torch.manual_seed(0)
    block = randomize_batchnorm(IdentityResidualBlock(in_channels, channels, stride, dilation, dropout)).eval()
    x = torch.randn(2, in_channels, 11, 13)
    with torch.no_grad():
        torch.testing.assert_close(block(x), reference_preactivation_block(block, x))


def test_aspp_matches_a_functional_reference():
    torch.manual_seed(0)
    aspp = randomize_batchnorm(ASPP(3, 2, rates=(2, 3, 5))).eval()
    x = torch.randn(1, 3, 12, 14)

    def branch(seq, t, rate):
        conv, bn = seq[0], seq[1]
        t = F.conv2d(t, conv.weight, padding=rate if conv.kernel_size == (3, 3) else 0, dilation=rate)
        return F.relu(F.batch_norm(t, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps))

    pooled = branch(aspp.img_conv, x.mean(dim=(2, 3), keepdim=True), 1).expand(-1, -1, 12, 14)
    expected = torch.cat([pooled] + [branch(b, x, r) for b, r in zip(aspp.features, (1, 2, 3, 5))], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(aspp(x), expected)


def test_wide_resnet38_stage_shapes_and_the_original_wiring(wrn):
    """Every stage's output shape, and DeepWV3Plus.forward as NVIDIA writes it, step by step, against ours
    (which runs through mc_prefix / mc_suffix)."""
    def up(t, size):
        return F.interpolate(t, size=size, mode="bilinear", align_corners=True)

    x = torch.randn(1, 3, H, W)
    names = ["mod1", "mod2", "mod3", "mod4", "mod5", "mod6", "mod7", "aspp", "bot_aspp", "final"]
    shapes, out = record_shapes(wrn, names, x)
    # max pools 3/2/1 without ceil_mode and the strided block give ceil(n / 2) per halving
    assert shapes == {
        "mod1": (1, 64, 33, 47), "mod2": (1, 128, 17, 24), "mod3": (1, 256, 9, 12), "mod4": (1, 512, 5, 6),
        "mod5": (1, 1024, 5, 6), "mod6": (1, 2048, 5, 6), "mod7": (1, 4096, 5, 6), "aspp": (1, 1280, 5, 6),
        "bot_aspp": (1, 256, 5, 6), "final": (1, 19, 17, 24)}
    assert out.shape == (1, 19, H, W) and out.dtype == torch.float32
    with torch.no_grad():
        m2 = wrn.mod2(wrn.pool2(wrn.mod1(x)))
        t = wrn.mod7(wrn.mod6(wrn.mod5(wrn.mod4(wrn.mod3(wrn.pool3(m2))))))
        dec0_up = up(wrn.bot_aspp(wrn.aspp(t)), m2.shape[2:])
        expected = up(wrn.final(torch.cat([wrn.bot_fine(m2), dec0_up], 1)), x.shape[2:])
    torch.testing.assert_close(out, expected)


def dropout_active(model):
    """Eval mode except the dropout layers: the MC dropout setting."""
    model.eval()
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.train()
    return model


@pytest.mark.parametrize("name", ["DeepLabV3+_WideResNet38", "DeepLabV3+_TinyResNet"])
def test_mc_prefix_and_suffix_reproduce_forward(name, wrn):
    torch.manual_seed(0)
    model = wrn if name == "DeepLabV3+_WideResNet38" else randomize_batchnorm(build_model(name))
    x = torch.randn(1, 3, 24, 32)
    with torch.no_grad():
        model.eval()
        prefix = model.mc_prefix(x)
        assert torch.equal(model(x), model.mc_suffix(prefix, x.shape[-2:]))

        dropout_active(model)
        torch.manual_seed(5)
        again = model.mc_prefix(x)  # no dropout before the split: the prefix is deterministic
        assert all(torch.equal(a, b) for a, b in zip(prefix, again))
        torch.manual_seed(7)
        sample = model(x)
        torch.manual_seed(7)
        assert torch.equal(sample, model.mc_suffix(prefix, x.shape[-2:]))
        assert not torch.equal(sample, model.mc_suffix(prefix, x.shape[-2:]))  # another draw of the masks
    model.eval()


# ---------------------------------------------------------------- DualGCNNet

def test_dualgcn_stage_shapes(dgc):
    names = ["conv1", "maxpool", "layer1", "layer2", "layer3", "layer4", "head"]
    shapes, out = record_shapes(dgc, names, torch.randn(1, 3, H, W))
    # stem conv /2: 17 x 24; max pool with ceil_mode: 9 x 13 (12 without); layer2 /2: 5 x 7
    assert shapes == {
        "conv1": (1, 128, 17, 24), "maxpool": (1, 128, 9, 13), "layer1": (1, 256, 9, 13),
        "layer2": (1, 512, 5, 7), "layer3": (1, 1024, 5, 7), "layer4": (1, 2048, 5, 7), "head": (1, 19, 5, 7)}
    assert out.shape == (1, 19, H, W) and out.dtype == torch.float32


def test_dualgcn_dilations(dgc):
    assert [b.conv2.dilation[0] for b in dgc.layer3] == [2] * 6
    assert [b.conv2.dilation[0] for b in dgc.layer4] == [4, 8, 16]
    assert [b.conv2.padding[0] for b in dgc.layer4] == [4, 8, 16]
    assert [b.conv2.stride[0] for b in dgc.layer2] == [2, 1, 1, 1]
    assert dgc.layer2[0].downsample[0].stride == (2, 2) and dgc.layer3[0].downsample[0].stride == (1, 1)


def test_dualgcn_auxiliary_branch_never_reaches_the_output(dgc):
    x = torch.randn(1, 3, 24, 24)
    with torch.no_grad():
        before = dgc(x)
        saved = {k: v.clone() for k, v in dgc.dsn.state_dict().items()}
        for p in dgc.dsn.parameters():
            p.add_(1.0)
        after = dgc(x)
        dgc.dsn.load_state_dict(saved)
    assert torch.equal(before, after)
    assert not any(p.requires_grad for p in dgc.dsn.parameters())
    assert not hasattr(dgc, "mc_prefix")


def test_dualgcn_graph_module_matches_an_einsum_reference():
    """The transposes of DualGCN's graph reasoning, written independently with einsum and explicit BN."""
    torch.manual_seed(0)
    g = randomize_batchnorm(DualGCN(16)).eval()
    x = torch.randn(2, 16, 9, 10)

    def bn(module, t):
        return F.batch_norm(t, module.running_mean, module.running_var, module.weight, module.bias, False, 0.0,
                            module.eps)

    def conv1x1(conv, t):  # over dim 1 of (n, c, ...)
        out = torch.einsum("oc,nc...->no...", conv.weight.flatten(1), t)
        return out if conv.bias is None else out + conv.bias.view(1, -1, *([1] * (t.dim() - 2)))

    # coordinate branch: depthwise /8, SpatialGCN, back up
    s = g.gcn_local_attention
    d = g.local
    small = bn(d[5], d[4](bn(d[3], d[2](bn(d[1], d[0](x))))))
    k, v, q = (conv1x1(c, small).flatten(2) for c in (s.node_k, s.node_v, s.node_q))
    attention = torch.softmax(torch.einsum("ncp,ndp->ncd", q, v), dim=2)
    av = torch.einsum("ncp,ncd->ndp", k, attention)
    avw = bn(s.bn_wg, conv1x1(s.conv_wg, av)).view(2, 8, *small.shape[2:])
    local = F.relu(bn(s.out[1], conv1x1(s.out[0], avw)) + small)
    local = F.interpolate(local, size=(9, 10), mode="bilinear", align_corners=True)
    spatial = x * local + x
    # feature branch: project pixels onto 4 nodes with 8-dim features, reason, re-project
    feats = bn(g.bn_phi, conv1x1(g.phi, x)).flatten(2)
    proj = bn(g.bn_theta, conv1x1(g.theta, x)).flatten(2)
    z_idt = torch.einsum("nfp,nmp->nfm", feats, proj)
    z = torch.einsum("nmf->nfm", bn(g.bn_adj, conv1x1(g.conv_adj, torch.einsum("nfm->nmf", z_idt)))) + z_idt
    z = bn(g.bn_wg, conv1x1(g.conv_wg, z))
    y = torch.einsum("nfm,nmp->nfp", z, proj).view(2, 8, 9, 10)
    graph = F.relu(x + bn(g.bn3, conv1x1(g.conv3, y)))
    expected = bn(g.final[1], conv1x1(g.final[0], torch.cat([spatial, graph], 1)))
    with torch.no_grad():
        torch.testing.assert_close(g(x), expected, rtol=1e-4, atol=1e-5)


def test_dualgcn_graph_reasoning_stays_float32_under_amp():
    # the node features sum over every pixel of the image (32768 at 1024x2048): under AMP they must not be
    # float16, whose largest value is 65504. CPU autocast in float16 stands in for CUDA's here
    torch.manual_seed(0)
    g = randomize_batchnorm(DualGCN(16)).eval()
    dtypes = {}
    for name in ("conv_adj", "conv_wg", "phi"):
        getattr(g, name).register_forward_hook(
            lambda module, inputs, output, name=name: dtypes.update({name: output.dtype}))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.float16):
        g(torch.randn(1, 16, 8, 8))
    assert dtypes == {"conv_adj": torch.float32, "conv_wg": torch.float32, "phi": torch.float16}


# ---------------------------------------------------------------- the tiny model

def test_tiny_model_stage_shapes():
    model = build_model("DeepLabV3+_TinyResNet").eval()
    names = ["stem", "layer1", "layer2", "layer3", "aspp", "final"]
    shapes, out = record_shapes(model, names, torch.randn(2, 3, H, W))
    assert shapes == {"stem": (2, 16, 17, 24), "layer1": (2, 32, 9, 12), "layer2": (2, 64, 5, 6),
                      "layer3": (2, 128, 5, 6), "aspp": (2, 320, 5, 6), "final": (2, 64, 9, 12)}
    assert out.shape == (2, 19, H, W)


def test_tiny_model_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = build_model("DeepLabV3+_TinyResNet").train()
    # background 0 and one box per image whose colour channel tells its class (1 or 2)
    images = torch.randn(2, 3, 32, 64) * 0.1
    target = torch.zeros(2, 32, 64, dtype=torch.long)
    images[0, 0, 8:20, 10:30] += 2
    target[0, 8:20, 10:30] = 1
    images[1, 1, 12:28, 30:60] += 2
    target[1, 12:28, 30:60] = 2
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = F.cross_entropy(model(images), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < losses[0] / 10


def test_tiny_model_dropout_is_active_only_when_asked():
    torch.manual_seed(0)
    model = build_model("DeepLabV3+_TinyResNet").eval()
    x = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        dropout_active(model)
        assert not torch.equal(model(x), model(x))
        assert not model.layer1.bn1.training  # BatchNorm stays in eval mode under MC dropout


# ---------------------------------------------------------------- inference

class ToyDataset(torch.utils.data.Dataset):
    """Images of two sizes; the target is the index, passed through untouched."""

    def __init__(self):
        generator = torch.Generator().manual_seed(3)
        self.images = [torch.randn(3, 24 + 8 * (i % 2), 40, generator=generator) for i in range(4)]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], i


def test_predict_logits_is_the_eval_forward():
    torch.manual_seed(0)
    model = build_model("DeepLabV3+_TinyResNet").train()
    x = torch.randn(2, 3, 24, 40)
    logits = predict_logits(model, x, amp=False)
    assert not model.training
    with torch.no_grad():
        assert torch.equal(logits, model(x))
    assert logits.dtype == torch.float32 and logits.shape == (2, 19, 24, 40)
    logits.add_(1)  # an ordinary tensor, not an inference tensor
    with pytest.raises(ValueError, match="amp=True needs the model on a CUDA device"):
        predict_logits(model, x, amp=True)


def test_infer_dataset_yields_every_requested_image_at_full_resolution():
    torch.manual_seed(0)
    model = build_model("DeepLabV3+_TinyResNet")
    dataset = ToyDataset()
    results = list(infer_dataset(model, dataset, torch.device("cpu"), amp=False, indices=[3, 0, 1]))
    assert [i for i, _, _ in results] == [3, 0, 1]
    for i, logits, target in results:
        image = dataset.images[i]
        assert logits.shape == (19, *image.shape[1:]) and logits.dtype == torch.float32
        assert logits.device.type == "cpu" and target == i
        torch.testing.assert_close(logits, predict_logits(model, image[None], amp=False)[0])
    assert [i for i, _, _ in infer_dataset(model, dataset, "cpu", amp=False)] == [0, 1, 2, 3]

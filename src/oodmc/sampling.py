"""MC-dropout sampling: stochastic forward passes of one image with only the dropout layers active."""
import contextlib

import torch
from torch import nn

# The models of src/model whose dropout reaches the logits, so that MC-dropout samples differ.
OODMC_MODELS = ("DeepLabV3+_WideResNet38", "DeepLabV3+_TinyResNet")

DROPOUT_TYPES = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)

# Two samples whose logits differ by at most this, relative to the largest logit, count as identical
# (real MC-dropout samples differ by far more; the slack covers non-deterministic kernels).
SAME_SAMPLE_RTOL = 1e-4


def dropout_layers(model):
    """Names of the dropout modules of `model` with p > 0, in module order."""
    return [name for name, module in model.named_modules() if isinstance(module, DROPOUT_TYPES) and module.p > 0]


@contextlib.contextmanager
def mc_dropout(model, seed, device):
    """Run `model` for MC dropout inside the block; everything is restored on exit.

    Dropout layers are in train mode and every other module (BatchNorm!) in eval mode, so that
    samples differ only by their dropout masks. The global RNG of the CPU and of `device` is seeded
    with `seed` and restored afterwards, so the samples are reproducible and the caller's random
    stream is untouched. Raises ValueError when the model has no active dropout layer.
    """
    if not dropout_layers(model):
        raise ValueError(f"{type(model).__name__} has no dropout layer with p > 0, so MC dropout cannot sample "
                         f"it; OODMC works with the models {', '.join(OODMC_MODELS)}")
    modes = {module: module.training for module in model.modules()}
    cuda_devices = [device] if device.type == "cuda" else []
    try:
        model.eval()
        for module in model.modules():
            if isinstance(module, DROPOUT_TYPES):
                module.train()
        with torch.random.fork_rng(devices=cuda_devices):
            torch.default_generator.manual_seed(seed)
            if cuda_devices:
                with torch.cuda.device(device):
                    torch.cuda.manual_seed(seed)
            yield
    finally:
        for module, training in modes.items():
            module.train(training)


def mc_dropout_batches(model, image, num_samples, batch_size, reuse_prefix=True, amp=False):
    """Yield the logits of `num_samples` stochastic passes of one image, `batch_size` copies per pass.

    Call it inside `mc_dropout(model, seed, image.device)` and `torch.no_grad()`.
    image: (3, H, W) float32, normalised, on the model's device.
    Yields (b, C, H, W) float32 tensors with b = batch_size, the last one smaller when batch_size does
    not divide num_samples. When the model has `mc_prefix`/`mc_suffix` and `reuse_prefix` is set, the
    deterministic prefix runs once and only the suffix runs per copy; the random masks, and so the
    samples, are the same as those of full passes (same mask shapes drawn in the same order).
    Raises ValueError when the first two samples are identical: the dropout does not reach the output.
    """
    if num_samples < 2:
        raise ValueError(f"num_samples is {num_samples}; moments need at least 2 MC-dropout samples")
    if batch_size < 1:
        raise ValueError(f"batch_size is {batch_size}; it must be at least 1")
    out_size = image.shape[-2:]
    prefix = None
    if reuse_prefix and hasattr(model, "mc_prefix"):
        with torch.autocast(image.device.type, enabled=amp):
            prefix = model.mc_prefix(image[None])
    first = None
    for start in range(0, num_samples, batch_size):
        b = min(batch_size, num_samples - start)
        # expand() makes views, not copies; a model that wrote into its input in place would fail loudly.
        with torch.autocast(image.device.type, enabled=amp):
            if prefix is None:
                logits = model(image.expand(b, *image.shape))
            else:
                logits = model.mc_suffix(tuple(t.expand(b, *t.shape[1:]) for t in prefix), out_size)
        logits = logits.float()
        if start == 0:
            # a 1-in-16 pixel subsample of the first sample is enough to see dropout reach the output
            first = logits[0, :, ::4, ::4].clone()
        if first is not None and (b > 1 or start > 0):
            _require_different(first, logits[1 if start == 0 else 0, :, ::4, ::4], model)
            first = None
        yield logits
        del logits  # free this batch before the next pass


def _require_different(first, second, model):
    tolerance = SAME_SAMPLE_RTOL * first.abs().max()
    if (first - second).abs().max() <= tolerance:
        raise ValueError(
            f"two MC-dropout samples of {type(model).__name__} give identical logits: its dropout layers "
            f"({', '.join(dropout_layers(model))}) do not reach the output (DualGCNNet_res50's only dropout is in "
            f"the auxiliary dsn branch, which forward discards). OODMC works with the models "
            f"{', '.join(OODMC_MODELS)}")

"""MC-dropout sampling: stochastic forward passes of one image with only the dropout layers active."""
import contextlib

import torch
import torch.nn.functional as F
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
    Yields (b, C, h, w) float32 tensors with b = batch_size, the last one smaller when batch_size does
    not divide num_samples. When the model has `mc_prefix`/`mc_suffix` and `reuse_prefix` is set, the
    deterministic prefix runs once and only the suffix runs per copy; the random masks, and so the
    samples, are the same as those of full passes (same mask shapes drawn in the same order). The suffix
    stops before the model's final bilinear upsampling, so (h, w) is then smaller than the image:
    UpsampledPixels gives the full-resolution values a few pixels at a time, never (b, C, H, W) at once.
    Full passes yield (h, w) = (H, W).
    Raises ValueError when the first two samples are identical: the dropout does not reach the output.
    """
    if num_samples < 2:
        raise ValueError(f"num_samples is {num_samples}; moments need at least 2 MC-dropout samples")
    if batch_size < 1:
        raise ValueError(f"batch_size is {batch_size}; it must be at least 1")
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
                logits = model.mc_suffix(tuple(t.expand(b, *t.shape[1:]) for t in prefix), None)
        logits = logits.float()
        if start == 0:
            # a 1-in-16 pixel subsample of the first sample is enough to see dropout reach the output
            first = logits[0, :, ::4, ::4].clone()
        if first is not None and (b > 1 or start > 0):
            _require_different(first, logits[1 if start == 0 else 0, :, ::4, ::4], model)
            first = None
        yield logits
        del logits  # free this batch before the next pass


class UpsampledPixels:
    """Values of (b, C, h, w) logits resized bilinearly (align_corners=True, as the models' final
    upsampling) to out_size, at a few of the target pixels at a time.

    The full-resolution batch (b, C, H, W) takes b * 152 MiB at 1024x2048; computed for a range of
    pixels it takes almost nothing. pixels: optional (k,) int64 flat indices into H * W, the pixels
    wanted (all H * W when None), in that order. Call it as upsampled(logits, start, stop) for pixels
    [start, stop) of that list: (b, C, stop - start). The weights are those of F.interpolate, computed
    in float32 the way PyTorch does; the result agrees with it to float32 rounding.
    """

    def __init__(self, in_size, out_size, pixels=None, device="cpu"):
        self.in_size, self.out_size = tuple(in_size), tuple(out_size)
        self.pixels = None if pixels is None else torch.as_tensor(pixels, dtype=torch.int64, device=device)
        self.num_pixels = out_size[0] * out_size[1] if pixels is None else len(self.pixels)
        self.same_size = self.in_size == self.out_size
        if not self.same_size:
            self.rows = _linear_weights(in_size[0], out_size[0], device)
            self.cols = _linear_weights(in_size[1], out_size[1], device)

    def __call__(self, logits, start, stop):
        flat = logits.flatten(2)
        if self.same_size:
            return flat[:, :, start:stop] if self.pixels is None else flat[:, :, self.pixels[start:stop]]
        if self.pixels is None:
            return self._row_range(logits, start, stop)
        index = self.pixels[start:stop]
        row0, row1, row_weight = (t[index // self.out_size[1]] for t in self.rows)
        col0, col1, col_weight = (t[index % self.out_size[1]] for t in self.cols)
        width = self.in_size[1]

        def row(r):  # interpolated along the columns, on source row r of each pixel
            left, right = flat[:, :, r * width + col0], flat[:, :, r * width + col1]
            return left.mul_(1 - col_weight).add_(right.mul_(col_weight))

        return row(row0).mul_(1 - row_weight).add_(row(row1).mul_(row_weight))

    def _row_range(self, logits, start, stop):
        """Pixels [start, stop) of the whole map: the output rows that hold them, blended from two
        source rows each, widened by F.interpolate, then cut to the range."""
        width = self.out_size[1]
        first, last = start // width, (stop - 1) // width + 1
        row0, row1, row_weight = (t[first:last] for t in self.rows)
        row_weight = row_weight[:, None]
        rows = logits.index_select(2, row0).mul_(1 - row_weight).add_(logits.index_select(2, row1).mul_(row_weight))
        b, c, r, w = rows.shape
        wide = F.interpolate(rows.view(b, c * r, w), size=width, mode="linear", align_corners=True)
        return wide.view(b, c, r * width)[:, :, start - first * width:stop - first * width]


def _linear_weights(in_len, out_len, device):
    """align_corners=True linear resizing of one axis: for every output position the lower and upper
    source index and the upper one's weight, float32 as in PyTorch's kernels."""
    scale = torch.tensor(in_len - 1, dtype=torch.float32) / (out_len - 1) if out_len > 1 else torch.tensor(0.0)
    source = torch.arange(out_len, dtype=torch.float32) * scale
    lower = source.long().clamp_(max=in_len - 1)
    upper = (lower + 1).clamp_(max=in_len - 1)
    return lower.to(device), upper.to(device), (source - lower).to(device)


def _require_different(first, second, model):
    tolerance = SAME_SAMPLE_RTOL * first.abs().max()
    if (first - second).abs().max() <= tolerance:
        raise ValueError(
            f"two MC-dropout samples of {type(model).__name__} give identical logits: its dropout layers "
            f"({', '.join(dropout_layers(model))}) do not reach the output (DualGCNNet_res50's only dropout is in "
            f"the auxiliary dsn branch, which forward discards). OODMC works with the models "
            f"{', '.join(OODMC_MODELS)}")

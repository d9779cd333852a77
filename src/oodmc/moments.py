"""OODMC features: streaming moments of MC-dropout samples, per pixel and class, kept on the device.

Feature layout, (1 + C * order) channels per pixel:
    channel 0                      (1 - w) * entropy of the mean softmax (natural log)
    channel 1 + (k - 1) * C + c    w * mean of class c                          (k = 1)
                                   w * central moment of order k of class c     (k = 2..order)
i.e. the (order, C) block of moments flattened in C (row-major) order, the class varying fastest:
[(1-w)*H, w*mean_0..w*mean_{C-1}, w*m2_0..w*m2_{C-1}, ..., w*m_order_0..]; 77 channels for order 4, C = 19.
Central moments are population moments: m_k = mean over samples of (x - mean)^k.
"""
import math

import torch

from src.oodmc.sampling import UpsampledPixels, mc_dropout, mc_dropout_batches
from src.runtime import release_freed_host_memory

# The temporaries of one update step take about this many bytes in all, so the update of a full-resolution
# batch needs little memory beyond the state. A GPU gets larger steps: fewer kernel launches, memory to spare.
UPDATE_CHUNK_BYTES = {"cpu": 32 * 2**20, "cuda": 1024 * 2**20}

SOURCES = ("logits", "softmax")


def num_features(num_classes, order):
    """Channels of the feature map: 1 + num_classes * order."""
    return 1 + num_classes * order


class StreamingMoments:
    """Running mean and central moments of orders 2..order of (C, P) samples, fed batch by batch.

    The state is the feature map itself, (1 + C * order, P) float32 on `device`, plus the running sum
    of the softmax (C, P) when source is "logits" (for the entropy of the mean softmax). A batch is
    merged with the running state by shifting both sets of central power sums to the combined mean
    (Pebay's pairwise update), so no sample is kept and float32 stays accurate. The update runs over
    steps of pixels whose temporaries take about chunk_bytes (default: UPDATE_CHUNK_BYTES of the device).
    """

    def __init__(self, num_classes, num_pixels, order, source, device, chunk_bytes=None):
        _check_settings(order, source)
        device = torch.device(device)
        self.num_classes = num_classes
        self.order = order
        self.source = source
        self.chunk_bytes = chunk_bytes or UPDATE_CHUNK_BYTES.get(device.type, UPDATE_CHUNK_BYTES["cpu"])
        self.count = 0
        self.state = torch.zeros(num_features(num_classes, order), num_pixels, device=device)
        self.prob_sum = torch.zeros(num_classes, num_pixels, device=device) if source == "logits" else None
        self.finished = False

    def update(self, logits, values_at=None):
        """Add samples: the (b, C, P) float32 values of the state's P pixels, on its device.

        values_at: optional; then logits are whatever values_at(logits, start, stop) turns into the
        (b, C, stop - start) values of pixels [start, stop), e.g. low-resolution logits and an
        UpsampledPixels, so that the full set of values never exists at once.
        """
        if self.finished:
            raise RuntimeError("StreamingMoments.finish() was called; the state can take no more samples")
        b, c, p = logits.shape[0], logits.shape[1], self.state.shape[1]
        if values_at is None:
            if logits.shape[2:] != (p,):
                raise ValueError(f"logits have shape {tuple(logits.shape)}; expected (b, {self.num_classes}, {p})")
            values_at = _pixel_range
        if c != self.num_classes:
            raise ValueError(f"logits have {c} classes; the state has {self.num_classes}")
        # an update step holds about 6 * b + 2 * order temporaries of (C, pixels of the step)
        step = max(1, self.chunk_bytes // (4 * c * (6 * b + 2 * self.order)))
        for start in range(0, p, step):
            stop = min(start + step, p)
            self._update_pixels(values_at(logits, start, stop), slice(start, stop))
        self.count += b

    def _update_pixels(self, logits, pixels):
        c = self.num_classes
        if self.source == "softmax" or self.prob_sum is not None:
            probs = torch.softmax(logits, dim=1)
        values = probs if self.source == "softmax" else logits
        if self.prob_sum is not None:
            self.prob_sum[:, pixels] += probs.sum(0)
        n_old, n_new = self.count, values.shape[0]
        n = n_old + n_new
        mean = self.state[1:1 + c, pixels]
        # sums[k]: the sum over all samples so far of (x - mean)^k, a view of the state updated in place
        sums = {k: self.state[1 + (k - 1) * c:1 + k * c, pixels] for k in range(2, self.order + 1)}
        batch_mean = values.mean(0)
        batch_sums = {}
        if n_new > 1:  # a single sample has no spread of its own
            centred = values - batch_mean
            correction = centred.mean(0)  # the rounding error of batch_mean (corrected two-pass algorithm)
            centred -= correction
            power = centred * centred
            batch_sums[2] = power.sum(0)
            for k in range(3, self.order + 1):
                power *= centred
                batch_sums[k] = power.sum(0)
            del centred, power
        delta = batch_mean - mean
        if n_new > 1:
            delta += correction
        powers = [None, delta]
        for _ in range(2, self.order + 1):
            powers.append(powers[-1] * delta)
        # each part re-centred on the combined mean, whose distance from the part's mean is a * delta
        # (old part) or b * delta (new part): sum (x - mean)^p = sum_k C(p, k) (shift)^(p - k) sums_k
        a, b = -n_new / n, n_old / n
        for p in range(self.order, 1, -1):  # highest order first: lower orders are still the old sums
            target = sums[p]
            if batch_sums:
                target += batch_sums[p]
            for k in range(2, p):
                target.addcmul_(powers[p - k], sums[k], value=math.comb(p, k) * a ** (p - k))
                if batch_sums:
                    target.addcmul_(powers[p - k], batch_sums[k], value=math.comb(p, k) * b ** (p - k))
            target.add_(powers[p], alpha=n_old * a ** p + n_new * b ** p)
        mean.add_(delta, alpha=n_new / n)

    def finish(self, weight):
        """The weighted feature map (1 + C * order, P) float32, computed in place of the state.

        weight: w in [0, 1]. After this the object takes no more samples.
        """
        if self.count == 0:
            raise RuntimeError("StreamingMoments.finish() before any update: there are no samples")
        _check_settings(self.order, self.source, weight)
        c = self.num_classes
        step = max(1, self.chunk_bytes // (8 * c))  # two temporaries of (C, pixels of the step)
        for start in range(0, self.state.shape[1], step):
            chunk = self.state[:, start:start + step]
            chunk[1 + c:] /= self.count
            mean_probs = chunk[1:1 + c] if self.prob_sum is None else self.prob_sum[:, start:start + step] / self.count
            chunk[0] = -torch.xlogy(mean_probs, mean_probs).sum(0) * (1.0 - weight)
            chunk[1:] *= weight
        self.prob_sum = None
        self.finished = True
        return self.state


def moment_features(model, image, *, num_samples, batch_size, order, weight, source, seed, pixels=None,
                    reuse_prefix=True, amp=False, chunk_bytes=None):
    """OODMC features of one image from `num_samples` MC-dropout passes (layout: see the module docstring).

    image: (3, H, W) float32, normalised, on the model's device. seed: int, the dropout masks' seed
    (use one per image, e.g. base seed + image index, so results do not depend on the image order).
    pixels: optional (k,) int64 flat indices into H * W (tensor or array): the moments are kept for
    those pixels only (SVM training pixels), which needs almost no memory.
    Returns a float32 tensor on image.device: (1 + C * order, H, W), or (1 + C * order, k) with pixels.
    The prefix of a model with mc_prefix/mc_suffix runs once (reuse_prefix=False forces full passes;
    both give the same samples). Raises ValueError for a model without active dropout or whose dropout
    does not reach the output.
    """
    _check_settings(order, source, weight)
    moments = None
    with torch.no_grad(), mc_dropout(model, seed, image.device):
        for logits in mc_dropout_batches(model, image, num_samples, batch_size, reuse_prefix, amp):
            if moments is None:
                if image.device.type == "cpu":  # the prefix's temporaries must not stay under the state
                    release_freed_host_memory()
                upsampled = UpsampledPixels(logits.shape[-2:], image.shape[-2:], pixels, image.device)
                moments = StreamingMoments(logits.shape[1], upsampled.num_pixels, order, source, image.device,
                                           chunk_bytes)
            moments.update(logits, upsampled)
            del logits  # free this batch before the next one is computed
        features = moments.finish(weight)
    return features if pixels is not None else features.view(-1, *image.shape[-2:])


def _pixel_range(values, start, stop):
    return values[:, :, start:stop]


def _check_settings(order, source, weight=0.0):
    if order < 2:
        raise ValueError(f"order is {order}; the moments run from order 2 up, so it must be at least 2")
    if source not in SOURCES:
        raise ValueError(f"source is {source!r}; it must be one of {SOURCES}")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight is {weight}; it must lie in [0, 1]")

"""Loading weights: the one place that reads a checkpoint into a model, strictly; and writing a checkpoint file."""
import os

import torch

from src.errors import UserError
from src.files import atomic_path

PREFIX = "module."  # written by DataParallel / DistributedDataParallel; the published WideResNet38 files have it
SHOWN_KEYS = 5


class CheckpointError(UserError):
    """A checkpoint file that is missing, unreadable or does not fit the model."""


def read_checkpoint(path):
    """torch.load(path) on the CPU with weights_only=True, every failure as a one-line CheckpointError."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} does not exist; check the path, or train or download the weights "
                              f"first (see the README)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises a different type for every way a file can be broken
        # the weights-only unpickler puts its reason into the exception it chains from
        cause = error.__context__ if "Weights only load failed" in str(error) and error.__context__ else error
        reason = str(cause).strip().splitlines()[0].split(". ")[0] if str(cause).strip() else "no details"
        if reason.startswith("Unsupported global"):
            raise CheckpointError(
                f"{path} holds Python objects that torch.load(weights_only=True) refuses ({reason}). If you trust "
                f"the file, convert it once to a plain state dict: python -c \"import torch; "
                f"c = torch.load('{path}', map_location='cpu', weights_only=False); "
                f"torch.save({{'state_dict': c.get('state_dict', c)}}, 'converted.pth')\"") from None
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (truncated, or another kind of file: "
                              f"{type(cause).__name__}: {reason}); copy or download it again") from None


def _first(items):
    return ", ".join(items[:SHOWN_KEYS]) + (", ..." if len(items) > SHOWN_KEYS else "")


def load_checkpoint(model, path):
    """Load the weights in `path` into `model` strictly and return the whole loaded checkpoint (a dict).

    The file holds {'state_dict': ..., other entries} (returned as is, so training can resume from the
    optimizer state, epoch, ...) or a bare state dict. A `module.` key prefix is stripped. Raises
    CheckpointError for a missing or unreadable file and for any missing, unexpected or mis-shaped key.
    """
    checkpoint = read_checkpoint(path)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds no state dict (neither a {{'state_dict': ...}} wrapper nor a dict of "
                              f"tensors); is it a checkpoint of this project?")
    state = {key.removeprefix(PREFIX): value for key, value in state.items()}

    expected = model.state_dict()
    # BatchNorm fills in num_batches_tracked for files written before PyTorch 0.4.1, which lack it.
    missing = [k for k in expected if k not in state and not k.endswith(".num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    misshaped = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or unexpected or misshaped:
        details = {
            "missing (model shape)": [f"{k} {tuple(expected[k].shape)}" for k in missing],
            "unexpected (file shape)": [f"{k} {tuple(state[k].shape)}" for k in unexpected],
            "mis-shaped (file vs model)": [f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}"
                                           for k in misshaped],
        }
        lines = [f"{path} does not fit {type(model).__name__}: {len(missing)} missing, {len(unexpected)} unexpected "
                 f"and {len(misshaped)} mis-shaped keys (is it a checkpoint of another model?)"]
        lines += [f"  {kind}: {_first(items)}" for kind, items in details.items() if items]
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(state, strict=True)
    return checkpoint


class _RecordingWriter:
    """A file wrapper that keeps what interrupted a write (a full disk's OSError, Ctrl-C's KeyboardInterrupt):
    torch.save turns it into a RuntimeError."""

    def __init__(self, file):
        self.file = file
        self.error = None

    def write(self, data):
        try:
            return self.file.write(data)
        except (OSError, KeyboardInterrupt) as error:
            self.error = error
            raise

    def flush(self):
        return self.file.flush()


def save_checkpoint_file(state, path):
    """torch.save(state) to `path` atomically; a failed write raises its own error (a full disk's OSError naming
    `path`, or Ctrl-C's KeyboardInterrupt), not torch's RuntimeError."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        writer = _RecordingWriter(f)
        try:
            torch.save(state, writer)
        except RuntimeError:
            if writer.error is None:
                raise
            raise writer.error from None

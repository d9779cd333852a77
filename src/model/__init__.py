"""The segmentation networks: plain nn.Modules returning logits at input resolution, by name."""
from src.model.checkpoint import CheckpointError, load_checkpoint
from src.model.deeplab import DeepWV3Plus
from src.model.dualgcn import DualGCNNet
from src.model.inference import infer_dataset, predict_logits
from src.model.tiny import TinyDeepLabV3Plus

# name (config.MODELS, -model) -> constructor taking num_classes
MODELS = {
    "DeepLabV3+_WideResNet38": DeepWV3Plus,
    "DualGCNNet_res50": DualGCNNet,
    "DeepLabV3+_TinyResNet": TinyDeepLabV3Plus,
}

__all__ = ["MODELS", "build_model", "load_model", "load_checkpoint", "CheckpointError", "predict_logits", "infer_dataset",
           "DeepWV3Plus", "DualGCNNet", "TinyDeepLabV3Plus"]


def load_model(name, path, device, num_classes=19):
    """The network `name` with the weights of the checkpoint `path` (strictly loaded), on `device`."""
    model = build_model(name, num_classes)
    load_checkpoint(model, path)
    return model.to(device)


def build_model(name, num_classes=19):
    """A freshly initialised network `name` (a key of MODELS) with `num_classes` output channels."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](num_classes=num_classes)

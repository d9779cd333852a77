"""Datasets by name, as config.py names them.

VALSETS constructors take (root, split, transform): root is the dataset's own folder (config.Paths:
lost_and_found, fishyscapes, road_anomaly21, road_obstacle21); split is the Fishyscapes split
(fs_split), for LostAndFound `testNoKnown` selects the leaderboard's frames and labels (anything else: its
test split), ignored by the others.
Every evaluation set has `images`, `train_id_in`, `train_id_out`, `ignore_index`, `label_ids(i)`,
`has_label(i)` (the metrics score frame i), `frame_name(i)` and `left_out` ({frame name: why the metrics leave
it out}, the frames of the benchmark's lists included).
"""
from src.dataset import transforms
from src.dataset.cityscapes import Cityscapes
from src.dataset.cityscapes_coco_mix import CityscapesCocoMix
from src.dataset.coco import COCO
from src.dataset.cs_coco_embedding import CsCocoEmbedding
from src.dataset.fishyscapes import Fishyscapes
from src.dataset.lost_and_found import LostAndFound
from src.dataset.smiyc import RoadAnomaly21, RoadObstacle21

VALSETS = {
    "LostAndFound": lambda root, split, transform: LostAndFound(root, "test", transform,
                                                                no_known=split == "testNoKnown"),
    "Fishyscapes": Fishyscapes,
    "RoadAnomaly21": lambda root, split, transform: RoadAnomaly21(root, transform),
    "RoadObstacle21": lambda root, split, transform: RoadObstacle21(root, transform),
}



def build_valset(name, root, split):
    """The evaluation set `name` (a key of VALSETS) with the evaluation transform (tensor, ImageNet normalisation)."""
    return VALSETS[name](root, split, transforms.Compose([transforms.ToTensor(), transforms.Normalize()]))


__all__ = ["build_valset", "COCO", "Cityscapes", "CityscapesCocoMix", "CsCocoEmbedding", "Fishyscapes", "LostAndFound",
           "RoadAnomaly21", "RoadObstacle21", "VALSETS"]

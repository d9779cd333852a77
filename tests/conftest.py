import pytest

import config
import ood_training

from preparation.make_cropped_coco import make_cropped_coco
from preparation.make_demo_world import make_demo_world
from preparation.prepare_cityscapes import prepare_cityscapes
from preparation.prepare_coco_segmentation import prepare_coco_segmentation
from preparation.prepare_lost_and_found import prepare_lost_and_found
from src.dataset.cs_coco_embedding import generate_cs_coco_embedding

# The tiny world's COCO objects span 12-24 px and its street scenes are 32 x 64.
CROPPED_COCO_MIN_AREA = 50
CS_PER_COCO = 2
EMBEDDING_HALF_WINDOW = 16


def pytest_configure(config):
    # pycocotools 2.0.11 decodes masks through a numpy 2 deprecated path; the masks are right, the noise is not ours
    config.addinivalue_line("filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword"
                                              ":DeprecationWarning:pycocotools")


@pytest.fixture(scope="session")
def prepared_world(tmp_path_factory):
    """Data root (pathlib.Path) of the tiny demo world (seed 0) after every preparation step:
    Cityscapes and LostAndFound labelTrainIds, COCO OoD masks, cropped_coco/ and cs_coco_embedding/.
    Shared by the whole session: tests must not change it (copy what you want to break)."""
    root = tmp_path_factory.mktemp("world")
    make_demo_world(str(root), size="tiny", seed=0)
    prepare_cityscapes(root / "cityscapes")
    prepare_lost_and_found(root / "lost_and_found")
    prepare_coco_segmentation(root / "COCO" / "2017")
    make_cropped_coco(root / "COCO" / "2017", root / "cropped_coco", min_area=CROPPED_COCO_MIN_AREA)
    generate_cs_coco_embedding(root / "cityscapes", root / "cropped_coco", root / "cs_coco_embedding",
                               cs_per_coco=CS_PER_COCO, half_window=EMBEDDING_HALF_WINDOW, seed=0)
    yield root


TINY_MODEL = "DeepLabV3+_TinyResNet"
TINY_TRAINING = ["-model", TINY_MODEL, "-crop", "16", "--batch_size", "2", "-lr", "1e-3", "--num_workers", "0",
                 "--ood_subsampling_factor", "0.5", "--device", "cpu", "-nepochs", "1"]


@pytest.fixture(scope="session")
def tiny_checkpoints(prepared_world, tmp_path_factory):
    """(baseline, trained) checkpoint paths: the tiny model after 1 epoch on the tiny world's Cityscapes, and
    after 1 further epoch of entropy training. Shared by the session: tests must not change them."""
    root = tmp_path_factory.mktemp("tiny_checkpoints")
    baseline = root / "weights" / "cityscapes" / f"{TINY_MODEL}_epoch_1.pth"
    for argv in (["-train", "Cityscapes", "--init_ckpt", "none"], ["--init_ckpt", str(baseline)]):
        args = ood_training.get_args_parser().parse_args(
            ["--data_root", str(prepared_world), "--io_root", str(root), *TINY_TRAINING, *argv])
        ood_training.main(config.parse_config(ood_training.GROUPS, args))
    return baseline, root / "weights" / "entropy" / f"{TINY_MODEL}_epoch_1_alpha_0.9.pth"

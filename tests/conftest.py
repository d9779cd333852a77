import pytest

from preparation.make_cropped_coco import make_cropped_coco
from preparation.make_demo_world import make_demo_world
from preparation.prepare_cityscapes import prepare_cityscapes
from preparation.prepare_coco_segmentation import prepare_coco_segmentation
from preparation.prepare_lost_and_found import prepare_lost_and_found
from src.dataset.cs_coco_embedding import generate_cs_coco_embedding

# The tiny world's COCO objects span 12-24 px and its street scenes are 32 x 64.
CROPPED_COCO_MIN_AREA = 50
CS_PER_COCO = 2
EMBEDDING_CROP_SIZE = 16


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
                               cs_per_coco=CS_PER_COCO, crop_size=EMBEDDING_CROP_SIZE, seed=0)
    yield root

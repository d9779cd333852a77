"""Cityscapes train ids: <..>_gtFine_labelTrainIds.png beside every official <..>_gtFine_labelIds.png,
for every split, with the label table of the cityscapesscripts package (void classes -> 255).

    python preparation/prepare_cityscapes.py --data_root ./datasets
"""
import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from config import Paths  # noqa: E402
from src.dataset.cityscapes import train_ids_from_label_ids  # noqa: E402
from src.dataset.listing import convert_label_files, find_files  # noqa: E402
from src.errors import run_script  # noqa: E402


def prepare_cityscapes(root):
    """Write the missing *_gtFine_labelTrainIds.png under <root>/gtFine/<split>/<city>/.

    Returns counts: found (labelIds files), written.
    """
    label_files = find_files(os.path.join(root, "gtFine"), "*/*/*_gtFine_labelIds.png", "Cityscapes",
                             f"download Cityscapes gtFine into {root}")
    written = convert_label_files(label_files, train_ids_from_label_ids, "Cityscapes labelTrainIds")
    return {"found": len(label_files), "written": written}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_root", default="./datasets", help="holds cityscapes/")
    root = Paths(data_root=parser.parse_args().data_root).cityscapes
    counts = prepare_cityscapes(root)
    print(f"{root}: found {counts['found']} *_gtFine_labelIds.png; wrote {counts['written']} "
          f"*_gtFine_labelTrainIds.png ({counts['found'] - counts['written']} were already there)")


if __name__ == "__main__":
    run_script(main)

"""LostAndFound train ids: <..>_gtCoarse_labelTrainIds.png beside every official <..>_gtCoarse_labelIds.png:
0 -> 255 (void), 1 free road -> 1, hazards -> 2, non-hazard objects -> 0 (see src/dataset/lost_and_found.py).

    python preparation/prepare_lost_and_found.py --data_root ./datasets
"""
import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from config import Paths  # noqa: E402
from src.dataset.listing import convert_label_files, find_files  # noqa: E402
from src.dataset.lost_and_found import train_ids_from_label_ids  # noqa: E402
from src.errors import run_script  # noqa: E402


def prepare_lost_and_found(root):
    """Write the missing *_gtCoarse_labelTrainIds.png under <root>/gtCoarse/<split>/<seq>/.

    Returns counts: found (labelIds files), written.
    """
    label_files = find_files(os.path.join(root, "gtCoarse"), "*/*/*_gtCoarse_labelIds.png", "LostAndFound",
                             f"download the LostAndFound gtCoarse labels into {root}")
    written = convert_label_files(label_files, train_ids_from_label_ids, "LostAndFound labelTrainIds")
    return {"found": len(label_files), "written": written}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_root", default="./datasets", help="holds lost_and_found/")
    root = Paths(data_root=parser.parse_args().data_root).lost_and_found
    counts = prepare_lost_and_found(root)
    print(f"{root}: found {counts['found']} *_gtCoarse_labelIds.png; wrote {counts['written']} "
          f"*_gtCoarse_labelTrainIds.png ({counts['found'] - counts['written']} were already there)")


if __name__ == "__main__":
    run_script(main)

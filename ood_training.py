"""Stage 1: fine-tune a Cityscapes network so that its softmax entropy is maximal on COCO objects."""
import sys

import config

GROUPS = {"paths": config.Paths, "run": config.Run, "model": config.Model, "train": config.Training}


def get_args_parser():
    return config.build_parser(__doc__, GROUPS)


def main(cfg):
    sys.exit("ood_training.py: training is not implemented yet")


if __name__ == "__main__":
    main(config.parse_config(GROUPS, get_args_parser().parse_args()))

"""Stage 2: cache the softmax on VALSET, search OoD segments, and remove false positives by meta classification."""
import sys

import config

GROUPS = {"paths": config.Paths, "run": config.Run, "model": config.Model, "evalset": config.EvalSet,
          "meta": config.MetaStages, "oodmc": config.Oodmc}


def get_args_parser():
    return config.build_parser(__doc__, GROUPS)


def main(cfg):
    sys.exit("meta_classification.py: these stages are not implemented yet")


if __name__ == "__main__":
    main(config.parse_config(GROUPS, get_args_parser().parse_args()))

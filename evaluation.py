"""Stage 3: pixel- and segment-level OoD detection metrics, plots, overlays and results files."""
import sys

import config

GROUPS = {"paths": config.Paths, "run": config.Run, "model": config.Model, "evalset": config.EvalSet,
          "stages": config.EvalStages, "oodmc": config.Oodmc}


def get_args_parser():
    return config.build_parser(__doc__, GROUPS)


def main(cfg):
    sys.exit("evaluation.py: these stages are not implemented yet")


if __name__ == "__main__":
    main(config.parse_config(GROUPS, get_args_parser().parse_args()))

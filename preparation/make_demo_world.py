"""Write the demo world: small synthetic street scenes, COCO-like objects and OoD test sets.

Every dataset of SPEC section 1 (and the SegmentMeIfYouCan tracks) gets a synthetic stand-in under
--data_root, in exactly the file layout and label encoding of the real download, so the real loaders
and preparation scripts read it:

    cityscapes/             street scenes, official gtFine labelIds (train, val)
    COCO/2017/              train2017/*.jpg and a real instances_train2017.json (polygons and RLE)
    lost_and_found/         obstacles on the road, gtCoarse labelIds (test, a small train split)
    fishyscapes/            Static (objects anywhere) and LostAndFound (obstacles on the road)
    dataset_AnomalyTrack/   RoadAnomaly21-like .jpg frames, some labelled
    dataset_ObstacleTrack/  RoadObstacle21-like .webp frames, some labelled

Nothing derived is written (no labelTrainIds, COCO masks, cropped objects): preparation/ makes those.

The world is meant to show the method working, so it is hard where the real one is: noisy class
textures, thin and distant objects, shadows, lane markings, manholes and puddles on the road, a
different camera on the test sets, obstacles of every size and contrast. The test obstacles (crates,
tyres, pylons, bags, ...: shaded, mostly dull colours, wood or speckle textures) share neither shape,
colour nor texture with the training classes or with the COCO-like objects (geometric shapes in
vivid two-tone patterns), so OoD training on COCO has to generalise rather than memorise.

Every sample draws from its own random generator (seed, dataset, index), so the world is the same
bytes for the same seed, and a second run over an existing world skips every file that is already
there (all writes are atomic, so a file that exists is complete). demo_world.json in the data root
records size and seed; the script refuses a data root made with others, or one holding datasets it
did not write (real data is never mixed with synthetic data).

    python preparation/make_demo_world.py --data_root ./datasets --size demo --seed 0

--size full writes the same layouts at the real image sizes, a few frames per set (bench/rehearsal.py).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from preparation.demo_world.coco import coco_role, render_coco  # noqa: E402
from preparation.demo_world.writers import SIZES, make_demo_world, sample_rng  # noqa: E402

__all__ = ["SIZES", "coco_role", "make_demo_world", "render_coco", "sample_rng"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_root", default="./datasets", help="where the datasets are written")
    parser.add_argument("--size", default="demo", choices=tuple(SIZES), 
                        help="tiny: for tests; demo: for make demo; full: the real image sizes, a few frames per set")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same bytes")
    args = parser.parse_args()
    summary = make_demo_world(args.data_root, args.size, args.seed, progress=True)
    for name, counts in summary.items():
        labels = "annotations" if name.startswith("COCO") else "labels"
        print(f"{name:28s} {counts['images']:4d} images {counts['labels']:5d} {labels:12s} "
              f"{counts['written']:4d} files written")
    written = sum(counts["written"] for counts in summary.values())
    print(f"demo world ({args.size}, seed {args.seed}) in {args.data_root}: "
          + (f"{written} files written" if written else "already complete, nothing written"))


if __name__ == "__main__":
    main()

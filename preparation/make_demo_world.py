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
"""
import argparse
import colorsys
import json
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cityscapesscripts.helpers.labels import labels as cityscapes_labels
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils
from scipy import ndimage
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from src.errors import run_script  # noqa: E402
from src.files import atomic_path, save_json  # noqa: E402

# street: (H, W) of every street scene; cityscapes: (train, val) images; lost_and_found: (test, train);
# fishyscapes: images per split; smiyc: (frames, labelled frames) per track; coco: images;
# coco_object: (min, max) object size in px (COCO images stay >= 480 px, or < 480 px where meant to).
SIZES = {
    "tiny": dict(street=(32, 64), cityscapes=(4, 2), lost_and_found=(3, 2), fishyscapes=2,
                 smiyc=(3, 2), coco=6, coco_object=(12, 24)),
    "demo": dict(street=(128, 256), cityscapes=(120, 20), lost_and_found=(40, 10), fishyscapes=10,
                 smiyc=(10, 7), coco=60, coco_object=(24, 96)),
}
MARKER = "demo_world.json"
DATASET_DIRS = ("cityscapes", "COCO", "lost_and_found", "fishyscapes", "dataset_AnomalyTrack",
                "dataset_ObstacleTrack")
JPEG_QUALITY = 90
WEBP_QUALITY = 90

ID = {label.name: label.id for label in cityscapes_labels if label.id >= 0}  # official labelIds
VOID_IDS = frozenset(label.id for label in cityscapes_labels if label.id >= 0 and label.trainId in (255, -1))

CITIES = {"train": ("aachen", "bochum", "bremen", "cologne", "darmstadt", "dusseldorf"),
          "val": ("frankfurt", "lindau", "munster")}
LAF_SEQUENCES = {"test": ("02_Hanns_Klemm_Str_44", "04_Maurener_Weg_8", "05_Schafgasse_1",
                          "07_Festplatz_Flugfeld", "15_Rechbergstr_Deckenpfronn"),
                 "train": ("01_Hanns_Klemm_Str_45", "03_Hanns_Klemm_Str_19", "06_Galvanistr",
                           "10_Schlossberg_9", "12_Umberto_Nobile_Str")}
LAF_OUT_OF_ROI, LAF_FREE = 0, 1
# Obstacle kinds with the LostAndFound labelIds of such objects (the dataset's own label list:
# 2/5/10/12 black/grey/blue/green crate, 9/30 cardboard box, 16 euro pallet, 17/19 pylon (white),
# 21 tire, 22 ball, 24/25 dog (black/white), 32 plastic bag, 35 styrofoam; non-hazards 31/33 lying
# marker pole/post, 36/37/39 timber and wood, 38 wheel cap).
HAZARDS = {"crate": (2, 5, 10, 12), "box": (9, 30), "pallet": (16,), "pylon": (17, 19), "tire": (21,),
           "ball": (22,), "dog": (24, 25), "bag": (32,), "styrofoam": (35,)}
NON_HAZARDS = {"post": (31, 33), "timber": (36, 37, 39), "wheelcap": (38,)}
OBSTACLE_WIDTH = {  # width at the bottom of the image, as a fraction of W
    "crate": (0.08, 0.16), "box": (0.07, 0.18), "pallet": (0.11, 0.2), "pylon": (0.04, 0.08),
    "tire": (0.06, 0.11), "ball": (0.035, 0.07), "dog": (0.1, 0.18), "bag": (0.05, 0.13),
    "styrofoam": (0.05, 0.14), "post": (0.15, 0.3), "timber": (0.1, 0.25), "wheelcap": (0.03, 0.06)}

# COCO: category id -> (name, supercategory, how it is drawn), ids and names as in COCO 2017.
COCO_EXCLUDED = {1: ("person", "person"), 2: ("bicycle", "vehicle"), 3: ("car", "vehicle"),
                 4: ("motorcycle", "vehicle"), 6: ("bus", "vehicle"), 8: ("truck", "vehicle"),
                 10: ("traffic light", "outdoor"), 13: ("stop sign", "outdoor")}
COCO_OBJECTS = {37: ("sports ball", "sports", "disc"), 55: ("orange", "food", "ellipse"),
                60: ("donut", "food", "ring"), 85: ("clock", "indoor", "polygon"),
                38: ("kite", "sports", "star"), 52: ("banana", "food", "crescent"),
                5: ("airplane", "vehicle", "cross"), 53: ("apple", "food", "heart"),
                88: ("teddy bear", "indoor", "blobs"), 59: ("pizza", "food", "sector")}
COCO_SIZES = ((480, 640), (640, 480), (512, 512), (500, 667), (600, 600))
COCO_SMALL_SIZES = ((427, 640), (360, 480), (640, 424), (375, 500))  # one side < 480: filtered out

SKINS = ((225, 182, 150), (190, 140, 105), (120, 80, 55), (90, 60, 45))
CLOTHES = ((35, 40, 60), (25, 25, 28), (150, 40, 40), (190, 175, 150), (100, 100, 105), (220, 220, 215),
           (55, 80, 55), (120, 90, 60))
CAR_COLOURS = ((35, 45, 95), (140, 25, 25), (205, 205, 210), (25, 25, 28), (105, 108, 112), (60, 75, 60))
BUS_COLOURS = ((200, 45, 40), (40, 95, 150), (215, 195, 90))
TRUCK_COLOURS = ((225, 225, 220), (170, 172, 175), (120, 135, 150))
FACADES = ((125, 115, 105), (155, 145, 125), (100, 100, 106), (140, 95, 80), (172, 162, 150), (115, 90, 80))
LEAVES = ((55, 95, 35), (70, 110, 40), (45, 80, 40))
TERRAINS = ((125, 140, 70), (140, 150, 85), (135, 115, 80))


# ---------------------------------------------------------------- drawing primitives

class Canvas:
    """An image painted back to front: colours (H, W, 3) float32, a label per pixel and, for street
    scenes, the LostAndFound id of the OoD object under each pixel (0: none)."""

    def __init__(self, rgb, label, ood):
        self.rgb, self.label, self.ood = rgb, label, ood
        self.h, self.w = label.shape

    @classmethod
    def blank(cls, h, w, label_dtype=np.uint8):
        return cls(np.zeros((h, w, 3), np.float32), np.zeros((h, w), label_dtype), np.zeros((h, w), np.uint8))

    def window(self, x0, y0, x1, y1):
        """The box [x0, x1) x [y0, y1) as a Canvas of its own that shares these pixels."""
        return Canvas(self.rgb[y0:y1, x0:x1], self.label[y0:y1, x0:x1], self.ood[y0:y1, x0:x1])

    def paint(self, mask, rgb, label, ood=0):
        self.rgb[mask] = rgb
        self.label[mask] = label
        self.ood[mask] = ood


def value_noise(rng, ys, xs, cell):
    """Smooth random field at pixel coordinates ys, xs (N,): (N,) float32, correlated over `cell` px."""
    if ys.size == 0:
        return np.zeros(0, np.float32)
    gy = (ys - ys.min()) / max(cell, 0.5) + rng.random()
    gx = (xs - xs.min()) / max(cell, 0.5) + rng.random()
    iy, ix = gy.astype(np.int64), gx.astype(np.int64)
    grid = rng.standard_normal((iy.max() + 2, ix.max() + 2)).astype(np.float32)
    fy, fx = gy - iy, gx - ix
    fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
    top = grid[iy, ix] * (1 - fx) + grid[iy, ix + 1] * fx
    bottom = grid[iy + 1, ix] * (1 - fx) + grid[iy + 1, ix + 1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def noise_image(rng, h, w, cell):
    """(H, W) float32 smooth random field correlated over about `cell` px: value_noise for a whole image."""
    grid = rng.standard_normal((int(h / cell) + 2, int(w / cell) + 2)).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((w, h), Image.BILINEAR))


def texture(rng, mask, colour, grain=0.04, blotch=0.0, cell=4.0):
    """Colours of the pixels of `mask`: (N, 3) float32, `colour` varied by smooth blotches and grain."""
    ys, xs = np.nonzero(mask)
    light = 1 + grain * rng.standard_normal(ys.size).astype(np.float32)
    if blotch:
        light += blotch * value_noise(rng, ys, xs, cell)
    return np.asarray(colour, np.float32) * light[:, None]


def paint(canvas, rng, mask, colour, label, grain=0.04, blotch=0.0, cell=4.0, ood=0):
    """Fill `mask` with a noisy `colour` and `label` (no-op for an empty mask)."""
    if mask.any():
        canvas.paint(mask, texture(rng, mask, colour, grain, blotch, cell), label, ood)


def rect(shape, x0, y0, x1, y1):
    """(H, W) bool mask of the box [x0, x1) x [y0, y1), at least one pixel wide and high."""
    c0, r0 = int(round(x0)), int(round(y0))
    c1, r1 = max(c0 + 1, int(round(x1))), max(r0 + 1, int(round(y1)))
    mask = np.zeros(shape, bool)
    mask[max(r0, 0):max(r1, 0), max(c0, 0):max(c1, 0)] = True
    return mask


def polygon(shape, points):
    """(H, W) bool mask of the polygon through points [(x, y), ...]."""
    image = Image.new("1", (shape[1], shape[0]))
    ImageDraw.Draw(image).polygon([(float(x), float(y)) for x, y in points], fill=1)
    return np.array(image)


def ellipse(shape, cx, cy, rx, ry, width=0):
    """(H, W) bool mask of a filled ellipse, or of its outline `width` px thick."""
    rx, ry = max(rx, 0.5), max(ry, 0.5)
    image = Image.new("1", (shape[1], shape[0]))
    box = [cx - rx, cy - ry, cx + rx, cy + ry]
    if width:
        ImageDraw.Draw(image).ellipse(box, outline=1, width=max(1, int(round(width))))
    else:
        ImageDraw.Draw(image).ellipse(box, fill=1)
    return np.array(image)


def lines(shape, points, width):
    """(H, W) bool mask of a polyline `width` px thick."""
    image = Image.new("1", (shape[1], shape[0]))
    ImageDraw.Draw(image).line([(float(x), float(y)) for x, y in points], fill=1,
                               width=max(1, int(round(width))))
    return np.array(image)


def vivid(rng):
    """A saturated colour of any hue (the COCO-like objects' palette)."""
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.55, 1.0), rng.uniform(0.55, 1.0))
    return 255 * r, 255 * g, 255 * b


def pick(rng, palette):
    return palette[rng.integers(len(palette))]


def darken(canvas, mask, factor):
    canvas.rgb[mask] *= np.asarray(factor, np.float32)


# ---------------------------------------------------------------- street geometry

@dataclass
class Street:
    """A straight road to a vanishing point. Side widths are half-widths at the bottom row, in px,
    (left, right); the depth t of a row is 0 at the horizon and 1 at the bottom, and sizes scale with t."""
    h: int
    w: int
    horizon: float
    vanish: float
    far: float
    road: tuple
    walk: tuple
    verge: tuple

    def ground_y(self, t):
        return self.horizon + t * (self.h - self.horizon)

    def span(self, t, outer):
        """(left x, right x) at depth t of the road (outer 0), sidewalk (1) or verge (2) outer edge."""
        widths = (self.road, self.walk, self.verge)[:outer + 1]
        left = sum(width[0] for width in widths)
        right = sum(width[1] for width in widths)
        return self.vanish - self.far - t * left, self.vanish + self.far + t * right

    def on_road(self, rng, t, margin=0.0):
        """x of a random point on the road at depth t, `margin` px from its edges where it is wide enough."""
        left, right = self.span(t, 0)
        return rng.uniform(left + margin, max(left + margin, right - margin) + 1e-3)

    def on_walk(self, rng, t):
        """x of a random point on the left or the right sidewalk at depth t."""
        side = rng.integers(2)
        inner, outer = self.span(t, 0)[side], self.span(t, 1)[side]
        return rng.uniform(min(inner, outer), max(inner, outer) + 1e-3)


STYLES = {
    # horizon: row / H; road, walk, verge: half-widths at the bottom / W (verge: chance of a grass strip);
    # buildings: share of roadside blocks that are buildings; traffic: factor of the mean object counts;
    # always: at least one car, person and pole;
    # details: amount of markings, manholes, patches and puddles; hood: chance that the ego vehicle's
    # bonnet shows at the bottom; camera: its look (see `camera`).
    "cityscapes": dict(horizon=(0.36, 0.48), road=(0.25, 0.55), walk=(0.1, 0.3), verge=0.3, buildings=0.65,
                       traffic=1.0, always=1, details=0.6, hood=0.6,
                       camera=dict(gain=(0.8, 1.15), cast=0.04, tint=(1, 1, 1), noise=(2, 5), vignette=(0.05, 0.2),
                                   blur=0.0)),
    "lost_and_found": dict(horizon=(0.38, 0.5), road=(0.3, 0.6), walk=(0.05, 0.25), verge=0.5, buildings=0.5,
                           traffic=0.4, always=0, details=1.0, hood=0.8,
                           camera=dict(gain=(0.6, 1.05), cast=0.05, tint=(1.0, 1.04, 0.93), noise=(4, 8),
                                       vignette=(0.15, 0.35), blur=0.5)),
    "obstacle": dict(horizon=(0.12, 0.3), road=(0.6, 1.1), walk=(0.1, 0.3), verge=0.6, buildings=0.3,
                     traffic=0.15, always=0, details=0.8, hood=0.3,
                     camera=dict(gain=(0.7, 1.2), cast=0.06, tint=(1, 1, 1), noise=(3, 7), vignette=(0.05, 0.3),
                                 blur=0.3)),
    "anomaly": dict(horizon=(0.32, 0.5), road=(0.25, 0.55), walk=(0.0, 0.2), verge=0.7, buildings=0.3,
                    traffic=0.5, always=0, details=0.5, hood=0.5,
                    camera=dict(gain=(0.55, 1.25), cast=0.1, tint=(1, 1, 1), noise=(2, 7), vignette=(0.05, 0.3),
                                blur=0.3)),
}
# RoadObstacle21-like conditions: road surface and light
OBSTACLE_CONDITIONS = ("darkasphalt", "gravel", "night", "wet")
ANOMALY_FRAMES = ("dog", "crate", "tire", "bag", "pylon", "styrofoam")  # unlabelled RoadAnomaly21 frames
FORCED = ("terrain", "wall", "fence", "truck", "bus", "train", "motorcycle", "rider", "bicycle",
          "traffic light", "traffic sign")


# ---------------------------------------------------------------- street objects (training classes)

def draw_person(canvas, rng, x, yb, height, label):
    """A pedestrian standing at (x, yb), `height` px tall."""
    shape, hh = (canvas.h, canvas.w), height
    skin, shirt, trousers = pick(rng, SKINS), pick(rng, CLOTHES), pick(rng, CLOTHES)
    top, hip, shoulder = yb - hh, yb - 0.48 * hh, yb - 0.82 * hh
    stride = rng.uniform(-0.1, 0.1) * hh
    for side in (-1, 1):
        leg = polygon(shape, [(x + side * 0.11 * hh, hip), (x + side * 0.01 * hh, hip),
                              (x + side * (0.01 * hh + stride), yb), (x + side * (0.1 * hh + stride), yb)])
        paint(canvas, rng, leg, trousers, label, grain=0.06)
        arm = polygon(shape, [(x + side * 0.14 * hh, shoulder), (x + side * 0.2 * hh, shoulder),
                              (x + side * (0.18 * hh - stride), yb - 0.45 * hh),
                              (x + side * (0.12 * hh - stride), yb - 0.45 * hh)])
        paint(canvas, rng, arm, shirt, label, grain=0.06)
    torso = polygon(shape, [(x - 0.15 * hh, shoulder), (x + 0.15 * hh, shoulder),
                            (x + 0.12 * hh, hip), (x - 0.12 * hh, hip)])
    paint(canvas, rng, torso, shirt, label, grain=0.06, blotch=0.08, cell=0.1 * hh)
    head = ellipse(shape, x, top + 0.08 * hh, 0.065 * hh, 0.08 * hh)
    paint(canvas, rng, head, skin, label, grain=0.05)
    hair = head & rect(shape, 0, top - 1, canvas.w, top + 0.07 * hh)
    paint(canvas, rng, hair, (40, 30, 25), label, grain=0.1)


def draw_bicycle(canvas, rng, x, yb, w, label):
    """A bicycle seen from the side, `w` px long; returns (saddle, pedal, handlebar) points for a rider."""
    shape, r = (canvas.h, canvas.w), 0.23 * w
    frame_colour = pick(rng, ((30, 30, 32), (150, 30, 30), (40, 60, 130), (190, 190, 195)))
    rear, front, crank = (x - 0.3 * w, yb - r), (x + 0.3 * w, yb - r), (x - 0.02 * w, yb - r)
    saddle, bar = (x - 0.12 * w, yb - 2.15 * r), (x + 0.22 * w, yb - 2.3 * r)
    for cx, cy in (rear, front):
        paint(canvas, rng, ellipse(shape, cx, cy, r, r, width=max(1.0, 0.05 * w)), (25, 25, 25), label)
    frame = lines(shape, [rear, crank, saddle, rear], 0.04 * w) | lines(shape, [crank, bar, front], 0.04 * w)
    paint(canvas, rng, frame, frame_colour, label)
    return saddle, crank, bar


def draw_motorcycle(canvas, rng, x, yb, w, label):
    """A motorcycle seen from the side, `w` px long; returns (saddle, footrest, handlebar)."""
    shape, r = (canvas.h, canvas.w), 0.2 * w
    for cx in (x - 0.32 * w, x + 0.32 * w):
        paint(canvas, rng, ellipse(shape, cx, yb - r, r, r), (22, 22, 24), label)
        paint(canvas, rng, ellipse(shape, cx, yb - r, 0.4 * r, 0.4 * r), (150, 150, 155), label)
    body = polygon(shape, [(x - 0.35 * w, yb - 1.3 * r), (x + 0.2 * w, yb - 1.1 * r), (x + 0.3 * w, yb - 2.2 * r),
                           (x - 0.05 * w, yb - 2.4 * r), (x - 0.3 * w, yb - 2.0 * r)])
    paint(canvas, rng, body, pick(rng, ((20, 20, 22), (160, 30, 25), (40, 50, 120))), label, grain=0.06)
    seat = rect(shape, x - 0.3 * w, yb - 2.4 * r, x, yb - 2.1 * r)
    paint(canvas, rng, seat, (18, 18, 18), label)
    return (x - 0.15 * w, yb - 2.4 * r), (x, yb - 1.2 * r), (x + 0.3 * w, yb - 2.8 * r)


def draw_rider(canvas, rng, saddle, pedal, bar, height, label):
    """A cyclist's body sitting on `saddle`, feet on `pedal`, hands on `bar`; `height` as standing."""
    shape, hh = (canvas.h, canvas.w), height
    skin, jacket, trousers = pick(rng, SKINS), pick(rng, CLOTHES), pick(rng, CLOTHES)
    (sx, sy), (px, py), (bx, by) = saddle, pedal, bar
    shoulder = (sx + 0.12 * hh, sy - 0.32 * hh)
    paint(canvas, rng, lines(shape, [(sx, sy), (px, py)], 0.09 * hh), trousers, label, grain=0.06)
    torso = polygon(shape, [(sx - 0.1 * hh, sy), (sx + 0.08 * hh, sy), (shoulder[0] + 0.1 * hh, shoulder[1]),
                            (shoulder[0] - 0.12 * hh, shoulder[1])])
    paint(canvas, rng, torso, jacket, label, grain=0.06)
    paint(canvas, rng, lines(shape, [shoulder, (bx, by)], 0.06 * hh), jacket, label, grain=0.06)
    head = ellipse(shape, shoulder[0] + 0.03 * hh, shoulder[1] - 0.1 * hh, 0.065 * hh, 0.08 * hh)
    paint(canvas, rng, head, skin if rng.random() < 0.5 else (235, 235, 235), label)


def draw_car(canvas, rng, x, yb, w, label):
    """A car seen from behind, `w` px wide, standing on row yb."""
    shape, colour = (canvas.h, canvas.w), pick(rng, CAR_COLOURS)
    for side in (-1, 1):
        paint(canvas, rng, rect(shape, x + side * 0.3 * w, yb - 0.14 * w, x + side * 0.45 * w, yb), (20, 20, 22), label)
    body = rect(shape, x - 0.5 * w, yb - 0.5 * w, x + 0.5 * w, yb - 0.08 * w)
    cabin = polygon(shape, [(x - 0.44 * w, yb - 0.5 * w), (x + 0.44 * w, yb - 0.5 * w),
                            (x + 0.33 * w, yb - 0.8 * w), (x - 0.33 * w, yb - 0.8 * w)])
    paint(canvas, rng, body | cabin, colour, label, grain=0.03, blotch=0.06, cell=0.2 * w)
    window = polygon(shape, [(x - 0.38 * w, yb - 0.53 * w), (x + 0.38 * w, yb - 0.53 * w),
                             (x + 0.3 * w, yb - 0.76 * w), (x - 0.3 * w, yb - 0.76 * w)])
    paint(canvas, rng, window, (50, 60, 75), label, grain=0.05, blotch=0.2, cell=0.3 * w)
    for side in (-1, 1):
        light = rect(shape, x + side * 0.47 * w - 0.07 * w, yb - 0.43 * w,
                     x + side * 0.47 * w + 0.07 * w, yb - 0.35 * w)
        paint(canvas, rng, light, (190, 30, 25), label)
    paint(canvas, rng, rect(shape, x - 0.12 * w, yb - 0.3 * w, x + 0.12 * w, yb - 0.21 * w), (225, 225, 215), label)


def draw_truck(canvas, rng, x, yb, w, label):
    """A truck seen from behind: a tall plain cargo box with door seams."""
    shape = (canvas.h, canvas.w)
    for side in (-1, 1):
        wheel = rect(shape, x + side * 0.25 * w, yb - 0.16 * w, x + side * 0.46 * w, yb)
        paint(canvas, rng, wheel, (20, 20, 22), label)
    box = rect(shape, x - 0.5 * w, yb - 1.25 * w, x + 0.5 * w, yb - 0.14 * w)
    paint(canvas, rng, box, pick(rng, TRUCK_COLOURS), label, grain=0.03, blotch=0.05, cell=0.3 * w)
    seams = rect(shape, x - 0.01 * w, yb - 1.2 * w, x + 0.01 * w, yb - 0.2 * w)
    seams |= rect(shape, x - 0.45 * w, yb - 1.2 * w, x - 0.44 * w, yb - 0.2 * w)
    seams |= rect(shape, x + 0.44 * w, yb - 1.2 * w, x + 0.45 * w, yb - 0.2 * w)
    paint(canvas, rng, seams, (70, 70, 72), label)
    paint(canvas, rng, rect(shape, x - 0.5 * w, yb - 0.22 * w, x + 0.5 * w, yb - 0.14 * w), (35, 35, 35), label)


def draw_bus(canvas, rng, x, yb, w, label):
    """A bus seen from behind: a coloured body with a large dark rear window and a destination display."""
    shape = (canvas.h, canvas.w)
    for side in (-1, 1):
        wheel = rect(shape, x + side * 0.28 * w, yb - 0.12 * w, x + side * 0.46 * w, yb)
        paint(canvas, rng, wheel, (20, 20, 22), label)
    body = rect(shape, x - 0.5 * w, yb - 1.1 * w, x + 0.5 * w, yb - 0.1 * w)
    paint(canvas, rng, body, pick(rng, BUS_COLOURS), label, grain=0.03, blotch=0.05, cell=0.3 * w)
    paint(canvas, rng, rect(shape, x - 0.42 * w, yb - 0.98 * w, x + 0.42 * w, yb - 0.6 * w), (40, 48, 60), label,
          blotch=0.2, cell=0.3 * w)
    paint(canvas, rng, rect(shape, x - 0.3 * w, yb - 1.07 * w, x + 0.3 * w, yb - 1.01 * w), (240, 150, 30), label)
    paint(canvas, rng, rect(shape, x - 0.35 * w, yb - 0.4 * w, x + 0.35 * w, yb - 0.3 * w), (60, 60, 62), label)


def draw_train(canvas, rng, x, yb, w, label):
    """A tram seen from the side, `w` px long: a row of windows, a stripe and a pantograph."""
    shape = (canvas.h, canvas.w)
    body = rect(shape, x - 0.5 * w, yb - 0.28 * w, x + 0.5 * w, yb - 0.02 * w)
    paint(canvas, rng, body, (230, 228, 220), label, grain=0.03, blotch=0.04, cell=0.1 * w)
    stripe = rect(shape, x - 0.5 * w, yb - 0.08 * w, x + 0.5 * w, yb - 0.05 * w)
    paint(canvas, rng, stripe, pick(rng, ((180, 30, 30), (30, 80, 160))), label)
    for k in range(8):
        left = x - 0.47 * w + k * 0.118 * w
        paint(canvas, rng, rect(shape, left, yb - 0.24 * w, left + 0.08 * w, yb - 0.14 * w), (45, 52, 62), label)
    pantograph = lines(shape, [(x - 0.1 * w, yb - 0.28 * w), (x, yb - 0.38 * w), (x + 0.1 * w, yb - 0.28 * w)],
                       0.01 * w)
    paint(canvas, rng, pantograph, (40, 40, 40), label)


def draw_pole(canvas, rng, x, yb, height, width):
    paint(canvas, rng, rect((canvas.h, canvas.w), x - width / 2, yb - height, x + width / 2, yb),
          (125, 125, 130), ID["pole"], grain=0.05)


def draw_sign(canvas, rng, cx, cy, size, label):
    """A traffic sign face of `size` px centred at (cx, cy)."""
    shape, r = (canvas.h, canvas.w), size / 2
    kind = rng.integers(4)
    if kind == 0:  # prohibition: red ring, white face
        paint(canvas, rng, ellipse(shape, cx, cy, r, r), (200, 30, 30), label)
        paint(canvas, rng, ellipse(shape, cx, cy, 0.65 * r, 0.65 * r), (235, 235, 235), label)
    elif kind == 1:  # mandatory: blue disc
        paint(canvas, rng, ellipse(shape, cx, cy, r, r), (30, 70, 170), label)
    elif kind == 2:  # warning: white triangle with a red border
        paint(canvas, rng, polygon(shape, [(cx - r, cy + r), (cx + r, cy + r), (cx, cy - r)]), (200, 30, 30), label)
        paint(canvas, rng, polygon(shape, [(cx - 0.55 * r, cy + 0.7 * r), (cx + 0.55 * r, cy + 0.7 * r),
                                           (cx, cy - 0.3 * r)]), (235, 235, 235), label)
    else:  # priority road: yellow diamond
        diamond = polygon(shape, [(cx - r, cy), (cx, cy - r), (cx + r, cy), (cx, cy + r)])
        paint(canvas, rng, diamond, (230, 200, 30), label)


def draw_light(canvas, rng, cx, top, size, label):
    """A traffic light housing `size` px wide hanging from row `top`, one lamp lit."""
    shape = (canvas.h, canvas.w)
    paint(canvas, rng, rect(shape, cx - size / 2, top, cx + size / 2, top + 2.6 * size), (30, 30, 32), label)
    lit = rng.integers(3)
    for k, colour in enumerate(((235, 50, 35), (245, 185, 30), (50, 220, 90))):
        lamp = ellipse(shape, cx, top + (0.45 + 0.85 * k) * size, 0.3 * size, 0.3 * size)
        paint(canvas, rng, lamp, colour if k == lit else (60, 60, 60), label)


def draw_tree(canvas, rng, x, yb, height):
    """A roadside tree: trunk and crown, both vegetation."""
    shape = (canvas.h, canvas.w)
    paint(canvas, rng, rect(shape, x - 0.03 * height, yb - 0.5 * height, x + 0.03 * height, yb), (80, 62, 45),
          ID["vegetation"], grain=0.08)
    crown = np.zeros(shape, bool)
    for _ in range(rng.integers(3, 6)):
        crown |= ellipse(shape, x + rng.uniform(-0.2, 0.2) * height, yb - rng.uniform(0.55, 0.85) * height,
                         rng.uniform(0.15, 0.25) * height, rng.uniform(0.12, 0.2) * height)
    paint_leaves(canvas, rng, crown, height / 30)


def paint_leaves(canvas, rng, mask, scale):
    """Vegetation: blotchy greens with dark gaps, correlated over `scale` px."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return
    light = 0.8 + 0.25 * value_noise(rng, ys, xs, 2.5 * scale) + 0.12 * rng.standard_normal(ys.size)
    light[value_noise(rng, ys, xs, scale) < -1.0] *= 0.45
    canvas.paint(mask, np.asarray(pick(rng, LEAVES), np.float32) * light[:, None].astype(np.float32),
                 ID["vegetation"])


def draw_bin(canvas, rng, x, yb, w):
    """A litter bin or post box: Cityscapes' void class `static`."""
    shape = (canvas.h, canvas.w)
    colour = pick(rng, ((90, 90, 95), (40, 75, 50), (200, 160, 30)))
    paint(canvas, rng, rect(shape, x - w / 2, yb - 1.4 * w, x + w / 2, yb), colour, ID["static"])
    paint(canvas, rng, rect(shape, x - 0.6 * w, yb - 1.55 * w, x + 0.6 * w, yb - 1.4 * w), (50, 50, 52), ID["static"])


# ---------------------------------------------------------------- OoD obstacles

def draw_obstacle(canvas, rng, kind, laf_id, x, yb, w):
    """An OoD object of `kind` standing at (x, yb), `w` px wide; its pixels get ood=laf_id and the
    Cityscapes void label `static` (a LostAndFound object is no Cityscapes class)."""
    shape, label = (canvas.h, canvas.w), ID["static"]

    def fill(mask, colour, grain=0.05, blotch=0.0, cell=4.0):
        paint(canvas, rng, mask, colour, label, grain, blotch, cell, ood=laf_id)

    def solid(colour, height):  # front, side and top faces of a box, lit from the top left
        depth = rng.uniform(0.1, 0.2) * w
        fill(rect(shape, x - w / 2, yb - height, x + w / 2, yb), colour, blotch=0.06, cell=w / 3)
        left, right, top = x - w / 2, x + w / 2, yb - height
        fill(polygon(shape, [(left, top), (right, top), (right + depth, top - depth), (left + depth, top - depth)]),
             np.multiply(colour, 1.3))
        fill(polygon(shape, [(right, yb), (right, top), (right + depth, top - depth), (right + depth, yb - depth)]),
             np.multiply(colour, 0.7))

    if kind == "crate":
        colour = {2: (35, 35, 38), 5: (125, 125, 130), 10: (35, 80, 165), 12: (40, 130, 70)}[laf_id]
        height = rng.uniform(0.5, 0.8) * w
        solid(colour, height)
        for k in range(2):
            slot_y = yb - height * (0.75 - 0.4 * k)
            fill(rect(shape, x - 0.3 * w, slot_y, x + 0.3 * w, slot_y + 0.1 * height), np.multiply(colour, 0.35))
    elif kind == "box":
        colour = (rng.uniform(160, 195), rng.uniform(120, 145), rng.uniform(75, 95))
        height = rng.uniform(0.4, 0.9) * w
        solid(colour, height)
        fill(rect(shape, x - 0.06 * w, yb - height, x + 0.06 * w, yb - 0.6 * height), (215, 200, 160))
    elif kind == "pallet":
        slats = rect(shape, x - w / 2, yb - 0.3 * w, x + w / 2, yb - 0.24 * w)
        slats |= rect(shape, x - w / 2, yb - 0.06 * w, x + w / 2, yb)
        for k in (-1, 0, 1):
            slats |= rect(shape, x + k * 0.42 * w - 0.06 * w, yb - 0.24 * w, x + k * 0.42 * w + 0.06 * w, yb - 0.06 * w)
        ys, xs = np.nonzero(slats)
        grain = 1 + 0.12 * np.sin(xs * 0.9 + 3 * value_noise(rng, ys, xs, 3))  # wood grain
        canvas.paint(slats, np.asarray((185, 150, 100), np.float32) * grain[:, None].astype(np.float32), label, laf_id)
    elif kind == "pylon":
        colour, band = ((235, 105, 25), (235, 235, 230)) if laf_id == 17 else ((230, 230, 225), (235, 105, 25))
        height = rng.uniform(1.3, 1.8) * w
        fill(polygon(shape, [(x - 0.45 * w, yb - 0.1 * w), (x + 0.45 * w, yb - 0.1 * w), (x + 0.08 * w, yb - height),
                             (x - 0.08 * w, yb - height)]), colour)
        fill(rect(shape, x - 0.3 * w, yb - 0.6 * height, x + 0.3 * w, yb - 0.5 * height), band)
        fill(rect(shape, x - 0.55 * w, yb - 0.1 * w, x + 0.55 * w, yb), (30, 30, 30))
    elif kind == "tire":
        cy, ry = (yb - w / 2, w / 2) if rng.random() < 0.5 else (yb - 0.18 * w, 0.18 * w)  # standing or lying
        outer = ellipse(shape, x, cy, w / 2, ry)
        ys, xs = np.nonzero(outer)
        tread = 1 + 0.15 * np.sin(np.arctan2(ys - cy, xs - x) * 24) + 0.05 * rng.standard_normal(ys.size)
        canvas.paint(outer, np.asarray((28, 28, 30), np.float32) * tread[:, None].astype(np.float32), label, laf_id)
        fill(ellipse(shape, x, cy, 0.22 * w, 0.44 * ry), (95, 95, 100))
    elif kind == "ball":
        disc = ellipse(shape, x, yb - w / 2, w / 2, w / 2)
        ys, xs = np.nonzero(disc)
        u, v = (xs - x) / (w / 2), (ys - (yb - w / 2)) / (w / 2)
        nz = np.sqrt(np.clip(1 - u * u - v * v, 0, 1))
        light = 0.35 + 0.75 * np.clip(-0.5 * u - 0.5 * v + 0.7 * nz, 0, 1)  # a lit sphere
        colour = np.asarray(pick(rng, ((230, 230, 230), (235, 195, 40), (40, 90, 200))), np.float32)
        canvas.paint(disc, colour * light[:, None].astype(np.float32), label, laf_id)
    elif kind in ("styrofoam", "bag"):
        angles = np.linspace(0, 2 * np.pi, 14, endpoint=False)
        radii = w / 2 * (1 + rng.uniform(-0.3, 0.3, angles.size) * (1.5 if kind == "bag" else 1))
        cy = yb - 0.35 * w
        blob = polygon(shape, list(zip(x + radii * np.cos(angles), cy + 0.7 * radii * np.sin(angles))))
        if kind == "styrofoam":
            fill(blob, (238, 238, 232), grain=0.08, blotch=0.08, cell=w / 6)
        else:  # a thin plastic bag lets the road show through its wrinkles
            ys, xs = np.nonzero(blob)
            wrinkles = 1 + 0.25 * value_noise(rng, ys, xs, w / 8)
            colour = np.asarray(pick(rng, ((230, 230, 235), (60, 110, 190), (30, 30, 35))), np.float32)
            mixed = 0.6 * colour * wrinkles[:, None] + 0.4 * canvas.rgb[ys, xs]
            canvas.paint(blob, mixed, label, laf_id)
    elif kind == "dog":
        colour = (30, 28, 26) if laf_id == 24 else (225, 220, 210)
        facing = rng.choice((-1, 1))
        body = ellipse(shape, x, yb - 0.5 * w, 0.42 * w, 0.18 * w)
        body |= ellipse(shape, x + facing * 0.45 * w, yb - 0.72 * w, 0.13 * w, 0.12 * w)
        for k in (-0.3, -0.15, 0.15, 0.3):
            body |= rect(shape, x + k * w - 0.04 * w, yb - 0.5 * w, x + k * w + 0.04 * w, yb)
        body |= lines(shape, [(x - facing * 0.4 * w, yb - 0.55 * w), (x - facing * 0.55 * w, yb - 0.75 * w)], 0.05 * w)
        ys, xs = np.nonzero(body)
        fur = 1 + 0.15 * value_noise(rng, ys * 4.0, xs, 3) + 0.06 * rng.standard_normal(ys.size)
        canvas.paint(body, np.asarray(colour, np.float32) * fur[:, None].astype(np.float32), label, laf_id)
    elif kind in ("post", "timber"):
        thick = max(1.0, rng.uniform(0.05, 0.1) * w)
        bar = rect(shape, x - w / 2, yb - thick, x + w / 2, yb)
        if kind == "post":
            ys, xs = np.nonzero(bar)
            red = ((xs - x) // max(1.0, 0.15 * w)) % 2 == 0
            colours = np.where(red[:, None], (200, 35, 30), (235, 235, 230)).astype(np.float32)
            canvas.paint(bar, colours, label, laf_id)
        else:
            fill(bar, (150, 110, 70), grain=0.08, blotch=0.1, cell=thick)
    elif kind == "wheelcap":
        fill(ellipse(shape, x, yb - 0.2 * w, w / 2, 0.2 * w), (190, 190, 195), grain=0.06)
        fill(ellipse(shape, x, yb - 0.2 * w, 0.15 * w, 0.06 * w), (90, 90, 95))
    else:
        raise ValueError(f"unknown obstacle kind {kind!r}; known: {sorted(OBSTACLE_WIDTH)}")


# ---------------------------------------------------------------- street scenes

def paint_sky(canvas, rng, yy, overcast):
    """Sky over the whole canvas: a blue gradient with clouds, or grey overcast. Returns its mean colour."""
    top, bottom = ((185, 188, 195), (205, 208, 212)) if overcast else ((80, 135, 200), (175, 200, 225))
    f = np.clip(yy / (0.5 * canvas.h), 0, 1)[..., None]
    rgb = np.asarray(top, np.float32) * (1 - f) + np.asarray(bottom, np.float32) * f
    cloud = np.clip(noise_image(rng, canvas.h, canvas.w, canvas.w / 8) - 0.2, 0, 1)[..., None]
    canvas.rgb[:] = (rgb * (1 - 0.7 * cloud) + 165 * cloud) * (1 + 0.02 * rng.standard_normal((canvas.h, canvas.w, 1)))
    canvas.label[:] = ID["sky"]
    return canvas.rgb.reshape(-1, 3).mean(0)


def paint_roadside(canvas, rng, street, yy, xx, style, force):
    """Blocks of buildings and vegetation along both sides, in perspective, some fronted by a wall or fence."""
    u = canvas.h / 128
    # far away, buildings and trees blur into a hazy band along the horizon
    band = (yy >= street.horizon - rng.uniform(0.02, 0.07) * canvas.h) & (yy < street.horizon + 1)
    cut = rng.uniform(0, canvas.w)
    paint(canvas, rng, band & (xx < cut), (135, 140, 140), ID["building"], blotch=0.08, cell=3 * u)
    paint(canvas, rng, band & (xx >= cut), (105, 125, 95), ID["vegetation"], blotch=0.08, cell=3 * u)
    # a forced wall or fence fronts the nearest block of a side (wall and fence on different sides)
    fronted = dict(zip(rng.permutation(2).tolist(), [kind for kind in ("wall", "fence") if kind in force]))
    columns = np.arange(canvas.w) + 0.5
    for side in (0, 1):  # 0: left of the vanishing point, 1: right
        outer = street.road[side] + street.walk[side] + street.verge[side]
        dist = np.where((columns < street.vanish) == (side == 0), np.abs(columns - street.vanish) - street.far, -1.0)
        t_col = dist / outer
        ground = street.ground_y(t_col)
        edges = np.concatenate([[0.0], np.cumsum(rng.uniform(0.08, 0.35, 12) * canvas.w)])
        edges[-1] = np.inf
        visible = [k for k in range(len(edges) - 1) if ((dist >= edges[k]) & (dist < edges[k + 1])).any()]
        for k in visible:
            in_block = (dist >= edges[k]) & (dist < edges[k + 1]) & (t_col > 0)
            nearest = k == visible[-1]
            building = rng.random() < style["buildings"] or (nearest and side == 0)
            height = (rng.uniform(0.8, 2.8) if building else rng.uniform(0.6, 1.6)) * canvas.h
            top = ground - t_col * height
            if not building:  # a ragged tree line
                top = top + t_col * 0.2 * height * value_noise(rng, np.zeros(canvas.w), columns, 4 * u)
            mask = in_block[None, :] & (yy >= top[None, :]) & (yy < ground[None, :])
            if building:
                paint_facade(canvas, rng, mask, u)
            else:
                paint_leaves(canvas, rng, mask, 2 * u)
            kind = fronted.get(side) if nearest else rng.choice(["wall", "fence", ""], p=[0.1, 0.1, 0.8])
            if kind:
                low = mask & (yy >= (ground - t_col * rng.uniform(0.12, 0.3) * canvas.h)[None, :])
                paint_wall(canvas, rng, low, kind, u)


def paint_facade(canvas, rng, mask, u):
    """A building front: plaster or brick colour and a grid of windows."""
    ys, xs = np.nonzero(mask)
    colour = np.asarray(pick(rng, FACADES), np.float32)
    light = 1 + 0.06 * value_noise(rng, ys, xs, 10 * u) + 0.04 * rng.standard_normal(ys.size)
    rgb = colour * light[:, None]
    pw, ph = rng.uniform(4, 9) * u, rng.uniform(5, 10) * u
    window = ((xs % pw) < 0.55 * pw) & ((ys % ph) < 0.5 * ph)
    shine = rng.uniform(0.6, 1.4, (16, 16))[(xs / pw).astype(int) % 16, (ys / ph).astype(int) % 16]
    rgb[window] = np.asarray((45, 55, 70), np.float32) * shine[window, None]
    canvas.paint(mask, rgb, ID["building"])


def paint_wall(canvas, rng, mask, kind, u):
    """A wall (concrete or brick) or a fence (wooden planks or see-through wire mesh)."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return
    if kind == "wall":
        if rng.random() < 0.5:
            colour = np.asarray((160, 152, 138), np.float32)
            light = 1 + 0.12 * value_noise(rng, ys, xs, 4 * u) + 0.04 * rng.standard_normal(ys.size)
        else:  # bricks in offset rows
            colour = np.asarray((140, 72, 55), np.float32)
            row = (ys // (2 * u + 1)).astype(int)
            mortar = (ys % (2 * u + 1) < 1) | ((xs + 3 * u * (row % 2)) % (6 * u) < 1)
            light = np.where(mortar, 1.35, 1.0) + 0.05 * rng.standard_normal(ys.size)
        canvas.paint(mask, colour * light[:, None].astype(np.float32), ID["wall"])
    elif rng.random() < 0.5:
        colour = np.asarray((115, 95, 75), np.float32)
        gap = (xs % (3 * u + 1)) < max(1, u)
        light = np.where(gap, 0.55, 1.0) + 0.06 * rng.standard_normal(ys.size)
        canvas.paint(mask, colour * light[:, None].astype(np.float32), ID["fence"])
    else:  # wire mesh: what is behind shows through
        period = 3 * u + 1
        wire = ((xs + ys) % period < 1) | ((xs - ys) % period < 1)
        rgb = canvas.rgb[ys, xs] * 0.75
        rgb[wire] = 155 + 10 * rng.standard_normal((int(wire.sum()), 1))
        canvas.paint(mask, rgb, ID["fence"])


def paint_ground(canvas, rng, street, yy, xx, style, force, sky):
    """Verge, sidewalks and road with markings, manholes, patches and puddles; returns the road mask."""
    shape, u = (canvas.h, canvas.w), canvas.h / 128
    t = (yy - street.horizon) / (canvas.h - street.horizon)
    below = t > 0
    t_safe = np.where(below, t, 1.0)
    left0, right0 = street.span(t_safe, 0)
    left1, right1 = street.span(t_safe, 1)
    left2, right2 = street.span(t_safe, 2)
    road = below & (xx >= left0) & (xx < right0)
    walk = below & ~road & (xx >= left1) & (xx < right1)
    verge = below & ~road & ~walk & (xx >= left2) & (xx < right2)
    ys, xs = np.nonzero(verge)
    colour = np.asarray(pick(rng, TERRAINS), np.float32)
    light = 0.9 + 0.12 * value_noise(rng, ys, xs, 6 * u) + 0.06 * rng.standard_normal(ys.size)
    canvas.paint(verge, colour * light[:, None].astype(np.float32), ID["terrain"])

    ys, xs = np.nonzero(walk)
    tile = rng.uniform(3, 6) * u
    joint = (ys % tile < 1) | (xs % (1.5 * tile) < 1)
    colour = np.asarray(pick(rng, ((150, 140, 130), (165, 160, 155), (140, 120, 110))), np.float32)
    light = np.where(joint, 0.8, 1.0) + 0.05 * rng.standard_normal(ys.size) + 0.05 * value_noise(rng, ys, xs, 8 * u)
    canvas.paint(walk, colour * light[:, None].astype(np.float32), ID["sidewalk"])
    kerb = np.maximum(1.0, 0.012 * canvas.w * t_safe)
    curb = walk & ((np.abs(xx - left0) < kerb) | (np.abs(xx - right0) < kerb))
    paint(canvas, rng, curb, (185, 182, 178), ID["sidewalk"])

    lat = (xx - left0) / np.maximum(right0 - left0, 1e-3)  # 0 at the left road edge, 1 at the right
    z = 1 / t_safe                                           # distance along the road
    ys, xs = np.nonzero(road)
    base = rng.uniform(80, 110) * np.asarray((1, 0.98, 1.02)) * rng.uniform(0.97, 1.03, 3)
    light = 1 + 0.06 * value_noise(rng, ys, xs, 12 * u) + 0.07 * rng.standard_normal(ys.size)
    canvas.paint(road, base.astype(np.float32) * light[:, None].astype(np.float32), ID["road"])
    details = style["details"]
    if rng.random() < 0.9:
        centre = rng.uniform(0.35, 0.65)
        dashes = road & (np.abs(lat - centre) < 0.012) & ((z * rng.uniform(1.2, 2.0)) % 1 < 0.45)
        edges = road & ((np.abs(lat - 0.03) < 0.008) | (np.abs(lat - 0.97) < 0.008))
        paint(canvas, rng, dashes | edges, (215, 215, 205), ID["road"], grain=0.06)
    if rng.random() < 0.2 * details:
        z0 = rng.uniform(1.3, 3.0)
        crossing = road & (z > z0) & (z < z0 * 1.25) & ((lat * 10) % 1 < 0.5)
        paint(canvas, rng, crossing, (220, 220, 212), ID["road"], grain=0.06)
    for _ in range(rng.poisson(2 * details)):  # repaired patches, darker or lighter
        z0, l0 = rng.uniform(1.1, 4.0), rng.uniform(0, 0.8)
        patch = road & (z > z0) & (z < z0 * rng.uniform(1.1, 1.5)) & (lat > l0) & (lat < l0 + rng.uniform(0.1, 0.4))
        darken(canvas, patch, rng.uniform(0.75, 1.2))
    for _ in range(rng.poisson(1.2 * details)):  # manholes
        tm = rng.uniform(0.2, 0.9)
        x, y, r = street.on_road(rng, tm), street.ground_y(tm), tm * 0.035 * canvas.w
        paint(canvas, rng, ellipse(shape, x, y, r, 0.35 * r), (60, 60, 63), ID["road"], grain=0.08)
    for _ in range(rng.poisson(0.8 * details)):  # puddles mirror the sky
        tm = rng.uniform(0.2, 0.9)
        x, y, r = street.on_road(rng, tm), street.ground_y(tm), tm * rng.uniform(0.05, 0.15) * canvas.w
        ys, xs = np.nonzero(ellipse(shape, x, y, r, 0.3 * r))
        keep = value_noise(rng, ys, xs, max(1.0, r / 3)) > -0.6
        puddle = np.zeros(shape, bool)
        puddle[ys[keep], xs[keep]] = True
        paint(canvas, rng, puddle, 0.55 * sky + 20, ID["road"], grain=0.05, blotch=0.1, cell=r / 2)
    if "train" in force or rng.random() < 0.03:  # tram rails (Cityscapes void `rail track`)
        for l0 in (0.42, 0.58):
            paint(canvas, rng, road & (np.abs(lat - l0) < 0.008), (150, 145, 140), ID["rail track"])
    if rng.random() < 0.15 * details:  # a parking bay beside the road: looks like road, is void
        side = rng.integers(2)
        z0 = rng.uniform(1.1, 2.0)
        bay = road & (z > z0) & (z < 2 * z0) & ((lat < 0.12) if side == 0 else (lat > 0.88))
        paint(canvas, rng, bay, base * 1.12, ID["parking"], grain=0.08)
    return road


def street_objects(rng, street, style, force, obstacles, where, scale):
    """(depth, draw function) of every object of the scene, in drawing order: far to near, then the
    forced classes, near and last so that they stay visible even in tiny images."""
    h, w = street.h, street.w
    objects = []

    def count(mean):
        return rng.poisson(mean * style["traffic"])

    def add(t, draw):
        objects.append((t, draw))

    def car(t):
        x, width = street.on_road(rng, t), t * rng.uniform(0.28, 0.36) * w

        def draw(c):
            yb = street.ground_y(t)
            darken(c, ellipse((h, w), x, yb, 0.6 * width, 0.08 * width), 0.6)
            draw_car(c, rng, x, yb, width, ID["car"])
        add(t, draw)

    def person(t, on_road):
        x = street.on_road(rng, t) if on_road else street.on_walk(rng, t)
        add(t, lambda c: draw_person(c, rng, x, street.ground_y(t), t * rng.uniform(0.55, 0.7) * h, ID["person"]))

    def pole(t, item):
        x = street.span(t, 1)[rng.integers(2)]
        add(t, lambda c: draw_pole_with(c, rng, street, x, t, item))

    def tree(t):
        x = street.span(t, 2)[rng.integers(2)]
        add(t, lambda c: draw_tree(c, rng, x, street.ground_y(t), t * rng.uniform(1.2, 2.2) * h))

    def litter_bin(t):
        x = street.on_walk(rng, t)
        add(t, lambda c: draw_bin(c, rng, x, street.ground_y(t), t * 0.05 * w))

    def bike(t, kind, rider):
        x, length = (street.on_road(rng, t) if rider else street.on_walk(rng, t)), t * rng.uniform(0.22, 0.3) * w

        def draw(c):
            draw_vehicle = draw_motorcycle if kind == "motorcycle" else draw_bicycle
            saddle, pedal, bar = draw_vehicle(c, rng, x, street.ground_y(t), length, ID[kind])
            if rider:
                draw_rider(c, rng, saddle, pedal, bar, t * 0.62 * h, ID["rider"])
        add(t, draw)

    def big(t, kind):
        x = street.on_road(rng, t)
        width = t * rng.uniform(0.35, 0.45) * w * (2.5 if kind == "train" else 1)
        draw = {"truck": draw_truck, "bus": draw_bus, "train": draw_train}[kind]
        add(t, lambda c: draw(c, rng, x, street.ground_y(t), width, ID[kind]))

    def obstacle(kind, laf_id):
        t = rng.uniform(0.15, 0.9) if where == "road" else rng.uniform(0.25, 1.0)
        width = t * rng.uniform(*OBSTACLE_WIDTH[kind]) * w * scale
        x = street.on_road(rng, t, margin=width / 2) if where == "road" else rng.uniform(0.1, 0.9) * w
        add(t, lambda c: draw_obstacle(c, rng, kind, laf_id, x, street.ground_y(t), width))

    always = style["always"]  # Cityscapes scenes always show a car, a person and a pole
    for _ in range(count(2.5) + always):
        car(rng.uniform(0.12, 0.9))
    for _ in range(count(2.0) + always):
        person(rng.uniform(0.12, 0.9), on_road=rng.random() < 0.15)
    for _ in range(count(2.5) + always):
        pole(rng.uniform(0.1, 0.9), item=rng.choice(["sign", "light", ""]))
    for _ in range(count(1.0)):
        tree(rng.uniform(0.15, 0.9))
    for _ in range(count(0.5)):
        litter_bin(rng.uniform(0.2, 0.9))
    for kind, mean in (("bicycle", 0.3), ("motorcycle", 0.2)):
        for _ in range(count(mean)):
            bike(rng.uniform(0.2, 0.9), kind, rider=rng.random() < 0.5)
    for kind, chance in (("truck", 0.15), ("bus", 0.1)):
        if rng.random() < chance * style["traffic"]:
            big(rng.uniform(0.12, 0.5), kind)
    for kind, laf_id in obstacles:
        obstacle(kind, laf_id)
    placed = len(objects)
    for name in force:  # terrain, wall and fence are part of the roadside and the ground
        t = rng.uniform(0.45, 0.75)
        if name in ("truck", "bus", "train"):
            big(t, name)
        elif name in ("motorcycle", "bicycle"):
            bike(t, name, rider=False)
        elif name == "rider":
            bike(t, "bicycle", rider=True)
        elif name in ("traffic light", "traffic sign"):
            pole(t, "light" if name == "traffic light" else "sign")
    return sorted(objects[:placed], key=lambda o: o[0]) + sorted(objects[placed:], key=lambda o: o[0])


def draw_pole_with(canvas, rng, street, x, t, item):
    """A pole at depth t carrying a traffic sign, a traffic light or nothing."""
    h, w = street.h, street.w
    yb, width = street.ground_y(t), max(1.0, t * 0.018 * w)
    height = t * (rng.uniform(1.0, 1.4) if item == "sign" else rng.uniform(1.6, 2.4)) * h
    draw_pole(canvas, rng, x, yb, height, width)
    if item == "sign":
        size = max(2.0, t * rng.uniform(0.05, 0.08) * w)
        draw_sign(canvas, rng, x, yb - height, size, ID["traffic sign"])
    elif item == "light":
        size = max(1.5, t * 0.03 * w)
        draw_light(canvas, rng, x, yb - height, size, ID["traffic light"])


def cast_shadows(canvas, rng, street):
    """Shadows of unseen buildings and trees across the ground and everything on it (sunny days)."""
    h, w = canvas.h, canvas.w
    for _ in range(rng.integers(1, 4)):
        y0, y1 = sorted(rng.uniform(street.horizon, h, 2))
        side = rng.integers(2)
        reach = rng.uniform(0.2, 0.8) * w
        x_edge = (0.0, reach) if side == 0 else (w - 1.0, w - reach)
        shadow = polygon((h, w), [(x_edge[0], y0), (x_edge[1], y0 + rng.uniform(-3, 3)),
                                  (x_edge[1] + rng.uniform(-0.2, 0.2) * w, y1), (x_edge[0], y1)])
        shadow &= canvas.label != ID["sky"]
        darken(canvas, shadow, rng.uniform(0.45, 0.75) * np.asarray((0.95, 1.0, 1.1)))


def draw_hood(canvas, rng, yy, xx):
    """The ego vehicle's bonnet (Cityscapes `ego vehicle`) with an unlabelled seam above it."""
    h, w = canvas.h, canvas.w
    hood_h = rng.uniform(0.08, 0.13) * h
    edge = h - hood_h * (1 - 0.5 * ((xx - w / 2) / (w / 2)) ** 2)
    hood = yy >= edge
    ys, xs = np.nonzero(hood)
    glare = np.exp(-((xs - w * rng.uniform(0.3, 0.7)) / (0.15 * w)) ** 2)
    light = 1 + 0.04 * rng.standard_normal(ys.size)
    rgb = np.asarray((40, 42, 48), np.float32) * light[:, None] + 70 * glare[:, None]
    canvas.paint(hood, rgb, ID["ego vehicle"])
    canvas.label[(yy >= edge - 1) & ~hood] = ID["unlabeled"]


def camera(rng, rgb, gain, cast, tint, noise, vignette, blur):
    """Exposure, colour cast, vignetting, optional blur and sensor noise: (H, W, 3) uint8."""
    h, w = rgb.shape[:2]
    rgb = rgb * rng.uniform(*gain) * (1 + rng.uniform(-cast, cast, 3)) * np.asarray(tint)
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((yy - h / 2) / (h / 2)) ** 2 * 0.5 + ((xx - w / 2) / (w / 2)) ** 2 * 0.5
    rgb = rgb * (1 - rng.uniform(*vignette) * r2)[..., None]
    if blur:
        padded = np.pad(rgb, ((1, 1), (1, 1), (0, 0)), mode="edge")
        box = sum(padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)) / 9
        rgb = (1 - blur) * rgb + blur * box
    rgb = rgb + rng.uniform(*noise) * rng.standard_normal((h, w, 1)) + 1.5 * rng.standard_normal((h, w, 3))
    return np.clip(np.round(rgb), 0, 255).astype(np.uint8)


def make_street(rng, h, w, style, force):
    """Random road geometry of a scene in `style`; a forced terrain gets a grass strip on the left."""
    road = tuple(rng.uniform(*style["road"], 2) * w)
    walk = tuple(rng.uniform(*style["walk"], 2) * w)
    verge = tuple(np.where(rng.random(2) < style["verge"], rng.uniform(0.05, 0.2, 2), 0.0) * w)
    if "terrain" in force:
        verge = (max(verge[0], 0.12 * w), verge[1])
    return Street(h, w, horizon=rng.uniform(*style["horizon"]) * h, vanish=rng.uniform(0.38, 0.62) * w,
                  far=0.01 * w, road=road, walk=walk, verge=verge)


def render_street(rng, h, w, style_name, force=(), obstacles=(), where="road", scale=1.0, condition=None):
    """One street scene.

    style_name: a key of STYLES; force: classes (of FORCED) that must appear; obstacles: [(kind,
    LostAndFound labelId)] placed on the road (where="road") or anywhere on the ground, `scale` times
    their usual size; condition: one of OBSTACLE_CONDITIONS (surface and light of the obstacle track).
    Returns image (H, W, 3) uint8, Cityscapes labelIds (H, W) uint8, OoD object ids (H, W) uint8.
    """
    style = STYLES[style_name]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) + 0.5
    street = make_street(rng, h, w, style, force)
    canvas = Canvas.blank(h, w)
    overcast = rng.random() < 0.4 or condition == "night"
    sky = paint_sky(canvas, rng, yy, overcast)
    paint_roadside(canvas, rng, street, yy, xx, style, force)
    road = paint_ground(canvas, rng, street, yy, xx, style, force, sky)
    if condition == "gravel":
        canvas.rgb[road] = np.asarray((125, 112, 95), np.float32) * (1 + 0.15 * rng.standard_normal((road.sum(), 1)))
    elif condition == "darkasphalt":
        canvas.rgb[road] *= 0.6
    elif condition == "wet":
        canvas.rgb[road] = 0.7 * canvas.rgb[road] + 0.3 * sky * 0.6
    for _, draw in street_objects(rng, street, style, force, obstacles, where, scale):
        draw(canvas)
    if not overcast:
        cast_shadows(canvas, rng, street)
    if rng.random() < style["hood"]:
        draw_hood(canvas, rng, yy, xx)
    look = dict(style["camera"])
    if condition == "night":
        look.update(gain=(0.25, 0.4), noise=(6, 10))
    return camera(rng, canvas.rgb, **look), canvas.label.copy(), canvas.ood.copy()


def pick_obstacles(rng, count, hazards=HAZARDS):
    kinds = sorted(hazards)
    chosen = [kinds[k] for k in rng.integers(len(kinds), size=count)]
    return [(kind, int(rng.choice(hazards[kind]))) for kind in chosen]


# ---------------------------------------------------------------- COCO-like images

def coco_role(i):
    """What COCO image i holds; the first four cover every case the SPEC section 1 filter must handle."""
    fixed = ("crowd_excluded", "excluded", "small", "kept_crowd")
    if i < len(fixed):
        return fixed[i]
    return {0: "excluded", 4: "small"}.get(i % 8, "kept")


def coco_shape(rng, kind, cx, cy, s, h, w):
    """A COCO-like object `s` px across centred at (cx, cy). Returns (mask (H, W) bool, polygons as
    COCO flat lists [[x1, y1, x2, y2, ...], ...], or None where the shape has a hole or a bite and is
    stored as RLE). The mask is pycocotools' own rasterisation of the polygons, so annToMask matches it."""
    r, turn = s / 2, rng.uniform(0, 2 * np.pi)

    def outline(angles, radii, squash=1.0):
        x = radii * np.cos(angles + turn)
        y = radii * np.sin(angles + turn) * squash
        return np.stack([cx + x, cy + y], 1)

    a = np.linspace(0, 2 * np.pi, 28, endpoint=False)
    if kind == "disc":
        parts = [outline(a, r)]
    elif kind == "ellipse":
        parts = [outline(a, r, rng.uniform(0.5, 0.85))]
    elif kind == "polygon":
        k = rng.integers(3, 9)
        parts = [outline(np.linspace(0, 2 * np.pi, k, endpoint=False), r)]
    elif kind == "star":
        k = rng.integers(5, 8)
        parts = [outline(np.linspace(0, 2 * np.pi, 2 * k, endpoint=False), r * np.tile([1.0, 0.45], k))]
    elif kind == "cross":
        arm = rng.uniform(0.2, 0.35)
        corners = [(arm, 1), (arm, arm), (1, arm), (1, -arm), (arm, -arm), (arm, -1),
                   (-arm, -1), (-arm, -arm), (-1, -arm), (-1, arm), (-arm, arm), (-arm, 1)]
        xy = np.asarray(corners) * r
        rot = np.asarray([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
        parts = [np.asarray((cx, cy)) + xy @ rot.T]
    elif kind == "heart":
        tt = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        xy = np.stack([16 * np.sin(tt) ** 3,
                       -(13 * np.cos(tt) - 5 * np.cos(2 * tt) - 2 * np.cos(3 * tt) - np.cos(4 * tt))], 1)
        parts = [np.asarray((cx, cy)) + xy * (r / 17)]
    elif kind == "sector":
        opening = rng.uniform(0.4, 1.6) * np.pi
        arc = np.linspace(0, opening, 20)
        parts = [np.vstack([[(cx, cy)], outline(arc, r)])]
    elif kind == "blobs":  # a head with ears, or a body of overlapping lobes: several polygons
        parts = [outline(a, r * 0.55) + rng.uniform(-0.1, 0.1, 2) * s]
        for angle in rng.uniform(0, 2 * np.pi, rng.integers(2, 4)):
            centre = np.asarray((cx, cy)) + 0.3 * s * np.asarray((np.cos(angle), np.sin(angle)))
            parts.append(centre + np.stack([np.cos(a), np.sin(a)], 1) * r * rng.uniform(0.2, 0.4))
    elif kind in ("ring", "crescent"):
        yy, xx = np.ogrid[0:h, 0:w]
        yy, xx = yy + 0.5, xx + 0.5
        d = np.hypot(xx - cx, yy - cy)
        if kind == "ring":
            mask = (d <= r) & (d >= r * rng.uniform(0.35, 0.6))
        else:
            bx, by = cx + 0.45 * r * np.cos(turn), cy + 0.45 * r * np.sin(turn)
            mask = (d <= r) & (np.hypot(xx - bx, yy - by) > 0.85 * r)
        return mask, None
    else:
        raise ValueError(f"unknown COCO shape {kind!r}")
    polygons = [np.round(part, 2).ravel().tolist() for part in parts]
    mask = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, h, w))).astype(bool)
    return mask, polygons


def coco_pattern(rng, mask, s):
    """Two vivid colours in a pattern (stripes, checks, dots, rings, gradient or spots): (N, 3) float32."""
    ys, xs = np.nonzero(mask)
    cy, cx = ys.mean(), xs.mean()
    angle = rng.uniform(0, np.pi)
    u = (xs - cx) * np.cos(angle) + (ys - cy) * np.sin(angle)
    v = -(xs - cx) * np.sin(angle) + (ys - cy) * np.cos(angle)
    period = rng.uniform(0.12, 0.35) * s
    kind = rng.integers(6)
    if kind == 0:
        mix = (u % period) < period / 2
    elif kind == 1:
        mix = ((u // (period / 2)) + (v // (period / 2))) % 2 == 0
    elif kind == 2:
        mix = np.hypot((u % period) - period / 2, (v % period) - period / 2) < period / 3
    elif kind == 3:
        mix = (np.hypot(xs - cx, ys - cy) % period) < period / 2
    elif kind == 4:
        mix = np.clip(u / s + 0.5, 0, 1)
    else:
        mix = value_noise(rng, ys, xs, period / 2) > 0.3
    mix = np.asarray(mix, np.float32)[:, None]
    c1, c2 = np.asarray(vivid(rng), np.float32), np.asarray(vivid(rng), np.float32)
    return (c1 * (1 - mix) + c2 * mix) * (1 + 0.04 * rng.standard_normal((ys.size, 1))).astype(np.float32)


def coco_background(canvas, rng):
    """A muted indoor or outdoor backdrop: two colours blended along a direction, soft blotches."""
    h, w = canvas.h, canvas.w
    colours = []
    for _ in range(2):
        r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.05, 0.45), rng.uniform(0.3, 0.9))
        colours.append(np.asarray((255 * r, 255 * g, 255 * b), np.float32))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.clip(0.5 + ((xx - w / 2) * np.cos(angle) + (yy - h / 2) * np.sin(angle)) / max(h, w), 0, 1)
    if rng.random() < 0.5:  # a table edge or a floor line
        ramp = 0.8 * (yy > rng.uniform(0.4, 0.8) * h) + 0.2 * ramp
    light = 1 + 0.1 * noise_image(rng, h, w, h / 6)
    canvas.rgb[:] = (colours[0] * (1 - ramp[..., None]) + colours[1] * ramp[..., None]) * light[..., None]
    canvas.label[:] = 0


def draw_excluded(canvas, rng, category, x, yb, s, label):
    """A COCO street category (person, car, ...) inside the square [x - s/2, x + s/2] x [yb - s, yb]."""
    if category == 1:
        draw_person(canvas, rng, x, yb, s, label)
    elif category == 2:
        draw_bicycle(canvas, rng, x, yb, 0.9 * s, label)
    elif category == 3:
        draw_car(canvas, rng, x, yb, 0.95 * s, label)
    elif category == 4:
        draw_motorcycle(canvas, rng, x, yb, 0.85 * s, label)
    elif category == 6:
        draw_bus(canvas, rng, x, yb, 0.85 * s, label)
    elif category == 8:
        draw_truck(canvas, rng, x, yb, 0.75 * s, label)
    elif category == 10:
        draw_light(canvas, rng, x, yb - s, 0.38 * s, label)
    elif category == 13:
        octagon = np.linspace(0, 2 * np.pi, 8, endpoint=False) + np.pi / 8
        points = [(x + 0.48 * s * np.cos(a), yb - s / 2 + 0.48 * s * np.sin(a)) for a in octagon]
        paint(canvas, rng, polygon((canvas.h, canvas.w), points), (200, 25, 30), label)
    else:
        raise ValueError(f"COCO category {category} is not one of the excluded street categories")


def render_coco(rng, role, object_px):
    """One COCO-like image. role: see coco_role; object_px: (min, max) object size in px.

    Returns image (H, W, 3) uint8, instances (H, W) int32 (k + 1 on the pixels of object k, 0 on the
    background) and the objects [{category_id, iscrowd, polygons or None}] in that order.
    """
    sizes = COCO_SMALL_SIZES if role == "small" else COCO_SIZES
    h, w = sizes[rng.integers(len(sizes))]
    canvas = Canvas.blank(h, w, label_dtype=np.int32)
    coco_background(canvas, rng)
    plan = []  # (category, iscrowd)
    if role == "crowd_excluded":
        plan.append((1, 1))
    elif role == "excluded":
        excluded = sorted(COCO_EXCLUDED)
        plan += [(int(rng.choice(excluded)), 0) for _ in range(rng.integers(1, 3))]
    elif role == "kept_crowd":
        plan.append((int(rng.choice((55, 37))), 1))
    kept = sorted(COCO_OBJECTS)
    plan += [(int(rng.choice(kept)), 0) for _ in range(rng.integers(5, 13))]

    boxes, objects = [], []
    lo, hi = object_px
    for category, iscrowd in plan:
        s = rng.uniform(lo, hi) * (1.6 if iscrowd else 1)
        half = 0.55 * s + 2  # stars and crosses reach a little beyond s / 2
        for _ in range(50):
            cx, cy = rng.uniform(half, w - half), rng.uniform(half, h - half)
            box = (cx - half, cy - half, cx + half, cy + half)
            if all(box[2] < b[0] or b[2] < box[0] or box[3] < b[1] or b[3] < box[1] for b in boxes):
                break
        else:
            continue  # no free place left: the image holds fewer objects
        boxes.append(box)
        label = len(objects) + 1
        x0, y0 = int(box[0]), int(box[1])
        window = canvas.window(x0, y0, int(np.ceil(box[2])), int(np.ceil(box[3])))
        polygons = None
        if iscrowd:  # a bunch of overlapping instances annotated as one crowd region
            for _ in range(rng.integers(3, 6)):
                x, y = cx - x0 + rng.uniform(-0.25, 0.25) * s, cy - y0 + rng.uniform(-0.25, 0.25) * s
                if category in COCO_EXCLUDED:
                    draw_excluded(window, rng, category, x, y + 0.25 * s, 0.5 * s, label)
                else:
                    mask, _ = coco_shape(rng, COCO_OBJECTS[category][2], x, y, 0.4 * s, window.h, window.w)
                    window.paint(mask, coco_pattern(rng, mask, 0.4 * s), label)
        elif category in COCO_EXCLUDED:
            draw_excluded(window, rng, category, cx - x0, cy - y0 + s / 2, s, label)
        else:  # polygons in image coordinates, as the annotation stores them
            mask, polygons = coco_shape(rng, COCO_OBJECTS[category][2], cx, cy, s, h, w)
            mask = mask[y0:y0 + window.h, x0:x0 + window.w]
            window.paint(mask, coco_pattern(rng, mask, s), label)
        objects.append(dict(category_id=category, iscrowd=iscrowd, polygons=polygons))
    image = np.clip(np.round(canvas.rgb + 2 * rng.standard_normal((h, w, 3), np.float32)), 0, 255).astype(np.uint8)
    return image, canvas.label, objects


def coco_segmentation(mask, polygons, iscrowd):
    """COCO `segmentation` of an object: its polygons; else uncompressed RLE for a crowd region
    (column-major run lengths starting with background, as the COCO files store crowds); else
    compressed RLE (pycocotools' string counts)."""
    if polygons is not None:
        return polygons
    h, w = mask.shape
    if iscrowd:
        flat = mask.ravel(order="F")
        changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
        bounds = np.concatenate([[0], changes, [flat.size]])
        counts = np.diff(bounds).tolist()
        if flat[0]:
            counts = [0] + counts
        return {"counts": counts, "size": [h, w]}
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"counts": rle["counts"].decode("ascii"), "size": [h, w]}


# ---------------------------------------------------------------- writing

def sample_rng(seed, stream, index):
    """The random generator of sample `index` of dataset `stream`: independent of every other sample."""
    return np.random.default_rng([seed, zlib.crc32(stream.encode()), index])


def save(path, array):
    """Write an image or label array atomically; the format follows the suffix (fixed quality)."""
    options = {".png": dict(compress_level=6), ".jpg": dict(quality=JPEG_QUALITY),
               ".webp": dict(quality=WEBP_QUALITY, method=4)}[os.path.splitext(path)[1]]
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, **options)


def write_missing(files, render):
    """Write the arrays render() returns to `files`, unless every file exists; returns files written."""
    missing = [not os.path.exists(path) for path in files]
    if not any(missing):
        return 0
    for path, array, write in zip(files, render(), missing):
        if write:
            save(path, array)
    return sum(missing)


def write_cityscapes(root, sizes, seed, bar):
    h, w = sizes["street"]
    summary = {}
    for split, count in zip(("train", "val"), sizes["cityscapes"]):
        cities, written = CITIES[split], 0
        for i in range(count):
            city = cities[i % len(cities)]
            stem = f"{city}_{i // len(cities):06d}_000019"
            files = [os.path.join(root, "cityscapes", "leftImg8bit", split, city, f"{stem}_leftImg8bit.png"),
                     os.path.join(root, "cityscapes", "gtFine", split, city, f"{stem}_gtFine_labelIds.png")]
            force = [FORCED[(3 * i + k) % len(FORCED)] for k in range(3)]
            stream = f"cityscapes/{split}"
            written += write_missing(files, lambda: render_street(sample_rng(seed, stream, i), h, w, "cityscapes",
                                                                  force=force)[:2])
            bar.update()
        summary[f"cityscapes/{split}"] = dict(images=count, labels=count, written=written)
    return summary


def write_lost_and_found(root, sizes, seed, bar):
    h, w = sizes["street"]
    summary = {}
    for split, count in zip(("test", "train"), sizes["lost_and_found"]):
        sequences, written = LAF_SEQUENCES[split], 0
        for i in range(count):
            sequence, k = sequences[i % len(sequences)], i // len(sequences)
            stem = f"{sequence}_{k // 4:06d}_{30 * (k % 4 + 1):06d}"
            files = [os.path.join(root, "lost_and_found", "leftImg8bit", split, sequence, f"{stem}_leftImg8bit.png"),
                     os.path.join(root, "lost_and_found", "gtCoarse", split, sequence, f"{stem}_gtCoarse_labelIds.png")]
            written += write_missing(files, lambda: laf_sample(sample_rng(seed, f"lost_and_found/{split}", i), h, w))
            bar.update()
        summary[f"lost_and_found/{split}"] = dict(images=count, labels=count, written=written)
    return summary


def laf_sample(rng, h, w):
    """A LostAndFound-like frame: image and gtCoarse labelIds (0 outside the road, 1 free road, objects)."""
    obstacles = pick_obstacles(rng, rng.integers(1, 4))
    if rng.random() < 0.3:
        obstacles += pick_obstacles(rng, 1, NON_HAZARDS)
    image, label_ids, ood = render_street(rng, h, w, "lost_and_found", obstacles=obstacles)
    gt = np.where(ood > 0, ood, np.where(label_ids == ID["road"], LAF_FREE, LAF_OUT_OF_ROI))
    return image, gt.astype(np.uint8)


def write_fishyscapes(root, sizes, seed, bar):
    h, w = sizes["street"]
    count, summary = sizes["fishyscapes"], {}
    for split, make in (("Static", fishyscapes_static), ("LostAndFound", fishyscapes_laf)):
        written = 0
        for i in range(count):
            stem = os.path.join(root, "fishyscapes", split, f"{i:04d}")
            written += write_missing([stem + ".jpg", stem + ".png"],
                                     lambda: make(sample_rng(seed, f"fishyscapes/{split}", i), h, w))
            bar.update()
        summary[f"fishyscapes/{split}"] = dict(images=count, labels=count, written=written)
    return summary


def fishyscapes_static(rng, h, w):
    """Fishyscapes Static-like: objects anywhere in a Cityscapes scene; 0 in, 1 OoD, 255 Cityscapes void."""
    obstacles = pick_obstacles(rng, rng.integers(1, 3))
    image, label_ids, ood = render_street(rng, h, w, "cityscapes", obstacles=obstacles, where="anywhere",
                                          scale=rng.uniform(2.0, 3.5))
    void = np.isin(label_ids, list(VOID_IDS))
    return image, np.where(ood > 0, 1, np.where(void, 255, 0)).astype(np.uint8)


def fishyscapes_laf(rng, h, w):
    """Fishyscapes LostAndFound-like: obstacles on the road; 0 road, 1 OoD, 255 outside the road."""
    obstacles = pick_obstacles(rng, rng.integers(1, 4))
    image, label_ids, ood = render_street(rng, h, w, "lost_and_found", obstacles=obstacles)
    return image, np.where(ood > 0, 1, np.where(label_ids == ID["road"], 0, 255)).astype(np.uint8)


def write_road_anomaly(root, sizes, seed, bar):
    """RoadAnomaly21-like: big anomalies anywhere; labelled frames `validation<k>`, others unlabelled."""
    h, w = sizes["street"]
    count, labelled = sizes["smiyc"]
    folder = os.path.join(root, "dataset_AnomalyTrack")
    written = 0
    for i in range(count):
        if i < labelled:
            name, kind = f"validation{i:04d}", None
        else:
            kind = ANOMALY_FRAMES[(i - labelled) % len(ANOMALY_FRAMES)]
            name = f"{kind}{i - labelled:04d}"
        files = [os.path.join(folder, "images", f"{name}.jpg")]
        if i < labelled:
            files.append(os.path.join(folder, "labels_masks", f"{name}_labels_semantic.png"))
        written += write_missing(files, lambda: road_anomaly(sample_rng(seed, "dataset_AnomalyTrack", i), h, w, kind))
        bar.update()
    return {"dataset_AnomalyTrack": dict(images=count, labels=labelled, written=written)}


def road_anomaly(rng, h, w, kind=None):
    """Image and label (0 usual, 1 anomaly, 255 void: a one-pixel seam around each anomaly)."""
    first = (kind, int(rng.choice(HAZARDS[kind]))) if kind else pick_obstacles(rng, 1)[0]
    obstacles = [first] + pick_obstacles(rng, rng.integers(0, 2))
    image, _, ood = render_street(rng, h, w, "anomaly", obstacles=obstacles, where="anywhere",
                                  scale=rng.uniform(2.0, 3.5))
    anomaly = ood > 0
    grown = ndimage.binary_dilation(anomaly, structure=np.ones((3, 3), bool))
    label = np.where(anomaly, 1, np.where(grown, 255, 0)).astype(np.uint8)
    return image, label


def write_road_obstacle(root, sizes, seed, bar):
    """RoadObstacle21-like .webp frames: labelled `validation_<k>`, others named by their condition."""
    h, w = sizes["street"]
    count, labelled = sizes["smiyc"]
    folder = os.path.join(root, "dataset_ObstacleTrack")
    written = 0
    for i in range(count):
        condition = OBSTACLE_CONDITIONS[i % len(OBSTACLE_CONDITIONS)]
        if i < labelled:
            name = f"validation_{i + 1}"
        else:
            kind = sorted(HAZARDS)[(i - labelled) % len(HAZARDS)]
            name = f"{condition}_{kind}_{i - labelled + 1}"
        files = [os.path.join(folder, "images", f"{name}.webp")]
        if i < labelled:
            files.append(os.path.join(folder, "labels_masks", f"{name}_labels_semantic.png"))
        written += write_missing(files, lambda: road_obstacle(sample_rng(seed, "dataset_ObstacleTrack", i), h, w,
                                                              condition))
        bar.update()
    return {"dataset_ObstacleTrack": dict(images=count, labels=labelled, written=written)}


def road_obstacle(rng, h, w, condition):
    """Image and label (0 road, 1 obstacle, 255 everything off the road)."""
    image, label_ids, ood = render_street(rng, h, w, "obstacle", obstacles=pick_obstacles(rng, rng.integers(1, 4)),
                                          condition=condition)
    return image, np.where(ood > 0, 1, np.where(label_ids == ID["road"], 0, 255)).astype(np.uint8)


def write_coco(root, sizes, seed, bar):
    """train2017/<id:012d>.jpg and annotations/instances_train2017.json."""
    folder = os.path.join(root, "COCO", "2017")
    json_path = os.path.join(folder, "annotations", "instances_train2017.json")
    paths = [os.path.join(folder, "train2017", f"{coco_image_id(i):012d}.jpg") for i in range(sizes["coco"])]
    images, annotations, used, written = [], [], set(), 0
    skip = os.path.exists(json_path) and all(os.path.exists(path) for path in paths)
    for i, path in enumerate(paths):
        bar.update()
        if skip:
            continue
        rng = sample_rng(seed, "COCO/train2017", i)
        image, instances, objects = render_coco(rng, coco_role(i), sizes["coco_object"])
        if not os.path.exists(path):
            save(path, image)
            written += 1
        h, w = instances.shape
        images.append(dict(id=coco_image_id(i), file_name=os.path.basename(path), height=h, width=w, license=1))
        for k, obj in enumerate(objects):
            mask = instances == k + 1
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            annotations.append(dict(id=len(annotations) + 1, image_id=coco_image_id(i), category_id=obj["category_id"],
                                    segmentation=coco_segmentation(mask, obj["polygons"], obj["iscrowd"]),
                                    area=float(mask_utils.area(rle)), bbox=mask_utils.toBbox(rle).tolist(),
                                    iscrowd=obj["iscrowd"]))
            used.add(obj["category_id"])
    if not skip and not os.path.exists(json_path):
        names = {**{k: v[:2] for k, v in COCO_OBJECTS.items()}, **COCO_EXCLUDED}
        save_json(dict(info=dict(description="meta-ood demo world: synthetic COCO-like objects", version="1.0",
                                 year=2017, contributor="preparation/make_demo_world.py", date_created="2017/09/01"),
                       licenses=[dict(id=1, name="synthetic, generated by meta-ood", url="")],
                       images=images, annotations=annotations,
                       categories=[dict(id=k, name=names[k][0], supercategory=names[k][1]) for k in sorted(used)]),
                  json_path)
        written += 1
    with open(json_path) as f:
        count = len(json.load(f)["annotations"])
    return {"COCO/train2017": dict(images=len(paths), labels=count, written=written)}


def coco_image_id(i):
    return 1000 + 7 * i


def claim(data_root, size, seed):
    """Check that data_root is empty of other data or holds this very world; record size and seed."""
    marker = os.path.join(data_root, MARKER)
    record = dict(generator="preparation/make_demo_world.py", size=size, seed=seed)
    if os.path.exists(marker):
        with open(marker) as f:
            found = json.load(f)
        if (found.get("size"), found.get("seed")) != (size, seed):
            raise SystemExit(f"{data_root} holds a demo world made with --size {found.get('size')} --seed "
                             f"{found.get('seed')}; delete it or choose another --data_root for --size {size} "
                             f"--seed {seed}")
        return
    present = [name for name in DATASET_DIRS if os.path.exists(os.path.join(data_root, name))]
    if present:
        raise SystemExit(f"{data_root} already holds {', '.join(present)} that make_demo_world did not write (no "
                         f"{MARKER}); choose an empty --data_root so that real and synthetic data never mix")
    save_json(record, marker)


def make_demo_world(data_root, size="demo", seed=0, progress=False):
    """Write the demo world under data_root; files already there are kept (see the module docstring).

    Returns {dataset: {"images": n, "labels": label files (COCO: annotations), "written": files
    written by this call}} for cityscapes/train, cityscapes/val, COCO/train2017, lost_and_found/test,
    lost_and_found/train, fishyscapes/Static, fishyscapes/LostAndFound, dataset_AnomalyTrack and
    dataset_ObstacleTrack.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, got {size!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    sizes = SIZES[size]
    claim(data_root, size, seed)
    total = (sum(sizes["cityscapes"]) + sizes["coco"] + sum(sizes["lost_and_found"]) + 2 * sizes["fishyscapes"]
             + 2 * sizes["smiyc"][0])
    summary = {}
    with tqdm(total=total, unit="image", disable=not progress, desc="demo world") as bar:
        for name, write in (("cityscapes", write_cityscapes), ("COCO", write_coco),
                            ("lost_and_found", write_lost_and_found), ("fishyscapes", write_fishyscapes),
                            ("dataset_AnomalyTrack", write_road_anomaly),
                            ("dataset_ObstacleTrack", write_road_obstacle)):
            bar.set_description(name)
            summary.update(write(data_root, sizes, seed, bar))
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data_root", default="./datasets", help="where the datasets are written")
    parser.add_argument("--size", default="demo", choices=tuple(SIZES), help="tiny: for tests; demo: for make demo")
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
    run_script(main)

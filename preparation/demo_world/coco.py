"""COCO-like images: vivid geometric objects on a plain background, with COCO annotations."""
import colorsys

import numpy as np
from pycocotools import mask as mask_utils

from preparation.demo_world.draw import Canvas, noise_image, paint, polygon, value_noise, vivid
from preparation.demo_world.objects import (draw_bicycle, draw_bus, draw_car, draw_light, draw_motorcycle,
                                            draw_person, draw_truck)

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

"""Street objects of the Cityscapes training classes and the OoD obstacles of the test sets."""
import numpy as np
from cityscapesscripts.helpers.labels import labels as cityscapes_labels

from preparation.demo_world.draw import (BUS_COLOURS, CAR_COLOURS, CLOTHES, LEAVES, SKINS, TRUCK_COLOURS, ellipse,
                                         lines, paint, pick, polygon, rect, value_noise)

ID = {label.name: label.id for label in cityscapes_labels if label.id >= 0}  # official labelIds
VOID_IDS = frozenset(label.id for label in cityscapes_labels if label.id >= 0 and label.trainId in (255, -1))
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

"""Drawing primitives: a Canvas painted back to front, smooth noise, masks of shapes, palettes."""
import colorsys

import numpy as np
from PIL import Image, ImageDraw

SKINS = ((225, 182, 150), (190, 140, 105), (120, 80, 55), (90, 60, 45))
CLOTHES = ((35, 40, 60), (25, 25, 28), (150, 40, 40), (190, 175, 150), (100, 100, 105), (220, 220, 215),
           (55, 80, 55), (120, 90, 60))
CAR_COLOURS = ((35, 45, 95), (140, 25, 25), (205, 205, 210), (25, 25, 28), (105, 108, 112), (60, 75, 60))
BUS_COLOURS = ((200, 45, 40), (40, 95, 150), (215, 195, 90))
TRUCK_COLOURS = ((225, 225, 220), (170, 172, 175), (120, 135, 150))
FACADES = ((125, 115, 105), (155, 145, 125), (100, 100, 106), (140, 95, 80), (172, 162, 150), (115, 90, 80))
LEAVES = ((55, 95, 35), (70, 110, 40), (45, 80, 40))
TERRAINS = ((125, 140, 70), (140, 150, 85), (135, 115, 80))


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

"""Whole street scenes: sky, roadside, ground, objects, shadows and the camera's look."""
import numpy as np

from preparation.demo_world.draw import (FACADES, TERRAINS, Canvas, darken, ellipse, noise_image, paint, pick,
                                         polygon, value_noise)
from preparation.demo_world.objects import (HAZARDS, ID, OBSTACLE_WIDTH, draw_bicycle, draw_bin, draw_bus,
                                            draw_car, draw_light, draw_motorcycle, draw_obstacle, draw_person,
                                            draw_pole, draw_rider, draw_sign, draw_train, draw_tree, draw_truck,
                                            paint_leaves)
from preparation.demo_world.street import STYLES, Street

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


def street_objects(rng, street, style, force, obstacles, where, scale, depth=None):
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
        t = rng.uniform(*depth) if depth else rng.uniform(0.15, 0.9) if where == "road" else rng.uniform(0.25, 1.0)
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


def render_street(rng, h, w, style_name, force=(), obstacles=(), where="road", scale=1.0, condition=None,
                  depth=None):
    """One street scene.

    style_name: a key of STYLES; force: classes (of FORCED) that must appear; obstacles: [(kind,
    LostAndFound labelId)] placed on the road (where="road") or anywhere on the ground, `scale` times
    their usual size; condition: one of OBSTACLE_CONDITIONS (surface and light of the obstacle track);
    depth: (low, high) range of the obstacles' depth t (0 the horizon, 1 the bottom row; sizes grow with
    t), by default (0.15, 0.9) on the road and (0.25, 1.0) anywhere.
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
    for _, draw in street_objects(rng, street, style, force, obstacles, where, scale, depth):
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

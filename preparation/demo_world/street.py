"""Street geometry (a straight road to a vanishing point) and the look of each dataset's scenes."""
from dataclasses import dataclass

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
    # bonnet shows at the bottom; camera: its look (see `camera`). The Cityscapes-like exposure spans dim to
    # bright days, as the real recordings do: with only bright ones the dim LostAndFound-like road was
    # unfamiliar enough that OoD training raised its entropy. Its roads have as many details as the
    # LostAndFound-like ones: with fewer, patches, puddles and crossings there made false-positive segments as
    # large as obstacles, and the meta classifier removed obstacles with them.
    "cityscapes": dict(horizon=(0.36, 0.48), road=(0.25, 0.55), walk=(0.1, 0.3), verge=0.3, buildings=0.65,
                       traffic=1.0, always=1, details=1.0, hood=0.6,
                       camera=dict(gain=(0.6, 1.15), cast=0.04, tint=(1, 1, 1), noise=(2, 5), vignette=(0.05, 0.3),
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

"""Which frames the Figure-7 overlays show, and what an overlay draws."""
import numpy as np
from PIL import Image

from src.evaluation.plots import OUTCOMES, frames_to_show, save_overlay

# Per frame, per segment: (pixels, false positive, removed). Worked out by hand below.
FRAMES = [
    [],                                                   # 0: no segment
    [(50, 0, False), (10, 1, True)],                      # 1: true 50 px kept, one false positive removed
    [(200, 0, False), (5, 1, False)],                     # 2: the largest true segment (200 px)
    [(8, 1, True), (9, 1, True), (7, 1, True)],           # 3: the most removed false positives (3)
    [(30, 0, True)],                                      # 4: the only removed true segment
    [(40, 1, True), (40, 1, True), (4, 1, False)],        # 5: 2 removed false positives, more pixels than 1's
    [(3, 1, False)],                                      # 6: one false positive kept, nothing else
]


def choose(count, frames=FRAMES):
    sizes = [np.array([s for s, _, _ in f], dtype=np.int64) for f in frames]
    iou0 = [np.array([fp for _, fp, _ in f], dtype=np.int64) for f in frames]
    removed = [np.array([r for _, _, r in f], dtype=bool) for f in frames]
    return frames_to_show(sizes, iou0, removed, count)


def test_frames_take_turns_largest_true_segment_removed_false_positives_removed_true_segments():
    # turn 1: largest true segment -> 2; turn 2: most removed false positives -> 3 (3 of them); turn 3: removed
    # true segments -> 4; turn 4: largest true segment left -> 1 (50 px; 4's 30 px is taken); turn 5: removed
    # false positives left -> 5; turn 6: no removed true segment left, and no frame left with a true segment or
    # a removed false positive, so the rest by segment pixels: 6 (3 px), then 0
    assert choose(7) == [2, 3, 4, 1, 5, 6, 0]
    assert choose(3) == [2, 3, 4]
    assert choose(100) == [2, 3, 4, 1, 5, 6, 0]
    assert choose(0) == []


def test_a_criterion_without_frames_passes_its_turn_and_ties_go_to_more_removed_pixels_then_the_earlier_frame():
    frames = [[(5, 1, True)], [(5, 1, True), (1, 0, False)], [(9, 1, True)], []]
    # no removed true segment anywhere; turn 1: the largest true segment (1 px) is frame 1's; turn 2: removed false
    # positives, one each in 0 and 2: 2 has more pixels; turn 3 passes to turn 1's criterion: none left, so on to
    # removed false positives: 0; then the empty frame
    assert choose(4, frames) == [1, 2, 0, 3]


def test_overlay_paints_each_outcome_in_its_colour_and_draws_the_legend(tmp_path):
    height, width = 40, 80
    image = np.full((height, width, 3), 90, dtype=np.uint8)
    label = np.zeros((height, width), dtype=np.uint8)
    label[5:15, 5:15] = 1
    label[30:, :] = 255
    segments = np.zeros((height, width), dtype=np.int32)
    boxes = [(4, 14, 4, 14), (20, 25, 30, 40), (5, 10, 50, 60), (20, 28, 60, 70)]
    for k, (r0, r1, c0, c1) in enumerate(boxes, start=1):
        segments[r0:r1, c0:c1] = k
    entropy = np.linspace(0, 1, height * width, dtype=np.float32).reshape(height, width)
    path = tmp_path / "overlay.png"
    save_overlay(image, label, entropy, segments, [False, False, True, True], [False, True, False, True], 0.7,
                 str(path), "frame 00000")
    with Image.open(path) as file:
        picture = np.asarray(file.convert("RGB")).astype(np.int64)
    assert picture.shape[1] >= 900  # readable: the four panels are each about 500 px wide
    # each outcome's colour, as painted (a quarter image grey, three quarters colour), appears in the figure
    for _, colour in OUTCOMES:
        painted = np.round(0.25 * 90 + 0.75 * np.array(colour)).astype(np.int64)
        assert (np.abs(picture - painted).max(axis=-1) <= 2).sum() > 100, colour

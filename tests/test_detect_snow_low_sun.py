"""Snow, low sun: a dark car on snow counts by the shadow it casts beside it.

On a snow-covered yard a grey car without snow on it is "a darker copy" of the snow by
colour, which a shadow over empty track also is, and its rails are hidden either way.
What tells it from shade is the ground beside it: its own shadow darkens the shoulder on
the shadow side while the sun-side shoulder stays lit (a shadow reaching the bed from a
neighbour would cross that shoulder first). Where snow covers the ground between the
tracks the shoulders show that as on bare ground.
"""

import numpy as np

from detect_fixtures import make_grid, render, straight_line, train
from railwatch.detect import analyse_scene
from railwatch.site import Site
from railwatch.tracks import tracks_from_lines

TRACKS_Y = (10.0, 15.3, 20.6, 25.9)

# Shade on snow is lit by the blue sky alone: darker, and bluer than the snow (R, G, B).
SKY_TINT = np.array([0.55, 0.62, 0.75])

# Grey cars without snow on them on T1 (two thirds of the snow's brightness, neutral);
# a train of snow-roofed cars on T3.
GREY = 0.6
DARK = train(0, 25, [14.0] * 5, colours=["black"] * 5)
CLEAR = train(2, 30, [14.5] * 5, colours=["blue", "red", "rust", "green", "red"])


def _body_mask(grid, y_m, cars):
    """Pixels whose centre lies on a car body of the straight track at ``y_m``."""
    minx, miny, _, maxy = grid.bounds
    res = grid.resolution_m
    xs = (np.arange(grid.width) + 0.5) * res + 5.0  # along the line (starts 5 m out)
    ys = maxy - (np.arange(grid.height) + 0.5) * res - miny
    along = np.zeros(grid.width, bool)
    for c in cars:
        along |= (xs >= c.s0_m + 0.3) & (xs <= c.s1_m - 0.3)
    return (np.abs(ys - y_m) < 1.6)[:, None] & along[None, :]


def _snowy_yard(dark, *, shadow_m, **sun):
    """Four snow-covered tracks 5.3 m apart at 0.5 m pixels (``sun``: for analyse_scene)."""
    g = make_grid(260, 76)
    lines = [straight_line(g, y) for y in TRACKS_Y]
    cars = dark + CLEAR
    sc = render(g, lines, cars, seed=5, snow=True, shadow_m=shadow_m)
    lit = render(g, lines, cars, seed=5, snow=True, shadow_m=(0.0, 0.0)).data
    body = _body_mask(g, TRACKS_Y[0], dark)
    shade = (sc.data.mean(axis=0) < 0.75 * lit.mean(axis=0)) & ~body
    grey = GREY + np.random.default_rng(3).normal(0.0, 0.012, lit.shape)
    lit = np.where(body[None], grey, lit)
    sc.data = np.where(shade[None], lit * SKY_TINT[:, None, None], lit).astype(np.float32)
    tracks = tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(lines)])
    site = Site(name="test", aoi=sc.aoi)
    return analyse_scene(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi, site, **sun)


def test_grey_cars_on_snow_count_by_their_shadow():
    a = _snowy_yard(DARK, shadow_m=(0.0, -3.0))
    assert a.quality.status == "ok"
    assert a.quality.snow > 0.5
    t1 = [v for v in a.vehicles if v.track_id == "T1" and v.counted]
    assert len(t1) == 5
    assert a.railcars == 10


def test_snowy_yard_without_grey_cars_counts_the_train_only():
    # Guard: the shadow evidence invents nothing beside empty snowy track.
    a = _snowy_yard([], shadow_m=(0.0, -3.0))
    assert a.railcars == 5
    assert not [v for v in a.vehicles if v.track_id != "T3" and v.counted]

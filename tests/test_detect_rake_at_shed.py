"""Dark railcars standing at a shed and running on past it all count (issue 3).

A 45 m shed stands beside track T2, its roof eave over the shoulder on every date. On
some dates its wall, in shade, leans over the bed: a near-black surface along the whole
shed, the same on each of those dates, so the archive learns it as the structure's
colour (``Background.structure``). Coal-laden open wagons are as dark and as neutral.
A rake of them standing at the shed and running on 20 m past both of its ends is
railcars, whatever their paint: every car counts. A wall date counts no car at the shed.
"""

import numpy as np

from detect_fixtures import COLOURS, add_shed, make_grid, render, straight_line, train
from railwatch.detect import analyse_scene, learn_background
from railwatch.site import Site
from railwatch.tracks import tracks_from_lines

TRACKS_Y = (20.0, 25.3)
SHED_X = (60.0, 105.0)
EAVE_Y = 27.0  # roof edge 1.7 m from T2's centre line: over its shoulder
RIDGE_Y = 34.0
ROOF = np.array([0.30, 0.40, 0.62])
WALL = 0.38 * np.array(COLOURS["black"])  # the shaded wall: as dark and neutral as coal

# Per date: whether the shed's wall leans over T2, and the x (m) where a rake of six
# black open wagons on T2 starts (None: no rake). The last date's rake runs from 20 m
# before the shed to 20 m past it.
DATES = (
    (True, None),
    (False, None),
    (True, None),
    (False, None),
    (True, None),
    (False, None),
    (True, None),
    (False, None),
    (False, None),
    (False, 40.0),
)


def _scene(k, wall, rake_x):
    g = make_grid(400, 90)
    lines = [straight_line(g, y) for y in TRACKS_Y]
    paints = ["rust", "blue", "white", "green"]
    cars = train(0, 8.0 + 9.0 * k, [13.92] * (2 + k % 3), colours=paints[: 2 + k % 3])
    if rake_x is not None:
        cars = cars + train(1, rake_x, [13.92] * 6, colours=["black"] * 6, types=["open"] * 6)
    sc = render(g, lines, cars, seed=60 + k, shadow_m=(0.0, -1.3))
    # The shed; its wall face, where shown, leans from the eave over the shoulder and past
    # the centre line.
    add_shed(
        sc,
        x_m=SHED_X,
        eave_y_m=EAVE_Y,
        ridge_y_m=RIDGE_Y,
        roof=ROOF,
        wall=WALL if wall else None,
        wall_from_y_m=TRACKS_Y[1] - 0.6,
        seed=300 + k,
    )
    sc.data *= np.float32(0.9 + 0.03 * (k % 4))
    return sc, lines, cars


def test_dark_rake_running_past_a_shed_counts_every_car():
    scenes = [_scene(k, wall, rake) for k, (wall, rake) in enumerate(DATES)]
    tracks = tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(scenes[0][1])])
    bg = learn_background(
        [(s.data, s.bands, s.valid) for s, _, _ in scenes], scenes[0][0].grid, tracks
    )
    # The premise: the wall dates taught the archive a structure of the wagons' colour.
    assert "T2" in bg.structure and np.isfinite(bg.structure["T2"][0]).any()
    site = Site(name="test", aoi=scenes[0][0].aoi)
    got, want = [], []
    for sc, _, cars in scenes:
        a = analyse_scene(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi, site, background=bg)
        assert a.quality.status == "ok"
        got.append([sum(v.counted for v in a.vehicles if v.track_id == t) for t in ("T1", "T2")])
        want.append([len([c for c in cars if c.track == i]) for i in (0, 1)])
    assert got == want

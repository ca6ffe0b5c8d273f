"""A shed's wall leaning over the track is no railcar, whatever light it is in (issue 3).

A 45 m building stands beside track T2, its roof eave over the shoulder on every date.
In some off-nadir views its wall face leans over the bed from the shed's side: one dark
surface from the shoulder to past the centre line, lit differently on each date (so no
one recurring colour marks it over the archive). On other dates cars of changing paints
stand at the shed. The wall dates count no car at the shed; the car dates count theirs.
"""

import numpy as np

from detect_fixtures import add_shed, make_grid, render, straight_line, train
from railwatch.detect import analyse_scene, learn_background
from railwatch.site import Site
from railwatch.tracks import tracks_from_lines

TRACKS_Y = (20.0, 25.3)
SHED_X = (60.0, 105.0)
EAVE_Y = 27.0  # roof edge 1.7 m from T2's centre line: over its shoulder
RIDGE_Y = 34.0
ROOF = np.array([0.30, 0.40, 0.62])
WALL = np.array([0.10, 0.16, 0.36])

# Per date: brightness of the leaning wall (None: the wall does not show), and the
# paints of a rake of two cars standing at the shed (None: none).
DATES = (
    (1.0, None),
    (None, ["red", "white"]),
    (0.6, None),
    (None, ["green", "rust"]),
    (1.5, None),
    (None, ["white", "blue"]),
    (None, None),
    (None, None),
    (None, None),
    (None, None),
)


def _scene(k, wall, rake):
    g = make_grid(400, 90)
    lines = [straight_line(g, y) for y in TRACKS_Y]
    paints = ["rust", "blue", "black", "green"]
    cars = train(0, 8.0 + 9.0 * k, [13.92] * (2 + k % 3), colours=paints[: 2 + k % 3])
    if rake is not None:
        cars = cars + train(1, 66.0, [15.35] * 2, colours=rake)
    sc = render(g, lines, cars, seed=30 + k, shadow_m=(0.0, -1.3))
    # The shed; its wall face, where shown, leans from the eave over the shoulder and past
    # the centre line.
    add_shed(
        sc,
        x_m=SHED_X,
        eave_y_m=EAVE_Y,
        ridge_y_m=RIDGE_Y,
        roof=ROOF,
        wall=wall * WALL if wall is not None else None,
        wall_from_y_m=TRACKS_Y[1] - 0.6,
        seed=200 + k,
    )
    sc.data *= np.float32(0.9 + 0.03 * (k % 4))
    return sc, lines, cars


def test_leaning_wall_in_any_light_is_no_railcar_and_cars_at_the_shed_count():
    scenes = [_scene(k, wall, rake) for k, (wall, rake) in enumerate(DATES)]
    tracks = tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(scenes[0][1])])
    bg = learn_background(
        [(s.data, s.bands, s.valid) for s, _, _ in scenes], scenes[0][0].grid, tracks
    )
    site = Site(name="test", aoi=scenes[0][0].aoi)
    got, want = [], []
    for sc, _, cars in scenes:
        a = analyse_scene(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi, site, background=bg)
        assert a.quality.status == "ok"
        got.append([sum(v.counted for v in a.vehicles if v.track_id == t) for t in ("T1", "T2")])
        want.append([len([c for c in cars if c.track == i]) for i in (0, 1)])
    assert got == want


def test_no_building_where_another_track_runs_in_the_shoulder():
    # A turnout: the diverging track leaves T1 at x = 50 m and is 5 m away by x = 100 m.
    # Near the frog its cars cover T1's shoulder on busy dates; that is no building.
    from shapely.geometry import LineString

    from railwatch.detect import _converging, _structure_side
    from railwatch.tracks import Track

    t1 = Track("T1", LineString([(0.0, 0.0), (200.0, 0.0)]))
    t2 = Track("T2", LineString([(50.0, 0.0), (100.0, 5.0), (200.0, 5.0)]))
    near = _converging([t1, t2], {"T1": 800})["T1"]
    x = (np.arange(800) + 0.5) * 0.25
    # within 2.4 + 1.35 m of the diverging centre line: x < 50 + 50 * 3.75 / 5
    assert near[(x > 52) & (x < 85)].all()
    assert not near[(x < 45) | (x > 92)].any()
    # A building on the left on 8 of 10 dates is one; on 6 of 10 it is not.
    f = np.zeros((10, 2, 800), np.float32)
    f[:8, 0, 100:300] = 1.0
    f[:6, 1, 500:700] = 1.0
    side = _structure_side(f, 40)
    assert (side[100:300] == 1).all() and not side[:100].any() and not side[300:].any()

"""Where tracks converge they share rails: a ladder keeps its line, a car counts once.

Two geometries of a yard throat. A ladder runs at 1:4 across the ends of parallel yard
tracks that leave it: its median profile holds their rails and ballast on one side only,
which must not pull it off its own rails when the surveyed lines are re-centred on the
image. A spur leaves a running track at 1:6: for its first metres both centre lines lie
on the same rails, and a car standing there is seen from both; it is still one car.
"""

import numpy as np
from shapely import hausdorff_distance
from shapely.geometry import LineString

from detect_fixtures import Car, _line_coords, make_grid, render, straight_line
from railwatch.align import centre_tracks
from railwatch.detect import analyse_scene
from railwatch.site import Site
from railwatch.tracks import tracks_from_lines

SPACING_M = 5.3


def _ladder_yard():
    """Gray image of a yard throat: a running line, a 1:4 ladder, three yard tracks.

    As in the sample yard: ballast beds (3.5 m) brighter than the ground, dark rails
    1.56 m apart; the ladder leaves the running line and each yard track starts on it.
    """
    g = make_grid(300, 120)
    minx, miny, maxx, maxy = g.bounds
    y0, x0 = 10.0, 20.0
    main = LineString([(minx - 5.0, miny + y0), (maxx + 5.0, miny + y0)])
    ladder = LineString(
        [
            (minx + x0, miny + y0),
            (minx + x0 + 12 * SPACING_M, miny + y0 + 3 * SPACING_M),
        ]
    )
    yard = [
        LineString([(minx + x0 + 4 * k * SPACING_M, miny + y), (maxx + 5.0, miny + y)])
        for k in range(1, 4)
        for y in [y0 + k * SPACING_M]
    ]
    lines = [main, ladder, *yard]
    ss = 4
    xs = minx + (np.arange(g.width * ss) + 0.5) * g.resolution_m / ss
    ys = maxy - (np.arange(g.height * ss) + 0.5) * g.resolution_m / ss
    px, py = np.meshgrid(xs, ys)
    img = np.full(px.shape, 0.22)
    across = [_line_coords(ln, px, py)[0] for ln in lines]
    for u in across:
        img[np.abs(u) < 1.75] = 0.37
    for u in across:
        img[np.abs(np.abs(u) - 0.78) < 0.08] = 0.12
    gray = img.reshape(g.height, ss, g.width, ss).mean(axis=(1, 3)).astype(np.float32)
    return g, lines, gray


def test_ladder_is_not_pulled_onto_its_yard_tracks():
    g, lines, gray = _ladder_yard()
    tracks = tracks_from_lines([(f"T{i}", ln) for i, ln in enumerate(lines)])
    moved = centre_tracks(gray, np.ones(gray.shape, bool), g, tracks)
    for before, after in zip(tracks, moved, strict=True):
        assert hausdorff_distance(before.line, after.line) < 0.3, before.track_id


def _turnout_scene(cars):
    g = make_grid(320, 110)
    main = straight_line(g, 20.0)
    minx, miny, maxx, _ = g.bounds
    # The spur leaves the main line 45 m from its start (40 m into the grid) at 1:6.
    branch_x = minx + 40.0
    spur = LineString(
        [
            (branch_x, miny + 20.0),
            (maxx + 5.0, miny + 20.0 + (maxx + 5.0 - branch_x) / 6),
        ]
    )
    sc = render(g, [main, spur], cars, seed=5, shadow_m=(0.0, -1.3))
    tracks = tracks_from_lines([("T1", main), ("S1", spur)])
    return sc, tracks


def test_car_at_a_turnout_counts_once():
    cars = [
        Car(0, 44.0, 13.3, "covered", "rust"),  # on the main line over the branch
        Car(0, 110.0, 13.3, "covered", "blue"),  # on the main line, tracks apart
        Car(1, 75.0, 13.3, "covered", "green"),  # on the spur, 12 m off the main line
    ]
    sc, tracks = _turnout_scene(cars)
    site = Site(name="test", aoi=sc.aoi)
    a = analyse_scene(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi, site)
    assert a.quality.status == "ok"
    assert a.railcars == 3, [(v.track_id, v.polygon.centroid.coords[0]) for v in a.vehicles]


def test_empty_turnout_counts_nothing():
    sc, tracks = _turnout_scene([])
    site = Site(name="test", aoi=sc.aoi)
    a = analyse_scene(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi, site)
    assert a.railcars == 0

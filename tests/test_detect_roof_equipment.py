"""Dark roof equipment is no coupling gap (issue 3: locomotives split into two cars).

A locomotive's roof carries fans, hatches and exhausts: dark patches across the middle
of a bright roof. In the mean colour of the body zone each is as strong a break as the
ballast between two coupled bodies, so every boundary along the locomotive earned the
full bonus of a coupling gap, and the length priors then tiled the run with the shortest
type. With the locomotive's shadow reaching a few metres past its end along the track
(the sun ahead of it, a 5 m tall body), an open car and a locomotive (about 36 m with the
shadow) read as three tank cars. A coupling gap breaks the whole width of the body, its
sides included; roof equipment leaves the sides running on.
"""

from __future__ import annotations

import numpy as np

from detect_fixtures import Car, make_grid, render, straight_line, train
from railwatch.detect import _gap_evidence, _width_gap_evidence, analyse_scene
from railwatch.site import Site
from railwatch.tracks import tracks_from_lines

FANS = ((3.75, 2.4), (7.55, 2.0), (11.25, 1.8))
"""Three roof fans / radiators of an 18 m locomotive: (start m from its body's end,
length m)."""

SHADOW_M = (3.5, -2.5)
"""Sun behind and to the side of the train: shadows reach 3.5 m along the track."""


def _locomotive(track: int, start_m: float) -> Car:
    """A white 18 m locomotive (over couplers) from ``start_m`` with its roof fans."""
    return Car(track, start_m + 0.3, 17.6, "locomotive", "white", FANS)


def _counted(cars: list[Car]) -> list[tuple[float, float, str]]:
    """Counted vehicles (start m, length m, type) on the first of two straight tracks."""
    grid = make_grid(240, 100)
    lines = [straight_line(grid, y) for y in (22.0, 27.3)]
    scene = render(grid, lines, cars, shadow_m=SHADOW_M)
    tracks = tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(lines)])
    site = Site(name="test", aoi=scene.aoi)
    a = analyse_scene(scene.data, scene.bands, scene.valid, scene.grid, tracks, scene.aoi, site)
    x0 = grid.bounds[0] - 5.0
    return sorted(
        (round(v.polygon.bounds[0] - x0, 1), v.length_m, v.type)
        for v in a.vehicles
        if v.counted and v.track_id == "T1"
    )


def test_open_car_and_locomotive_are_two_vehicles_not_three_tank_cars():
    cars = train(0, 20.0, [13.92], types=["open"], colours=["rust"]) + [_locomotive(0, 33.92)]
    got = _counted(cars)
    assert len(got) == 2
    (s_open, _, _), (s_loco, l_loco, _) = got
    assert abs(s_open - 20.3) <= 1.0
    # The locomotive's body from 34.2 m to 51.8 m, its shadow not counted as body.
    assert abs(s_loco - 34.2) <= 1.5
    assert 16.0 <= l_loco <= 19.5


def test_two_open_cars_and_a_locomotive_are_three_vehicles():
    cars = train(0, 20.0, [13.92, 13.92], types=["open"] * 2, colours=["rust", "green"])
    got = _counted([*cars, _locomotive(0, 47.84)])
    assert len(got) == 3
    assert 16.0 <= got[-1][1] <= 19.5


def test_roof_patch_blurred_into_the_edges_gives_no_gap():
    """The pixels carry a little of a dark roof patch into the roof's edges."""
    n, step = 160, 0.25
    core = np.full((3, n), 40.0)  # noise units
    core[:, 70:80] = 5.0  # a 2.5 m fan on the middle of the roof
    edge = np.full((3, n), 40.0)
    edge[:, 70:80] = 32.0  # its blur at the edges: 8 noise units, 0.23 of the middle's
    body = 0.4 * core + 0.6 * edge
    assert _gap_evidence(edge, step)[70:81].max() >= 15.0  # the edges alone: a "gap"
    got = _width_gap_evidence(body, core, (edge, edge.copy()), step)
    assert got[70:81].max() < 1.0
    # A gap across the width at the same place keeps its bonus.
    gap = np.full((3, n), 40.0)
    gap[:, 70:80] = 5.0
    full = _width_gap_evidence(gap, gap, (gap, gap.copy()), step)
    assert np.array_equal(full, _gap_evidence(gap, step))

"""A shed beside a track leans over it in off-nadir views: its roof is no railcar.

A 7 m building stands 3.2 m beside the track. In each view its roof is displaced across
by height x tan(view angle), differently per date, so it covers the shoulder on most
dates and part of the bed on some; its wall shows beside it. Over the stack the detector
must learn that the structure is there and not count the roof, while a car of another
colour standing at the shed on a date the roof leans away still counts.
"""

import numpy as np

from detect_fixtures import Car, make_grid, render, straight_line, train
from railwatch.detect import analyse_scene, learn_background
from railwatch.site import Site
from railwatch.tracks import tracks_from_lines

TRACKS_Y = (20.0, 25.3)
SHED_X = (60.0, 105.0)
SHED_Y = (28.5, 36.0)
ROOF = np.array([0.55, 0.38, 0.32])
WALL = 0.55 * ROOF

# Across displacement of the roof towards the track per date (m); negative: away.
LEANS = (4.5, -1.0, 5.0, 1.0, 4.4, 1.2, 4.8, 1.5, 4.9, 2.0)

# A red car beside the shed on date 1, when the roof leans away.
AT_SHED = Car(1, 70.0, 15.35, "covered", "red")

PLATFORM_PAINTS = ["white", "red", "green", "blue", "black"]


def _scene(k, lean_m, platform=False):
    g = make_grid(400, 90)
    lines = [straight_line(g, y) for y in TRACKS_Y]
    paints = ["rust", "blue", "black", "green"]
    cars = train(0, 8.0 + 9.0 * k, [13.92] * (2 + k % 3), colours=paints[: 2 + k % 3])
    if k == 1 and not platform:
        cars = cars + [AT_SHED]
    if platform and k % 2 == 0:
        # a rake standing at the platform every other date, in changing paints
        order = PLATFORM_PAINTS[k // 2 :] + PLATFORM_PAINTS[: k // 2]
        cars = cars + train(1, 50.0, [15.35] * 3, colours=order[:3])
    sc = render(g, lines, cars, seed=10 + k, shadow_m=(0.0, -1.3))
    minx, miny, maxx, maxy = g.bounds
    xs = minx + (np.arange(g.width) + 0.5) * g.resolution_m - minx
    ys = maxy - (np.arange(g.height) + 0.5) * g.resolution_m - miny
    px, py = np.meshgrid(xs, ys)
    along = (px >= SHED_X[0]) & (px <= SHED_X[1])
    if platform:
        # a concrete platform edge on the shoulder, the same on every date
        edge = along & (py >= TRACKS_Y[1] + 1.9) & (py <= TRACKS_Y[1] + 4.0)
        sc.data[:, edge] = np.float32(0.66)
        sc.data *= np.float32(0.9 + 0.03 * (k % 4))
        return sc, lines, cars
    roof = along & (py >= SHED_Y[0] - lean_m) & (py <= SHED_Y[1] - lean_m)
    wall = along & (py >= SHED_Y[1] - lean_m) & (py <= SHED_Y[1]) if lean_m > 0 else along & False
    # Gable roof: two pitches lit differently, corrugated sheets, a little noise.
    rng = np.random.default_rng(100 + k)
    ridge = py >= 0.5 * (SHED_Y[0] + SHED_Y[1]) - lean_m
    tone = np.where(ridge, 1.08, 0.92) * (1 + 0.04 * np.sin(px * 2 * np.pi / 1.5))
    tone = tone * (1 + 0.02 * rng.standard_normal(px.shape))
    sc.data[:, wall] = WALL[:, None] * tone[wall]
    sc.data[:, roof] = ROOF[:, None] * tone[roof]
    sc.data *= np.float32(0.9 + 0.03 * (k % 4))
    return sc, lines, cars


def _analyse(platform=False):
    scenes = [_scene(k, lean, platform) for k, lean in enumerate(LEANS)]
    tracks = tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(scenes[0][1])])
    bg = learn_background(
        [(s.data, s.bands, s.valid) for s, _, _ in scenes], scenes[0][0].grid, tracks
    )
    site = Site(name="test", aoi=scenes[0][0].aoi)
    out = []
    for sc, _, cars in scenes:
        a = analyse_scene(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi, site, background=bg)
        out.append((a, cars))
    return out, scenes[0][0].grid.bounds[0]


def test_leaning_shed_roof_is_no_railcar_and_a_car_at_it_counts():
    out, x0 = _analyse()
    for k, (a, cars) in enumerate(out):
        assert a.quality.status == "ok"
        t2 = [v for v in a.vehicles if v.track_id == "T2" and v.counted]
        if k == 1:
            # the red car at the shed, at its place
            assert len(t2) == 1
            c = t2[0].polygon.centroid.x - (x0 - 5.0)  # lines start 5 m before the grid
            assert abs(c - (AT_SHED.s0_m + AT_SHED.length_m / 2)) < 3.0
        else:
            assert t2 == [], (k, [v.polygon.bounds for v in t2])
        # T1 cars unaffected
        assert sum(v.counted for v in a.vehicles if v.track_id == "T1") == len(
            [c for c in cars if c.track == 0]
        )


def test_cars_at_a_platform_on_many_dates_still_count():
    # A permanent foreign shoulder (platform) with cars on half the dates, each date in
    # other paints: railcars move and change colour, no structure is learned.
    out, _ = _analyse(platform=True)
    for k, (a, cars) in enumerate(out):
        assert a.quality.status == "ok"
        assert a.railcars == len(cars), k

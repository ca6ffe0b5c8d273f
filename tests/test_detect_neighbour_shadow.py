"""Snow scenes: the shadow of a train over the next track is no vehicle; a car in it is."""

import numpy as np

from detect_fixtures import Car, make_grid, render, straight_line, train
from railwatch.detect import analyse_scene
from railwatch.site import Site
from railwatch.tracks import tracks_from_lines

SNOW_TRACKS_Y = (10.0, 15.0, 20.0, 25.0)

# Shade on snow is lit by the blue sky alone: darker, and bluer than the snow (R, G, B).
SKY_TINT = np.array([0.40, 0.47, 0.62])


def _snowy_yard(cars, *, shadow_m):
    """Four snowy tracks 5 m apart at 0.5 m pixels; low sun when the shadow is long."""
    g = make_grid(260, 70)
    lines = [straight_line(g, y) for y in SNOW_TRACKS_Y]
    sc = render(g, lines, cars, seed=5, snow=True, shadow_m=shadow_m)
    # The fixture's shadows are grey; tint them as on snow (same noise, same cars).
    lit = render(g, lines, cars, seed=5, snow=True, shadow_m=(0.0, 0.0)).data
    shade = sc.data.mean(axis=0) < 0.75 * lit.mean(axis=0)
    sc.data = np.where(shade[None], lit * SKY_TINT[:, None, None], lit).astype(np.float32)
    tracks = tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(lines)])
    site = Site(name="test", aoi=sc.aoi)
    a = analyse_scene(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi, site)
    return a, g.bounds[0] - 5.0


# Trains on T2 and T4; with a low sun their shadows cover the beds of T1 and T3.
CASTERS = train(1, 20, [13.92] * 6, colours=["rust", "blue", "red", "black", "green", "rust"])
CASTERS += train(3, 35, [15.35] * 5, colours=["blue", "red", "rust", "green", "black"])


def test_neighbour_shadow_on_snow_is_no_train():
    # The sun low enough for the trains' shadows (5 m to -y) to cover the next bed.
    a, _ = _snowy_yard(CASTERS, shadow_m=(0.0, -5.0))
    assert a.quality.status == "ok"
    shaded = [v for v in a.vehicles if v.track_id in ("T1", "T3") and v.counted]
    assert not shaded
    assert a.railcars == 11


def test_car_in_a_neighbour_shadow_keeps_counting():
    # A red car on T1 in the shadow of the T2 train: its own colour, not a shaded bed.
    a, s0 = _snowy_yard(CASTERS + [Car(0, 50.0, 13.5, "covered", "red")], shadow_m=(0.0, -5.0))
    t1 = [v for v in a.vehicles if v.track_id == "T1" and v.counted]
    assert len(t1) == 1
    assert 52.0 < t1[0].polygon.centroid.x - s0 < 62.0  # the car spans 50.3-63.2 m
    assert a.railcars == 12


def test_short_shadows_leave_a_snowy_yard_alone():
    # A high sun: shadows stay beside their own track, every car counts and no more.
    a, _ = _snowy_yard(CASTERS, shadow_m=(0.0, -1.8))
    assert a.railcars == 11
    assert not [v for v in a.vehicles if v.track_id in ("T1", "T3") and v.counted]

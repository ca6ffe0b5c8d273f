"""Bare ground, low sun: the shadow of a train over the next track is no vehicle.

With the sun low a body's shadow crosses the ground between the tracks and covers the
whole bed of the neighbour on its shadow side; in that shade (sky light, bluer and dim)
the rails keep only part of their contrast. The detector must read it as shaded empty
track, while a car standing in it, and every car when the sun is high, still count.
"""

import numpy as np
from scipy import ndimage as ndi

from detect_fixtures import Car, make_grid, render, straight_line
from railwatch.detect import analyse_scene
from railwatch.site import Site
from railwatch.tracks import tracks_from_lines

# Trains on T2 and T4: the same casters as on snow, now over bare ground.
from test_detect_neighbour_shadow import CASTERS

TRACKS_Y = (10.0, 15.3, 20.6, 25.9)

# Shade is lit by the sky alone: dim and bluer than sunlit ground (R, G, B).
SKY_SHADE = np.array([0.50, 0.53, 0.64])

# Share of the rails' contrast the shade loses (no sun glinting on the rail heads).
RAIL_FADE = 0.5


def _yard(cars, *, shadow_m):
    """Four tracks 5.3 m apart on bare ground at 0.5 m pixels."""
    g = make_grid(260, 76)
    lines = [straight_line(g, y) for y in TRACKS_Y]
    sc = render(g, lines, cars, seed=5, shadow_m=(0.0, 0.0))
    lit = sc.data
    # A body's shadow sweeps from under its side (raised on its bogies) to its full
    # reach: the union of the footprint moved by part of the sun offset.
    shade = np.zeros(g.shape, bool)
    for f in np.linspace(0.3, 1.0, 5):
        moved = render(g, lines, cars, seed=5, shadow_m=(f * shadow_m[0], f * shadow_m[1]))
        shade |= moved.data.mean(axis=0) < 0.75 * lit.mean(axis=0)
    soft = (1.0 - RAIL_FADE) * lit + RAIL_FADE * ndi.uniform_filter(lit, size=(1, 3, 3))
    sc.data = np.where(shade[None], soft * SKY_SHADE[:, None, None], lit).astype(np.float32)
    tracks = tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(lines)])
    site = Site(name="test", aoi=sc.aoi)
    a = analyse_scene(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi, site)
    return a, g.bounds[0] - 5.0


def test_neighbour_shadow_on_bare_ground_is_no_train():
    a, _ = _yard(CASTERS, shadow_m=(0.0, -5.3))
    assert a.quality.status == "ok"
    assert not [v for v in a.vehicles if v.track_id in ("T1", "T3") and v.counted]
    assert a.railcars == 11


def test_car_in_a_neighbour_shadow_on_bare_ground_counts():
    a, s0 = _yard(CASTERS + [Car(0, 50.0, 13.5, "covered", "red")], shadow_m=(0.0, -5.3))
    t1 = [v for v in a.vehicles if v.track_id == "T1" and v.counted]
    assert len(t1) == 1
    assert 52.0 < t1[0].polygon.centroid.x - s0 < 62.0
    assert a.railcars == 12


def test_high_sun_on_bare_ground_counts_every_car():
    # Short shadows stay beside their own track: nothing to explain away on T1 / T3.
    a, _ = _yard(CASTERS, shadow_m=(0.0, -1.8))
    assert a.railcars == 11
    assert not [v for v in a.vehicles if v.track_id in ("T1", "T3") and v.counted]

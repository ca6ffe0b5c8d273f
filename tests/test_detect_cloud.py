"""Cloud shadows deeper than the light correction may undo."""

import numpy as np
import pytest

from detect_fixtures import display_encode, make_grid, render, straight_line
from railwatch.detect import analyse_scene
from railwatch.site import Site
from railwatch.tracks import tracks_from_lines


def _shaded_yard(factor, cars=(), x1_m=110.0):
    """Five tracks, the yard west of ``x1_m`` under a cloud shadow, 8-bit encoded (no haze)."""
    from scipy import ndimage as ndi

    g = make_grid(300, 100)
    lines = [straight_line(g, 15.0 + 4.6 * t) for t in range(5)]
    sc = render(g, lines, list(cars), seed=0)
    tracks = tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(lines)])
    light = np.ones(g.shape)
    light[:, : int(x1_m / g.resolution_m)] = factor
    sc.data = (sc.data * ndi.gaussian_filter(light, 4.0 / g.resolution_m)[None]).astype(np.float32)
    display_encode(sc)
    return sc, tracks


def test_cloud_shade_weight_counts_only_the_correction_made():
    from railwatch.detect import ILLUM_SHADE_FLOOR, _cloud_shade_weight

    cap = 1.0 / ILLUM_SHADE_FLOOR
    gain = np.array([[1.0, 1.15, 2.0, cap, cap, cap]] * 3)
    need = np.array([[1.0, 1.15, 2.0, cap, 2 * cap - 1.0, 1e6]] * 3)
    alone = _cloud_shade_weight(gain)
    assert alone == pytest.approx([0.0, 0.5, 1.0, 1.0, 1.0, 1.0])
    # Where the correction was complete the weight is unchanged; where the gain stopped
    # at the floor it is the share of the needed correction made.
    w = _cloud_shade_weight(gain, need)
    assert w[:4] == pytest.approx(alone[:4])
    assert w[4] == pytest.approx(0.5)
    assert w[5] == pytest.approx(0.0, abs=1e-5)


def test_light_stops_at_the_shade_floor_and_keeps_the_need():
    from railwatch.detect import ILLUM_SHADE_FLOOR, ILLUM_TOLERANCE, _illumination, _light
    from railwatch.quality import observe_tracks

    sc, tracks = _shaded_yard(0.08)
    obs = observe_tracks(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi)
    light = _light(obs)
    for (dark, gain, need), (dark2, gain2) in zip(light, _illumination(obs), strict=True):
        assert np.array_equal(dark, dark2) and np.array_equal(gain, gain2)
        assert gain.max() <= 1.0 / ILLUM_SHADE_FLOOR + 1e-9
        assert np.all(need >= gain - 1e-9)
    s = obs[0].frame.s_m
    _, gain, need = light[0]
    # Deep in a shadow darker than the floor the light asks for more than the floor
    # allows; in the sun nothing is needed.
    assert np.median(need[:, s < 90], axis=1).min() > 1.0 / ILLUM_SHADE_FLOOR
    assert np.allclose(gain[:, s > 125], 1.0)
    assert need[:, s > 125].max() < ILLUM_TOLERANCE


def test_empty_yard_under_a_deep_cloud_shadow_has_no_vehicles():
    sc, tracks = _shaded_yard(0.42)
    a = analyse_scene(
        sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi, Site(name="test", aoi=sc.aoi)
    )
    assert a.quality.status == "ok"
    assert a.railcars == 0

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


def _veiled_yard(rim, *, seed=4):
    """Five empty tracks, a cloud over the western 15 m and its thin rim reaching 110 m.

    The rim's opacity falls from ``rim`` to 0 over 15-110 m. Returns the scene, the
    tracks, the cloud's opacity (H, W) and a background learned from four clear, empty
    scenes of the same yard.
    """
    from scipy import ndimage as ndi

    from railwatch.detect import learn_background

    g = make_grid(300, 100)
    lines = [straight_line(g, 15.0 + 4.6 * t) for t in range(5)]
    tracks = tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(lines)])
    clear = [render(g, lines, [], seed=k) for k in range(4)]
    bg = learn_background([(s.data, s.bands, s.valid) for s in clear], g, tracks)
    sc = render(g, lines, [], seed=seed)
    x_m = (np.arange(g.width) + 0.5) * g.resolution_m
    alpha = np.where(x_m < 15.0, 0.97, rim * np.clip((110.0 - x_m) / 95.0, 0.0, 1.0))
    # A cloud's rim fades over metres: semi-transparent, it adds its own (white, flat)
    # light and passes the rest of the ground's, rails still showing through.
    alpha = ndi.gaussian_filter1d(alpha, 2.0 / g.resolution_m)[None] * np.ones((g.height, 1))
    sc.data = (sc.data * (1 - alpha) + 0.88 * alpha).astype(np.float32)
    return sc, tracks, alpha, bg


def test_thin_cloud_that_keeps_the_rails_is_not_observed():
    from railwatch.quality import observe_tracks

    sc, tracks, alpha, bg = _veiled_yard(0.6)
    obs = observe_tracks(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi, background=bg)
    hidden, under = 0, 0
    for o in obs:
        col, row = (np.floor(v).astype(int) for v in ~sc.grid.transform @ (o.frame.x, o.frame.y))
        on = (row >= 0) & (row < alpha.shape[0]) & (col >= 0) & (col < alpha.shape[1])
        veil = np.zeros(row.shape)
        veil[on] = alpha[row[on], col[on]]
        thick = o.inside & (veil >= 0.35) & (veil < 0.9)
        hidden += int(o.cloud[thick].sum())
        under += int(thick.sum())
        # The clear part of the yard (from 125 m east, the rim's end plus the cloud
        # edge's margin) is seen.
        clear = o.inside & (o.frame.s_m > 125.0)
        assert clear.sum() > 50 and not o.cloud[clear].any()
    # Under a veil hiding over a third of the ground's light (nearly) nothing is seen.
    assert under > 500 and hidden >= 0.85 * under


def test_uniform_haze_is_not_thin_cloud():
    from railwatch.quality import CLOUD_EDGE_M, observe_tracks

    sc, tracks, _, bg = _veiled_yard(0.0)
    sc.data = (sc.data * 0.8 + 0.88 * 0.2).astype(np.float32)
    obs = observe_tracks(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi, background=bg)
    # Only the cloud itself (15 m, its edge blurred over a few metres) and its margin
    # are hidden, not the hazy yard.
    beyond = 15.0 + CLOUD_EDGE_M + 10.0
    assert all(o.cloud[o.inside & (o.frame.s_m < 10.0)].all() for o in obs)
    assert not any(o.cloud[o.frame.s_m > beyond].any() for o in obs)

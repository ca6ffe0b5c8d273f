"""The dark level under a cloud shadow, located from empty track in sun and in shade."""

import numpy as np
import pytest

from detect_fixtures import train
from test_detect_cloud import _shaded_yard


def _stations(dark_level, share, *, rails=0.9, n=200, seed=0):
    """Sampled stations of empty track, half in sun and half in a shade ``share``."""
    rng = np.random.default_rng(seed)
    light_sun, bed_sun, grain_sun = 0.60, 0.52, 0.02
    lit = np.r_[np.ones(n), np.full(n, share)]
    jitter = 1.0 + 0.01 * rng.standard_normal((3, 2 * n))
    light = dark_level + lit * (light_sun - dark_level) * jitter
    bed = dark_level + lit * (bed_sun - dark_level) * jitter
    grain = lit * grain_sun * (1.0 + 0.05 * rng.standard_normal((3, 2 * n)))
    return bed, grain, light, np.full(2 * n, rails), np.full(3, light_sun)


def test_dark_level_from_empty_track_in_sun_and_shade():
    from railwatch.detect import DARK_OBJECT_SHARE, _dark_from_empty

    true_dark, share = 0.05, 0.45
    bed, grain, light, rails, typical = _stations(true_dark, share)
    shaded_bed = true_dark + share * (0.52 - true_dark)
    # No dark object in view: the darkest percent is the shaded bed's own darker parts.
    pct = np.full(3, true_dark + 0.95 * (shaded_bed - true_dark))
    assert _dark_from_empty(bed, grain, light, rails, pct, typical) == pytest.approx(
        [true_dark] * 3, abs=0.02
    )
    # A dark object (a black car in the shade) is the better measure: kept.
    dark_object = true_dark + 0.5 * DARK_OBJECT_SHARE * (shaded_bed - true_dark)
    pct = np.full(3, dark_object)
    assert np.array_equal(_dark_from_empty(bed, grain, light, rails, pct, typical), pct)


@pytest.mark.parametrize("case", ["no rails", "no shade"])
def test_dark_level_kept_where_empty_track_cannot_locate_it(case):
    from railwatch.detect import _dark_from_empty

    bed, grain, light, rails, typical = _stations(
        0.05, 0.9 if case == "no shade" else 0.45, rails=0.1 if case == "no rails" else 0.9
    )
    pct = np.full(3, 0.3)
    assert np.array_equal(_dark_from_empty(bed, grain, light, rails, pct, typical), pct)


def test_light_of_an_empty_yard_under_a_cloud_shadow_is_undone_in_full():
    from railwatch.detect import ILLUM_SHADE_FLOOR, _light
    from railwatch.quality import observe_tracks

    factor = 0.42
    sc, tracks = _shaded_yard(factor)
    obs = observe_tracks(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi)
    dark, gain, need = _light(obs)[0]
    # Display encoding without haze: a shadow scales the encoded values, the dark level
    # is zero (the darkest percent is the shaded bed, about 0.3).
    assert dark.max() < 0.05
    s = obs[0].frame.s_m
    deep = np.median(need[:, s < 90], axis=1)
    assert deep == pytest.approx([factor ** (-1 / 1.6)] * 3, rel=0.1)
    assert deep.max() < 1.0 / ILLUM_SHADE_FLOOR
    assert np.allclose(np.median(gain[:, s < 90], axis=1), deep)


def test_dark_cars_in_the_shade_keep_the_darkest_percent():
    from railwatch.detect import ILLUM_DARK_PERCENTILE, _light
    from railwatch.quality import observe_tracks

    cars = [
        *train(1, 10.0, [15.0] * 5, colours=["black"] * 5),
        *train(3, 20.0, [15.0] * 4, colours=["black"] * 4),
    ]
    sc, tracks = _shaded_yard(0.42, cars)
    obs = observe_tracks(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi)
    dark = _light(obs)[0][0]
    allv = np.concatenate([o.values.reshape(o.values.shape[0], -1) for o in obs], axis=1)
    # The black cars are darker than the shaded ballast: the darkest percent is theirs
    # and stays the dark level (strips sampled every 2 m in _light: compare loosely).
    pct = np.nanpercentile(allv, ILLUM_DARK_PERCENTILE, axis=1)
    assert dark == pytest.approx(pct, abs=0.03)
    assert dark.min() > 0.1

"""A busy yard in full sun under a low sun is not a cloud shadow (#3)."""

import numpy as np

from detect_fixtures import display_encode, make_grid, render, straight_line, train
from railwatch.tracks import tracks_from_lines

# Shadows fall north, 8 m long: a 4 m body under a sun at 26.6 degrees (November noon).
SHADOW_M = 8.0


def _busy_yard_low_sun():
    """Five tracks 4.6 m apart, six cars on each, all in full sun, 8-bit encoded.

    A box's shadow sweeps from its footprint to its roof's shadow: the union of the
    footprint moved north by every distance up to :data:`SHADOW_M`, so each body shades
    both shoulders of the next track north, as in a real yard under a low sun.
    """
    g = make_grid(300, 100)
    lines = [straight_line(g, 15.0 + 4.6 * t) for t in range(5)]
    cars = [c for t in range(5) for c in train(t, 6.0 + 2.0 * (t % 2), [14.0] * 6)]
    scenes = [
        render(g, lines, cars, seed=0, shadow_m=(0.0, d))
        for d in np.arange(0.5, SHADOW_M + 0.01, 0.5)
    ]
    sc = scenes[0]
    sc.data = np.min([s.data for s in scenes], axis=0).astype(np.float32)
    display_encode(sc)
    return sc, tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(lines)])


def test_light_leaves_a_busy_yard_in_low_sun_alone():
    """No gain where only the bodies' own shadows darken the shoulders.

    The sun (south, 26.6 degrees up) says which shoulders a body can shade: only the
    southmost track's south shoulder is open to the sun, and it is lit.
    """
    from railwatch.detect import ILLUM_TOLERANCE, _light
    from railwatch.quality import observe_tracks

    sc, tracks = _busy_yard_low_sun()
    obs = observe_tracks(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi)
    # Every shoulder but the southmost track's south one lies in a body's shadow; the
    # ground is in full sun all the same, so nothing is to be undone.
    for _, gain, _ in _light(obs, (180.0, 26.57)):
        assert gain.mean(axis=0).max() < ILLUM_TOLERANCE

"""Bare ground, low sun: the neighbour's shadow over a bed, from the sun's geometry."""

import math

import numpy as np

from railwatch.detect import Z_THRESHOLD, _bed_cover, _neighbour_shadow, _widen
from railwatch.tracks import TrackFrame

STEP_M = 0.25
N = 600
SPACING_M = 5.1
ELEVATION_DEG = 31.3
# Shadows fall to -y (across the tracks) and +x (along them), 35 deg off the tracks.
SHADOW = np.array([math.cos(math.radians(35.0)), -math.sin(math.radians(35.0))])
# The ground's full shadow (share of the light per band, sky-lit: bluer).
SHADE = np.array([0.55, 0.57, 0.64])
EMPTY = np.array([50.0, 50.0, 50.0])  # empty track, noise units


def _frames() -> list[TrackFrame]:
    """Track A at y = 0 and its sun-side neighbour B at y = 5.1 m, both along x."""
    s = np.arange(N) * STEP_M
    offs = np.linspace(-2.4, 2.4, 21)
    dummy = np.zeros((offs.size, s.size))
    return [
        TrackFrame(s, offs, s.copy(), np.full(N, y), np.zeros(N), np.ones(N), dummy, dummy, STEP_M)
        for y in (0.0, SPACING_M)
    ]


def _yard(deep_colour: np.ndarray):
    """Stations of A then B (colours (3, 2N), first-pass z, empty-mode members).

    B: clear bodies on stations 0-399, a body the first pass is less sure of on 400-459
    (a locomotive: taller, its shadow covers all of A's bed), empty from 460. A: a third
    shaded by B's bodies on 0-399 (those teach the shade), ``deep_colour`` on 400-459,
    lit empty track from 460.
    """
    rng = np.random.default_rng(3)
    half = EMPTY * (1.0 - 0.3 * (1.0 - SHADE))
    a = np.tile(EMPTY[:, None], N)
    a[:, :400] = half[:, None]
    a[:, 400:460] = deep_colour[:, None]
    b = np.tile(EMPTY[:, None], N)
    b[:, :460] = np.array([20.0, 30.0, 70.0])[:, None]  # blue cars
    std = np.concatenate([a, b], axis=1) + rng.normal(0.0, 1.0, (3, 2 * N))
    z_a = np.where(np.arange(N) < 460, 5.0, -3.0)
    z_b = np.select([np.arange(N) < 400, np.arange(N) < 460], [10.0, 4.5], -3.0)
    z = np.concatenate([z_a, z_b])
    members = np.concatenate([np.arange(N) >= 460] * 2)
    return std, z, members


def _explain(std, z, members, elevation_deg):
    return _neighbour_shadow(
        std,
        EMPTY,
        members,
        np.zeros(3),
        np.full(2 * N, -3.0),
        _frames(),
        z,
        np.ones(2 * N, bool),
        shadow=SHADOW,
        bands=("red", "green", "blue"),
        shade=SHADE,
        elevation_deg=elevation_deg,
    )


def test_bed_cover_grows_with_height_and_shrinks_with_spacing():
    run = 1.0 / math.tan(math.radians(ELEVATION_DEG))
    across = np.full(3, math.sin(math.radians(35.0)))
    loco = _bed_cover(np.array([5.1, 5.4, 6.0]), across, run, 5.0)
    hopper = _bed_cover(np.array([5.1, 5.4, 6.0]), across, run, 4.7)
    assert np.all(np.diff(loco) < 0) and np.all(hopper < loco)
    # A 1.3 m flat car's shadow stops short of the next bed.
    assert _bed_cover(np.array([5.1]), across[:1], run, 1.3)[0] == 0.0


def test_widen_runs_past_the_end_on_one_side():
    m = np.zeros(12, bool)
    m[3:5] = True
    assert np.flatnonzero(_widen(m, 4, 1)).tolist() == [2, 3, 4, 5, 6, 7, 8]
    assert np.flatnonzero(_widen(m, 1, 4)).tolist() == [0, 1, 2, 3, 4, 5]


def test_bed_fully_in_a_tall_neighbours_shadow_is_shade():
    # The whole bed in full shadow: darker than the half-shaded beds that taught the shade.
    std, z, members = _yard(EMPTY * (1.0 - 0.95 * (1.0 - SHADE)))
    deep = slice(410, 450)
    # Without the sun's elevation only the learned depths explain shade: not this deep.
    assert np.median(_explain(std, z, members, None)[deep]) >= Z_THRESHOLD
    nb = _explain(std, z, members, ELEVATION_DEG)
    assert np.all(nb[deep] < Z_THRESHOLD)
    # Lit empty track beyond the shadow's reach is not the neighbour's shade.
    assert np.all(np.isinf(nb[520:N]))


def test_dark_car_in_a_tall_neighbours_shadow_is_no_shade():
    # A black car there: darker than any empty bed in full shadow.
    std, z, members = _yard(np.array([12.0, 12.0, 13.0]))
    nb = _explain(std, z, members, ELEVATION_DEG)
    assert np.all(nb[410:450] > Z_THRESHOLD)

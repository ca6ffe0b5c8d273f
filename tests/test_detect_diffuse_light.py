"""Bodies the colour of ballast under a cloud shadow: in diffuse light only the rails tell."""

import numpy as np
import pytest

from railwatch.detect import (
    DIFFUSE_GAIN,
    Z_THRESHOLD,
    _diffuse_weight,
    _explain_empty,
)


def test_diffuse_weight_phases_in_between_the_gains():
    lo, hi = DIFFUSE_GAIN
    gain = np.array([[1.0, 1.2, lo, 0.5 * (lo + hi), hi, 4.0]] * 3)
    assert _diffuse_weight(gain) == pytest.approx([0.0, 0.0, 0.0, 0.5, 1.0, 1.0])


def _ballast_coloured_bodies(n_empty=200, n_body=100, seed=0):
    """Stations of one colour: empty track (rail profile) and flat bodies (no rails)."""
    rng = np.random.default_rng(seed)
    offs = np.linspace(-1.1, 1.1, 23)
    rails = np.exp(-0.5 * ((np.abs(offs) - 0.78) / 0.15) ** 2)
    n = n_empty + n_body
    prof = 0.05 * rng.normal(size=(offs.size, n))
    prof[:, :n_empty] += rails[:, None]
    shapes = prof - prof.mean(axis=0)
    shapes = shapes / np.linalg.norm(shapes, axis=0)
    m = np.array([30.0, 31.0, 32.0])  # colour in noise units
    std = m[:, None] + rng.normal(size=(3, n))
    half = [m[:, None] + rng.normal(size=(3, n)) for _ in range(2)]
    members = np.zeros(n, bool)
    members[:n_empty] = True
    tmpl = np.median(shapes[:, members], axis=1)
    tmpl = tmpl / np.linalg.norm(tmpl)
    own = (np.zeros(n), np.zeros(n, bool))
    return (std, half, shapes, m, members, tmpl, own), n_empty


def test_lit_bed_without_rails_is_a_body_only_in_diffuse_light():
    args, n_empty = _ballast_coloured_bodies()
    n = args[0].shape[1]
    sunny = _explain_empty(*args, diffuse=np.zeros(n))
    cloudy = _explain_empty(*args, diffuse=np.ones(n))
    # In the sun a bed of the empty colour is empty track whatever its profile (a
    # neighbour's shadow may break the rails): the body stays explained.
    assert np.median(sunny[n_empty:]) < Z_THRESHOLD
    # Under a cloud no shadow crosses the bed: without rails it is a body; empty
    # track keeps its rails and stays explained.
    assert np.median(cloudy[n_empty:]) > Z_THRESHOLD + 2.0
    assert np.median(cloudy[:n_empty]) < Z_THRESHOLD
    assert np.allclose(cloudy[:n_empty], sunny[:n_empty], atol=1.0)

"""Sky shade in a packed yard: most of the ground between the tracks is in shade.

Trains on tracks 5.3 m apart under a low sun shade more of the ground between the tracks
than the sun lights. Shade is still told by its blue tint against the sunlit snow, which
is the brightest ground whatever share of it the shadows cover; and only snow is bright
enough for the ground to be snow without the stations' snow flag.
"""

import numpy as np

from railwatch.detect import _sky_shade, _snow_ground

BANDS = ("red", "green", "blue")

# Sunlit snow in a linear (11-bit) product, and shade on it lit by the blue sky alone.
SNOW = np.array([0.70, 0.71, 0.74])
SKY_TINT = np.array([0.40, 0.47, 0.62])


def _shoulders(n_lit: int, n_shade: int, seed: int = 0) -> np.ndarray:
    """(3, n) shoulder colours: ``n_lit`` in the sun, then ``n_shade`` in shade."""
    rng = np.random.default_rng(seed)
    lit = SNOW[:, None] * (1.0 + rng.normal(0.0, 0.01, (3, n_lit)))
    shade = (SNOW * SKY_TINT)[:, None] * (1.0 + rng.normal(0.0, 0.01, (3, n_shade)))
    return np.concatenate([lit, shade], axis=1)


def test_shade_is_told_where_most_shoulders_are_shaded():
    # Two thirds of each side in shade: the median shoulder is shade.
    left, right = _shoulders(70, 130, seed=1), _shoulders(70, 130, seed=2)
    seen = np.ones(200, bool)
    shade = _sky_shade([left, right], [left], BANDS, seen)
    assert shade is not None
    for s in shade[:2]:
        assert float(s[:70].max()) < 0.1
        assert float(s[70:].min()) > 0.5


def test_mostly_lit_shoulders_keep_their_median():
    # A fifth in shade: the lit ground is the median's, as before.
    left, right = _shoulders(160, 40, seed=1), _shoulders(160, 40, seed=2)
    shade = _sky_shade([left, right], [left], BANDS, np.ones(200, bool))
    assert shade is not None
    for s in shade[:2]:
        assert float(s[:160].max()) == 0.0
        assert float(s[160:].min()) > 0.5


def test_bright_lit_shoulders_are_snow_in_a_linear_product():
    seen = np.ones(200, bool)
    packed = _shoulders(40, 160)
    assert _snow_ground([packed, packed], BANDS, seen)
    # Sunlit bare ground, gravel or ballast is nowhere near as bright, even display-encoded.
    bare = _shoulders(200, 0) * (0.48 / 0.71)
    assert not _snow_ground([bare, bare], BANDS, seen)

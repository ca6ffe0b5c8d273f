"""Vehicle types from length and body shape (open top, barrel)."""

import math

import numpy as np
import pytest

from railwatch.detect import _body_shape, _classify
from railwatch.site import VehiclePriors

OFFSETS = np.arange(-2.4, 2.41, 0.25)
GROUND = 0.35


def _profile(body):
    """Ground outside 1.6 m, ``body(offset)`` inside."""
    return np.where(np.abs(OFFSETS) <= 1.6, body(OFFSETS), GROUND)


# A dark coal load between lit walls; a dark barrel with a highlight along the top;
# a flat grey roof.
OPEN = _profile(lambda c: np.where(np.abs(c) >= 1.2, 0.55, 0.15))
BARREL = _profile(lambda c: 0.12 + 0.5 * np.exp(-(((c + 0.3) / 0.35) ** 2)))
ROOF = _profile(lambda c: np.full_like(c, 0.5))


def test_body_shape_tells_open_tops_barrels_and_roofs_apart():
    hollow, ridge = _body_shape(OFFSETS, OPEN)
    assert hollow > 1.0 and ridge < 0.2
    hollow, ridge = _body_shape(OFFSETS, BARREL)
    assert ridge > 1.0 and hollow < 0.0
    hollow, ridge = _body_shape(OFFSETS, ROOF)
    assert abs(hollow) < 0.2 and abs(ridge) < 0.2


def test_body_shape_of_an_unseen_profile_is_nan():
    hollow, ridge = _body_shape(OFFSETS, np.full(OFFSETS.shape, np.nan))
    assert math.isnan(hollow) and math.isnan(ridge)


@pytest.mark.parametrize(
    ("length_m", "profile", "by_length", "with_shape"),
    [
        # 14.3 m is nearer the flat car's 14.6 m than the open car's 13.92 m
        (14.3, OPEN, "flat", "open"),
        # 13.2 m is nearer the open car's 13.92 m than the tank car's 12.02 m
        (13.2, BARREL, "open", "tank"),
        # a plain roof adds nothing: the length decides
        (15.3, ROOF, "covered", "covered"),
    ],
)
def test_shape_outweighs_a_small_length_difference(length_m, profile, by_length, with_shape):
    priors = VehiclePriors()
    colour = np.zeros(3)
    assert _classify(length_m, colour, priors)[0] == by_length
    assert _classify(length_m, colour, priors, _body_shape(OFFSETS, profile))[0] == with_shape


def test_shape_does_not_make_a_tank_of_a_long_vehicle():
    # A highlight on an 18 m body (a locomotive's roof) is not enough for a 12 m tank car.
    priors = VehiclePriors()
    got = _classify(18.0, np.zeros(3), priors, _body_shape(OFFSETS, BARREL))[0]
    assert got == "locomotive"

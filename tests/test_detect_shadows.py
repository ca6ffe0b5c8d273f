"""The colour of a scene's shadows: learned beside clear bodies, used to explain shade."""

import numpy as np
import pytest

from detect_fixtures import X0, Car, make_grid, render, straight_line, train
from railwatch.detect import (
    Z_THRESHOLD,
    _explain_empty,
    _shadow_ratio,
    _sunless,
    analyse_scene,
)
from railwatch.site import Site
from railwatch.tracks import tracks_from_lines

SKY_SHADE = np.array([0.35, 0.42, 0.60])
"""A full shadow lit by the blue sky: it keeps more blue light than red."""


def _shoulders(n_clear=120, n_empty=200, ratio=SKY_SHADE, seed=0):
    """Shoulder colours (3, N) per side, evidence, empty-mode and observed stations.

    Ground is 0.5 in the light; clear bodies shade the right (-) shoulder to ``ratio``.
    """
    rng = np.random.default_rng(seed)
    n = n_clear + n_empty
    lit = 0.5 + rng.normal(0, 0.01, (3, n))
    right = lit.copy()
    right[:, :n_clear] = 0.5 * ratio[:, None] + rng.normal(0, 0.01, (3, n_clear))
    z = np.r_[np.full(n_clear, Z_THRESHOLD + 5.0), np.full(n_empty, -1.0)]
    members = z < Z_THRESHOLD
    return [lit, right], z, members, np.ones(n, bool)


def test_shadow_ratio_is_learned_beside_clear_bodies():
    ground, z, members, seen = _shoulders()
    ratio = _shadow_ratio(ground, z, members, seen, np.zeros(3))
    assert ratio is not None
    assert np.allclose(ratio, SKY_SHADE, atol=0.03)
    # Above a dark offset (haze, sensor) the ratio is of the light above it.
    dark = np.full(3, 0.1)
    ratio_d = _shadow_ratio(ground, z, members, seen, dark)
    assert np.allclose(ratio_d, (0.5 * SKY_SHADE - 0.1) / 0.4, atol=0.04)


def test_no_shadow_ratio_without_shadows_or_bodies():
    ground, z, members, seen = _shoulders(ratio=np.ones(3))  # sun overhead
    assert _shadow_ratio(ground, z, members, seen, np.zeros(3)) is None
    ground, z, members, seen = _shoulders(n_clear=10)  # too few clear bodies
    assert _shadow_ratio(ground, z, members, seen, np.zeros(3)) is None
    # "Shadows" darker than the darkest objects of the scene are no shadow on ground.
    ground, z, members, seen = _shoulders()
    assert _shadow_ratio(ground, z, members, seen, np.full(3, 0.3)) is None


def test_sunless_needs_both_shoulders_in_shadow():
    ground, z, members, seen = _shoulders()
    ratio = _shadow_ratio(ground, z, members, seen, np.zeros(3))
    # Clear bodies: one shoulder lit, one in their shadow. Empty track: both lit.
    assert not _sunless(ground, members & seen, ratio).any()
    # The lit shoulder of the last 50 stations in a neighbour's shadow as well.
    left = ground[0].copy()
    left[:, -50:] = 0.5 * SKY_SHADE[:, None]
    right = ground[1].copy()
    right[:, -50:] = 0.5 * SKY_SHADE[:, None]
    out = _sunless([left, right], members & seen, ratio)
    assert out[-50:].all()
    assert not out[:-50].any()
    # Half-way into a shadow (a penumbra, a thin cloud) is not yet sunless.
    half = 0.5 * (1 + SKY_SHADE[:, None]) / 2 * np.ones((3, left.shape[1]))
    assert not _sunless([half, half], members & seen, ratio).any()


def _stations(colours):
    """Inputs of _explain_empty for 300 empty stations and stations of ``colours`` (3, N).

    Noise units of 0.01; every station has the same across-track profile (rails unseen).
    """
    std = np.asarray(colours, float) / 0.01
    n = std.shape[1]
    rng = np.random.default_rng(1)
    empty = np.array([0.47, 0.46, 0.44]) / 0.01
    ref = empty[:, None] + rng.normal(0, 1.0, (3, 300))
    std = np.concatenate([ref, std], axis=1)
    shape = np.full((5, std.shape[1]), 1 / np.sqrt(5))
    members = np.r_[np.ones(300, bool), np.zeros(n, bool)]
    own = (np.zeros(std.shape[1]), np.zeros(std.shape[1], bool))
    args = (std, [std, std], shape, empty, members, shape[:, 0], own)
    return args, slice(300, None)


def test_shade_has_the_scenes_shadow_colour_and_is_never_darker_than_full_shadow():
    ballast = np.array([0.47, 0.46, 0.44])
    blue_shade = ballast * SKY_SHADE  # empty track in the sky-lit shade of a neighbour
    grey_shade = ballast * 0.45  # a neutral grey body, as dark as the shade
    coal = ballast * 0.25  # darker than any shadow of the scene
    args, sel = _stations(np.column_stack([blue_shade, grey_shade, coal]))
    # Rails unseen (every profile alike): colour alone decides.
    plain = _explain_empty(*args)[sel] - Z_THRESHOLD
    learned = _explain_empty(*args, shadow=[(np.zeros(3), SKY_SHADE)])[sel] - Z_THRESHOLD
    # A darker copy of ballast explains the blue shade poorly and the coal as shade...
    assert plain[0] > 0
    assert plain[2] < 0
    # ...the scene's own shadow colour explains the shade, and nothing deeper than it.
    assert learned[0] < -2
    assert learned[2] > 2
    assert learned[1] > learned[0]


def _blue_shadow_scene(cars, *, shade_box=None, snow=False):
    """Analysis of four tracks 5.5 m apart at 0.5 m pixels, all shadows sky-lit.

    Every shadow (of the cars, and of a shed over ``shade_box``) keeps :data:`SKY_SHADE`
    of the light.
    """
    g = make_grid(280, 64, res=0.5)
    lines = [straight_line(g, y) for y in (8.0, 13.5, 19.0, 24.5)]
    sc = render(g, lines, cars, seed=3, shadow_m=(0.0, -1.8), snow=snow)
    lit = render(g, lines, cars, seed=3, shadow_m=(0.0, -500.0), snow=snow)
    shaded = (sc.data < 0.8 * lit.data).any(axis=0)
    if shade_box is not None:
        (x0, x1), (y0, y1) = shade_box
        c0, c1 = int(x0 / 0.5), int(x1 / 0.5)
        r0, r1 = g.height - int(y1 / 0.5), g.height - int(y0 / 0.5)
        shaded[r0:r1, c0:c1] = True
    sc.data = np.where(shaded, lit.data * SKY_SHADE[:, None, None], lit.data).astype(np.float32)
    tracks = tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(lines)])
    a = analyse_scene(
        sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi, Site(name="test", aoi=sc.aoi)
    )
    return a


SHED = ((55.0, 85.0), (17.5, 22.0))
"""Shadow of a shed: x 55-85 m, y 17.5-22 m (T3's bed and its +y shoulder)."""

CLEAR = train(0, 10, [13.92] * 7, colours=["rust", "blue", "red", "black", "green"] * 2) + train(
    3, 20, [15.35] * 6, colours=["red", "rust", "blue", "black", "green", "red"]
)


def test_a_shed_shadow_over_empty_track_on_snow_is_no_car():
    # A shed's sky-lit shadow over empty T3 (y = 19 m) in a snowy yard: the bed and the
    # +y shoulder, the colour of the scene's other shadows. Snow and shade are both the
    # colours of empty track; a plain darker copy of snow does not explain blue shade.
    a = _blue_shadow_scene(CLEAR, shade_box=SHED, snow=True)
    assert a.quality.status == "ok"
    assert not [v for v in a.vehicles if v.track_id == "T3" and v.counted]
    assert a.railcars == 13


@pytest.mark.parametrize("colour", ["red", "black", "white"])
def test_a_car_in_the_shadow_is_still_a_car(colour):
    # A car on T3 inside the same shadow: a body, not shaded ballast, whatever its colour.
    car = Car(2, 60.0, 14.5, "covered", colour)
    a = _blue_shadow_scene(CLEAR + [car], shade_box=SHED, snow=True)
    t3 = [v for v in a.vehicles if v.track_id == "T3" and v.counted]
    assert len(t3) == 1
    lo, hi = t3[0].polygon.bounds[0] - X0 + 5.0, t3[0].polygon.bounds[2] - X0 + 5.0
    assert abs(lo - car.s0_m) < 2.0
    assert abs(hi - car.s1_m) < 2.0
    assert a.railcars == 14

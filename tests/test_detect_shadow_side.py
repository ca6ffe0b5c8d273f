"""The scene's shadow side when a busy yard blurs the asymmetry beside its bodies (issue 3).

At 1.0 m a car the colour of ballast shows only by the shadow it casts on its shadow-side
shoulder. In a busy yard the next track's cars shade many bodies' sun-side shoulders too,
so the plain left/right asymmetry beside the clear bodies no longer agrees on a side;
the side along which the bodies stand apart from empty track still does.
"""

from __future__ import annotations

import numpy as np

from railwatch.detect import Z_THRESHOLD, _cast_shadow_evidence
from railwatch.tracks import TrackFrame

STEP_M = 0.25
N_PER_TRACK = 400
TRACK_Y_M = (0.0, 5.0, 10.0)
LIGHT = 0.5
"""Ground in the light beside empty track."""
OWN_SHADOW = 0.45
"""Share of the light a body's own shadow leaves on its shadow-side (-y) shoulder."""
NEIGHBOUR_SHADOW = 0.35
"""Share left on a sun-side (+y) shoulder reached by the next track's shadow."""


def _frames() -> list[TrackFrame]:
    s = np.arange(N_PER_TRACK) * STEP_M
    offs = np.linspace(-2.4, 2.4, 21)
    out = []
    for y in TRACK_Y_M:
        dummy = np.zeros((offs.size, s.size))
        out.append(
            TrackFrame(
                s,
                offs,
                s.copy(),
                np.full(s.size, y),
                np.zeros(s.size),
                np.ones(s.size),
                dummy,
                dummy,
                STEP_M,
            )
        )
    return out


def _busy_yard(rng: np.random.Generator, *, both_shaded: bool = False):
    """Band-mean brightness per station of three tracks along x, shadows falling to -y.

    Stations 0-199 of every track are clear bodies (bright, ``z`` high, shadows of
    varying depth), 200-299 empty track, 300-339 a car the colour of ballast (weak ``z``)
    with its own shadow on the -y shoulder, 340-399 empty track whose +y shoulder lies in
    the next track's shadow, the bed too from 370 on.
    Of the clear bodies, 45 % have their sun-side (+y) shoulder in the next track's
    shadow as well, darker than their own (all of them, as deep as their own, with
    ``both_shaded``).
    """
    n = N_PER_TRACK * len(TRACK_Y_M)
    k = np.tile(np.arange(N_PER_TRACK), len(TRACK_Y_M))
    noise = lambda: rng.normal(0.0, 0.005, n)  # noqa: E731
    clear, ballast_car, shaded_empty = k < 200, (k >= 300) & (k < 340), k >= 340
    empty = ~clear & ~ballast_car
    bed = np.where(clear, 0.7, 0.45) + noise()
    halves = [bed + noise(), bed + noise()]
    left = np.full(n, LIGHT) + noise()  # +y: sun side
    right = np.full(n, LIGHT) + noise()  # -y: shadow side
    right[clear | ballast_car] *= OWN_SHADOW * rng.uniform(0.7, 1.3, n)[clear | ballast_car]
    bed_shaded = k >= 370
    bed[bed_shaded] *= NEIGHBOUR_SHADOW
    for h in halves:
        h[bed_shaded] *= NEIGHBOUR_SHADOW
    reached = clear & ((rng.random(n) < 0.45) | both_shaded)
    # Full to the brim, the next track's shadow is as deep as a body's own.
    left[reached | shaded_empty] *= OWN_SHADOW if both_shaded else NEIGHBOUR_SHADOW
    z = np.where(clear, Z_THRESHOLD + 8.0, np.where(ballast_car, Z_THRESHOLD - 1.0, 0.0))
    seen = np.ones(n, bool)
    return bed, halves, [left, right], z, empty, seen, ballast_car, shaded_empty


def test_shadow_side_found_in_a_busy_yard_and_a_ballast_coloured_car_shows():
    """The side comes from separation; a bed in a neighbour's shadow gains nothing."""
    bed, halves, ground, z, empty, seen, car, shaded_empty = _busy_yard(np.random.default_rng(4))
    llr = _cast_shadow_evidence(bed, halves, ground, _frames(), z, empty, seen)
    # The car the colour of ballast crosses the threshold on its cast shadow alone...
    assert np.median(llr[car]) > 2.0
    assert np.median(z[car] + llr[car]) > Z_THRESHOLD
    # ...while empty track in the next track's shadow (sun-side shoulder) gains nothing.
    assert np.percentile(llr[shaded_empty], 90) < 0.5
    assert np.percentile(llr[empty & ~shaded_empty], 90) < 0.5


def test_no_side_when_both_shoulders_of_every_body_are_shaded():
    """Neither side alone sets the bodies apart: no evidence at all."""
    # A yard full to the brim: both shoulders of every body in shadow. Neither side
    # sets the bodies apart alone, so no side is taken and nothing is added.
    bed, halves, ground, z, empty, seen, car, _ = _busy_yard(
        np.random.default_rng(5), both_shaded=True
    )
    ground[0][car] *= OWN_SHADOW
    llr = _cast_shadow_evidence(bed, halves, ground, _frames(), z, empty, seen)
    assert np.all(llr == 0.0)

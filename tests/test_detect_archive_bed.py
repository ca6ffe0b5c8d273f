"""A stray run of body evidence beyond the end of a complete body (issue 3, 1.0 m imagery).

At 1.0 m on snow the snow's small spread sets any faint shade far from empty track: a
shadow strip across the track (a catenary beam) 1.5 m beyond the end of a locomotive
becomes a short run of "body" across an empty gap. Joined to the locomotive it makes a
22 m run that the length priors then split into two tank cars. No body has an empty
gap inside it, so such a run must neither lengthen the body beside it nor split it,
while the short runs of a real car broken up by shade (nothing complete beside them)
are kept.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from shapely.geometry import LineString, Point

from railwatch.detect import StationEvidence, _track_vehicles
from railwatch.site import Site

STEP_M = 0.25
N = 400
EMPTY_Z = -4.0
BODY_Z = 7.0
GAP_BONUS = 16.0
"""Largest colour evidence for a gap between two bodies (``_gap_evidence``): a dark
grill in a bright body, like a run end, reaches it."""


def _stations(runs: list[tuple[float, float, float]]) -> np.ndarray:
    """(N,) evidence z: empty track, with (start m, length m, z) runs."""
    s = (np.arange(N) + 0.5) * STEP_M
    z = np.full(N, EMPTY_Z)
    for s0, length, value in runs:
        z[(s >= s0) & (s < s0 + length)] = value
    return z


def _vehicles(z: np.ndarray, cut: np.ndarray | None = None) -> list[tuple[float, float]]:
    """Counted vehicles (start m, length m) on a straight 100 m track with evidence ``z``."""
    s = (np.arange(N) + 0.5) * STEP_M
    frame = SimpleNamespace(step_m=STEP_M, s_m=s)
    track = SimpleNamespace(track_id="T1", line=LineString([(0.0, 0.0), (N * STEP_M, 0.0)]))
    obs = SimpleNamespace(frame=frame, track=track, bands=("red", "green", "blue"))
    ev = StationEvidence(
        z=z,
        observed=np.ones(N, bool),
        colour=np.full((3, N), 0.5),
        shape=np.zeros((5, N)),
        cut=np.zeros(N + 1) if cut is None else cut,
    )
    site = Site(name="test", aoi=Point(0, 0).buffer(1.0))
    vehicles, _ = _track_vehicles(obs, ev, site, True, None)
    out = []
    for v in vehicles:
        if v.counted:
            x0, _, x1, _ = v.polygon.bounds
            out.append((round(x0, 2), round(x1 - x0, 2)))
    return out


def test_stray_run_beyond_a_locomotive_neither_lengthens_nor_splits_it():
    """A 19 m locomotive from 40 m and a 1.5 m shadow strip 1.5 m before its end.

    Its dark middle grill is a weaker stretch (still a body) that looks like a coupling
    gap in colour; the gap between the strip and the locomotive is empty track.
    """
    z = _stations([(37.0, 1.5, 5.5), (38.5, 1.5, 1.3), (40.0, 19.0, BODY_Z), (49.0, 1.5, 3.4)])
    boundary_m = np.arange(N + 1) * STEP_M
    cut = np.zeros(N + 1)
    cut[np.abs(boundary_m - 49.75) < 0.8] = GAP_BONUS
    for end_m in (37.0, 40.0, 59.0):
        cut[np.abs(boundary_m - end_m) < 0.3] = GAP_BONUS
    got = _vehicles(z, cut)
    assert len(got) == 1
    x0, length = got[0]
    assert abs(x0 - 40.0) <= 0.5
    assert abs(length - 19.0) <= 0.75


def test_short_runs_of_a_broken_up_car_are_kept():
    """A 14 m car in shade shows as short runs with empty gaps between them.

    Nothing complete stands beside any of them: the car is still found, over its full
    length.
    """
    z = _stations(
        [
            (40.0, 2.0, 5.0),
            (42.0, 1.5, 1.0),
            (43.5, 4.0, 6.0),
            (47.5, 1.25, 1.0),
            (48.75, 5.25, 6.0),
        ]
    )
    got = _vehicles(z)
    assert len(got) == 1
    x0, length = got[0]
    assert abs(x0 - 40.0) <= 0.5
    assert abs(length - 14.0) <= 0.75


def test_archive_bed_tells_a_dark_car_from_an_empty_bed_in_shade():
    """A bed darker than its own empty bed over the archive is a body, unless shade.

    At 1.0 m a dark car in a full yard is explained as deep shade over the bed. Its bed
    is darker against the ground than the station's empty bed over the archive, by about
    as much as the scene's clear bodies; an empty bed in a neighbour's shadow is darker
    too, but by no more than the scene's full shadow, and a bright bed is no sign.
    """
    from railwatch.detect import Z_THRESHOLD, _archive_evidence

    rng = np.random.default_rng(3)
    n_empty, n_clear, n_dark, n_shade, n_bright = 200, 100, 40, 40, 20
    dev = np.concatenate(
        [
            rng.normal(0.0, 0.02, n_empty),  # empty track: its own archive bed
            rng.normal(-0.5, 0.05, n_clear),  # the scene's clear bodies
            np.full(n_dark, -0.45),  # a dark car taken for shade
            np.full(n_shade, -0.2),  # empty bed in a neighbour's shadow
            np.full(n_bright, 0.3),  # a bright bed
        ]
    )
    z = np.concatenate(
        [
            np.full(n_empty, -3.0),
            np.full(n_clear, 10.0),
            np.full(n_dark, 1.0),
            np.full(n_shade, 1.0),
            np.full(n_bright, 1.0),
        ]
    )
    members = np.arange(dev.size) < n_empty
    seen = np.ones(dev.size, bool)
    shade_depth = 0.25  # the scene's full shadow, log units
    llr = _archive_evidence(dev, z, members, seen, shade_depth)
    i0 = n_empty + n_clear
    dark = slice(i0, i0 + n_dark)
    rest = slice(i0 + n_dark, None)
    assert np.all(z[dark] + llr[dark] >= Z_THRESHOLD)
    assert np.all(llr[rest] == 0.0)
    assert np.all(llr[:n_empty] < 1.0)
    # Without clear bodies to learn from there is no evidence at all.
    assert not _archive_evidence(dev, np.minimum(z, 1.0), members, seen, shade_depth).any()

"""The blocked segmentation DP gives exactly the segmentation of the plain O(n L) DP."""

from __future__ import annotations

import numpy as np
import pytest

from railwatch.detect import _length_logpdf, _span, segment_track
from railwatch.site import VehiclePriors


def _plain_dp(evidence, step_m, priors, cut=None):
    """Reference: one station at a time (the definition in segment_track's Notes)."""
    e = np.asarray(evidence, float)
    n = e.size
    lmin, lmax = _span(priors, step_m)
    if n < lmin:
        return []
    cs = np.concatenate([[0.0], np.cumsum(e) * step_m])
    lens = np.arange(lmin, lmax + 1)
    logp = _length_logpdf(priors, lens * step_m)
    bonus = np.zeros(n + 1) if cut is None else np.asarray(cut, float)
    best = np.zeros(n + 1)
    back = np.zeros(n + 1, dtype=np.int64)
    for i in range(1, n + 1):
        best[i] = best[i - 1]
        for length, lp in zip(lens, logp, strict=True):
            if length > i:
                break
            c = best[i - length] + (cs[i] - cs[i - length]) + lp + bonus[i - length] + bonus[i]
            if c > best[i]:
                best[i], back[i] = c, length
    segs, i = [], n
    while i > 0:
        if back[i]:
            segs.append((i - int(back[i]), i))
            i -= int(back[i])
        else:
            i -= 1
    return segs[::-1]


@pytest.mark.parametrize("seed", range(12))
def test_blocked_dp_matches_plain_dp(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 700))
    step = float(rng.choice([0.15, 0.25, 0.5]))
    e = rng.normal(-1.0, 2.0, n)
    for _ in range(int(rng.integers(0, 12))):
        a = int(rng.integers(0, n))
        e[a : a + int(rng.integers(20, 120))] += 4.0
    cut = rng.normal(0.0, 1.0, n + 1) if seed % 2 else None
    got = segment_track(e, step, VehiclePriors(), cut=cut)
    assert got == _plain_dp(e, step, VehiclePriors(), cut)
    if seed == 0:
        assert len(got) > 0


def test_clean_train_is_cut_at_its_coupling_gaps():
    e = -5.0 * np.ones(400)  # empty track: clearly negative, as station_evidence gives
    for a in (40, 100, 160):  # three 14 m bodies (56 stations) with 1 m gaps
        e[a : a + 56] = 3.0
    assert segment_track(e, 0.25, VehiclePriors()) == [(40, 96), (100, 156), (160, 216)]

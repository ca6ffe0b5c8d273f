"""The fast paths of the detector give the same numbers as the plain NumPy/SciPy forms."""

import math
import warnings

import numpy as np
from scipy.spatial import cKDTree

from railwatch import detect, quality
from railwatch.align import nanmedian_stack
from railwatch.site import VehiclePriors
from railwatch.tracks import sample_frame


def test_distance_and_masked_median_match_numpy():
    rng = np.random.default_rng(1)
    for b in (1, 3, 4):
        pts = np.round(rng.normal(0, 3, (b, 501)), 1)  # ties
        c = pts[:, 7].copy()
        assert np.array_equal(detect._distance(pts, c), np.linalg.norm(pts - c[:, None], axis=0))
        by_band = np.argsort(pts, axis=1)
        ranked = np.take_along_axis(pts, by_band, axis=1)
        for frac in (0.05, 0.5, 1.0):
            mask = rng.random(pts.shape[1]) < frac
            mask[:2] = True  # odd and even counts both occur over the draws
            got = detect._masked_median(ranked, by_band, mask)
            assert np.array_equal(got, np.median(pts[:, mask], axis=1))


def _colour_modes_plain(col, seen, radius):
    """The loop before helper-39 (np.linalg.norm / np.median / np.allclose), ten seeds."""
    pts = col[:, np.flatnonzero(seen)]
    order = np.argsort(pts.sum(axis=0))
    modes = []
    for q in np.linspace(0.05, 0.95, 10):
        c = pts[:, int(order[int(q * (len(order) - 1))])]
        for _ in range(15):
            near = np.linalg.norm(pts - c[:, None], axis=0) <= radius
            if not near.any():
                break
            nxt = np.median(pts[:, near], axis=1)
            if np.allclose(nxt, c, atol=1e-3):
                break
            c = nxt
        if all(np.linalg.norm(c - m) > radius for m in modes):
            modes.append(c)
    return modes


def test_colour_modes_same_as_plain_mean_shift():
    rng = np.random.default_rng(2)
    for t in range(12):
        b = 3 + t % 2
        x = np.concatenate(
            [rng.normal(rng.normal(0, 5, (b, 1)), 1, (b, 300)) for _ in range(3)], axis=1
        )
        if t % 2:
            x = np.round(x, 1)
        seen = rng.random(x.shape[1]) < 0.9
        radius = 3.0 * math.sqrt(b) if t % 3 else 0.5
        got = detect._colour_modes(x, seen, radius)
        want = _colour_modes_plain(x, seen, radius)
        assert len(got) == len(want)
        assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))


def _count_distribution_rows(e, step, priors):
    """The row-by-row recursion before helper-39."""
    n = e.size
    lmin, lmax = detect._span(priors, step)
    kmax = n // max(lmin, 1) + 1
    if n < lmin:
        return np.array([1.0])
    cs = np.concatenate([[0.0], np.cumsum(e) * step]) / detect.TEMPERATURE
    lens = np.arange(lmin, lmax + 1)
    logp = detect._length_logpdf(priors, lens * step) / detect.TEMPERATURE
    f = np.full((n + 1, kmax + 1), -np.inf)
    f[0, 0] = 0.0
    for i in range(1, n + 1):
        row = f[i - 1].copy()
        ok = lens <= i
        if ok.any():
            ls = lens[ok]
            prev = f[i - ls, :-1] + ((cs[i] - cs[i - ls]) + logp[ok])[:, None]
            mx = prev.max(axis=0)
            fin = np.isfinite(mx)
            lse = np.full_like(mx, -np.inf)
            lse[fin] = mx[fin] + np.log(np.exp(prev[:, fin] - mx[fin]).sum(axis=0))
            row[1:] = np.logaddexp(row[1:], lse)
        f[i] = row
    p = np.exp(f[n] - f[n].max())
    return p / p.sum()


def test_count_distribution_blocks_match_row_recursion():
    rng = np.random.default_rng(3)
    priors = VehiclePriors()
    for n, step in ((30, 0.5), (97, 0.5), (400, 0.5), (260, 0.25), (150, 1.0)):
        e = rng.normal(0, 2, n) + np.repeat(rng.normal(0, 3, n // 20 + 1), 20)[:n]
        got = detect.count_distribution(e, step, priors)
        assert np.array_equal(got, _count_distribution_rows(e, step, priors))


def test_ball_groups_members_match_query_ball_point():
    rng = np.random.default_rng(4)
    pts = np.round(rng.uniform(0, 100, (700, 2)), 1)
    tree = cKDTree(pts)
    idx, counts = detect._ball_groups(tree, 7.5)
    for i, g in enumerate(tree.query_ball_point(pts, 7.5)):
        assert np.array_equal(np.sort(idx[i, : counts[i]]), np.sort(g))


def test_nanmedian_stack_matches_numpy():
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        x = rng.normal(0, 1, (21, 300)).astype(dtype)
        x[rng.random(x.shape) < 0.3] = np.nan
        x[:, :3] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = np.nanmedian(x, axis=0)
        got = nanmedian_stack(x)
        assert got.dtype == want.dtype
        assert np.array_equal(got, want, equal_nan=True)


def test_sample_mask_matches_sampling():
    from affine import Affine
    from shapely.geometry import LineString

    from railwatch.site import SiteGrid
    from railwatch.tracks import track_frame

    g = SiteGrid("EPSG:32652", Affine(0.5, 0, 0, 0, -0.5, 50), 100, 100)
    frame = track_frame(g, LineString([(-3, 10), (60, 30)]), step_m=0.25, half_width_m=2.0)
    for bad_at in (None, (65, 40), (90, 90)):
        mask = np.zeros((100, 100), bool)
        if bad_at is not None:
            mask[bad_at] = True
        values = mask.astype(np.float32)
        got = quality._sample_mask(mask, values, frame)
        assert np.array_equal(got, sample_frame(values, frame)[0], equal_nan=True)

"""Track extraction from one image whose spread is the yard's own structure (issue 3)."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from detect_fixtures import make_grid, render, straight_line
from railwatch import tracks as tr
from railwatch.tracks import extract_tracks


def _hazy(grid, lines, *, haze, noise, seed=3):
    """A yard seen through haze: contrast cut to ``1 - haze``, then sensor noise and 8 bits."""
    sc = render(grid, lines, [], seed=seed, noise=0.0)
    rng = np.random.default_rng(seed + 100)
    data = sc.data * (1 - haze) + haze * 0.7 + rng.normal(0, noise, sc.data.shape)
    sc.data = (np.round(np.clip(data, 0, 1) * 255) / 255).astype(np.float32)
    return sc


def _assert_on(tracks, lines, aoi, tol_m=0.5):
    assert len(tracks) == len(lines)
    # T1 is the northern (left-hand, looking east) line.
    for t, ln in zip(tracks, lines[::-1], strict=True):
        truth = ln.intersection(aoi)
        assert t.line.hausdorff_distance(truth) < tol_m
        assert t.length_m > 0.95 * truth.length


def test_hazy_single_image_of_two_empty_tracks_gives_both():
    # 14 m across, two empty tracks 5 m apart: the image's spread is its own rails and
    # bed edges. Haze leaves 15 % of the contrast; the tracks used to give no seed.
    g = make_grid(240, 28)
    lines = [straight_line(g, 5.5), straight_line(g, 10.5)]
    sc = _hazy(g, lines, haze=0.85, noise=0.0015)
    _assert_on(extract_tracks([sc.gray], [sc.valid], g, sc.aoi), lines, sc.aoi)


def test_hazy_single_image_of_a_dense_yard_gives_every_track():
    g = make_grid(240, 100)
    lines = [straight_line(g, 6.0 + 5.3 * k) for k in range(8)]
    sc = _hazy(g, lines, haze=0.8, noise=0.002)
    _assert_on(extract_tracks([sc.gray], [sc.valid], g, sc.aoi), lines, sc.aoi)


def test_clear_single_image_of_two_tracks_gives_no_bed_edge_lines():
    # Full contrast in a tight image: lowering the floor to clutter units must not let
    # the bed edges 1.8 m beside the tracks seed lines that cut the tracks.
    g = make_grid(240, 40)
    lines = [straight_line(g, 7.5), straight_line(g, 12.5)]
    sc = render(g, lines, [], seed=3, noise=0.003)
    _assert_on(extract_tracks([sc.gray], [sc.valid], g, sc.aoi), lines, sc.aoi)


def test_rough_ground_without_tracks_gives_no_line():
    # Scrub (texture at 0.5-2 m) over two thirds of the image, smooth ground elsewhere:
    # clutter is measured over the whole image, not in its quietest part.
    g = make_grid(240, 120)
    sc = render(g, [], [], seed=3, noise=0.003)
    h, w = g.shape
    tex = ndi.gaussian_filter(np.random.default_rng(11).standard_normal((h, w)), 1.0)
    rows = np.arange(h)[:, None] * np.ones((1, w))
    scrub = (rows < 0.35 * h) | (rows > 0.65 * h)
    sc.data[:, scrub] += 0.1 * (tex / tex.std())[scrub]
    assert extract_tracks([sc.gray], [sc.valid], g, sc.aoi) == []


def test_minor_eigenvalue_ratio_in_white_noise():
    noise = np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32)
    minor, lap = tr._minor_and_laplacian(noise, tr._rail_sigma_px(0.5))
    ratio = tr._robust_sigma(minor) / tr._robust_sigma(lap)
    assert ratio == pytest.approx(tr._MINOR_NOISE_RATIO, abs=0.02)


def test_clutter_shares_are_one_in_noise_and_small_in_a_yard():
    g = make_grid(240, 28)
    noise = np.random.default_rng(1).normal(0.5, 0.01, g.shape).astype(np.float32)
    valid = np.ones(g.shape, bool)
    maps = tr.rail_maps([noise], [valid], 0.5)
    assert tr._isotropic_share([noise], [valid], 0.5) > 0.9
    assert tr._along_gradient_share(maps) > 0.9
    lines = [straight_line(g, 5.5), straight_line(g, 10.5)]
    sc = _hazy(g, lines, haze=0.8, noise=0.002)
    maps = tr.rail_maps([sc.gray], [sc.valid], 0.5)
    assert tr._isotropic_share([sc.gray], [sc.valid], 0.5) < 0.7
    assert tr._along_gradient_share(maps) < 0.7

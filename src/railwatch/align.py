"""Co-registration of acquisitions to the site reference.

Commercial imagery is often off by several metres between acquisitions. Every scene is
shifted (translation only, sub-pixel) onto a reference built from the stack before
anything is compared along the tracks.

The shift is found by phase correlation of *gradient magnitude* images: edges of rails,
ballast beds, roads and buildings are stable between dates while brightness, haze and snow
are not. Nodata and the borders are masked and tapered so their edges do not correlate,
and cars (which come and go) are a minority of the edges in a yard.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

__all__ = ["build_reference", "estimate_shift", "apply_shift"]

logger = logging.getLogger(__name__)


def build_reference(images: Sequence[np.ndarray], valids: Sequence[np.ndarray]) -> np.ndarray:
    """Robust reference image: the per-pixel median of the valid observations.

    Parameters
    ----------
    images : sequence of numpy.ndarray
        (H, W) gray images on the site grid.
    valids : sequence of numpy.ndarray
        (H, W) bool, True where observed.

    Returns
    -------
    numpy.ndarray
        (H, W) float32. Pixels never observed hold the median of the observed ones.

    Examples
    --------
    >>> a = np.ones((2, 2), "float32"); b = 3 * a
    >>> build_reference([a, b, a], [a > 0, a > 0, a < 0]).tolist()
    [[2.0, 2.0], [2.0, 2.0]]
    """
    if not images:
        raise ValueError("build_reference needs at least one image")
    stack = np.stack(
        [
            np.where(v, np.asarray(i, np.float32), np.nan)
            for i, v in zip(images, valids, strict=True)
        ]
    )
    seen = np.isfinite(stack).any(axis=0)
    ref = np.zeros(stack.shape[1:], np.float32)
    if seen.any():
        ref[seen] = np.nanmedian(stack[:, seen], axis=0)
        ref[~seen] = float(np.median(ref[seen]))
    return ref


def _edges(image: np.ndarray, valid: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Gradient magnitude, zero-mean and tapered inside the usable area, and that weight."""
    img = np.asarray(image, np.float32)
    fill = float(np.median(img[valid])) if valid.any() else 0.0
    img = np.where(valid, img, fill)
    gr = ndi.gaussian_filter(img, sigma, order=(1, 0))
    gc = ndi.gaussian_filter(img, sigma, order=(0, 1))
    mag = np.hypot(gr, gc)
    # Away from nodata edges (whose gradient would correlate with itself) and tapered.
    usable = ndi.binary_erosion(valid, iterations=int(np.ceil(3 * sigma)) + 1, border_value=0)
    weight = ndi.gaussian_filter(usable.astype(np.float32), 3.0)
    weight *= usable
    h, w = img.shape
    weight *= np.outer(np.hanning(h + 2)[1:-1], np.hanning(w + 2)[1:-1]) ** 0.25
    if weight.sum() == 0:
        return np.zeros_like(mag), weight
    # Compress the dynamic range so a few very strong edges (a white car) do not dominate.
    mag = np.sqrt(mag)
    mean = float((mag * weight).sum() / weight.sum())
    return (mag - mean) * weight, weight


def estimate_shift(
    reference: np.ndarray,
    image: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    ref_valid: np.ndarray | None = None,
    max_shift_px: int = 40,
    sigma_px: float = 1.0,
) -> tuple[float, float]:
    """Sub-pixel translation that brings ``image`` onto ``reference``.

    Parameters
    ----------
    reference, image : numpy.ndarray
        (H, W) gray images on the same grid.
    valid, ref_valid : numpy.ndarray, optional
        (H, W) bool masks of observed pixels (all True by default).
    max_shift_px : int
        Largest shift searched along each axis, pixels.
    sigma_px : float
        Scale of the gradient filter, pixels.

    Returns
    -------
    (dy, dx) : tuple of float
        Shift in pixels (rows, columns) to pass to :func:`apply_shift`; (0, 0) when there
        is too little overlap to tell.

    Notes
    -----
    Phase correlation on zero-padded, tapered gradient-magnitude images; the peak is
    searched within ``max_shift_px`` and refined by a parabola through its neighbours
    along each axis.
    """
    ref = np.asarray(reference, np.float32)
    img = np.asarray(image, np.float32)
    if ref.shape != img.shape:
        raise ValueError(f"shapes differ: {ref.shape} vs {img.shape}")
    valid = np.ones(img.shape, bool) if valid is None else np.asarray(valid, bool)
    ref_valid = np.ones(ref.shape, bool) if ref_valid is None else np.asarray(ref_valid, bool)
    a, wa = _edges(ref, ref_valid, sigma_px)
    b, wb = _edges(img, valid, sigma_px)
    if wa.sum() < 100 or wb.sum() < 100:
        logger.debug("too little valid area to align; shift set to 0")
        return (0.0, 0.0)
    h, w = ref.shape
    m = int(max_shift_px)
    shape = (h + m + 1, w + m + 1)
    fa = np.fft.rfft2(a, shape)
    fb = np.fft.rfft2(b, shape)
    cross = fa * np.conj(fb)
    cross /= np.abs(cross) ** 0.9 + 1e-12  # nearly pure phase, a little damping of noise
    corr = np.fft.irfft2(cross, shape)
    # corr[t] peaks where reference(x) ~ image(x - t): apply_shift(image, t) matches.
    dys = np.r_[0 : m + 1, -m:0]
    rows = np.r_[0 : m + 1, shape[0] - m : shape[0]]
    cols = np.r_[0 : m + 1, shape[1] - m : shape[1]]
    window = corr[np.ix_(rows, cols)]
    i, j = _best_candidate(window, dys, ref, img, ref_valid, valid, sigma_px)

    def refine(vals: tuple[float, float, float]) -> float:
        lo, c, hi = vals
        den = lo - 2 * c + hi
        return 0.0 if den >= 0 else float(np.clip(0.5 * (lo - hi) / den, -0.5, 0.5))

    r0, c0 = rows[i], cols[j]
    dy = dys[i] + refine(
        (corr[(r0 - 1) % shape[0], c0], corr[r0, c0], corr[(r0 + 1) % shape[0], c0])
    )
    dx = dys[j] + refine(
        (corr[r0, (c0 - 1) % shape[1]], corr[r0, c0], corr[r0, (c0 + 1) % shape[1]])
    )
    return _refine(ref, img, ref_valid, valid, (float(dy), float(dx)), sigma_px)


def _best_candidate(
    window: np.ndarray,
    dys: np.ndarray,
    ref: np.ndarray,
    img: np.ndarray,
    ref_valid: np.ndarray,
    valid: np.ndarray,
    sigma: float,
    *,
    n_candidates: int = 5,
) -> tuple[int, int]:
    """Pick among the strongest correlation peaks by masked NCC of band-passed images.

    Parallel tracks repeat every ~5 m, so phase correlation has secondary peaks one track
    spacing away; the overlap-normalised correlation over the common valid area separates
    them better than the raw peak height, which depends on how much overlaps.
    """
    peaks = (window == ndi.maximum_filter(window, size=5)) & (window > 0)
    idx = np.argwhere(peaks)
    if len(idx) == 0:
        return np.unravel_index(int(np.argmax(window)), window.shape)
    order = np.argsort(window[peaks])[::-1][:n_candidates]
    idx = idx[order]
    if len(idx) == 1:
        return int(idx[0][0]), int(idx[0][1])
    # Clipped so the strong contrast of cars (which move between dates) weighs no more
    # than rails, ballast edges and buildings.
    a = np.clip(_highpass(ref, ref_valid, sigma), -2.0, 2.0)
    b = np.clip(_highpass(img, valid, sigma), -2.0, 2.0)
    best, best_score = idx[0], -np.inf
    for i, j in idx:
        dy, dx = int(dys[i]), int(dys[j])
        bs = ndi.shift(b, (dy, dx), order=0, cval=0.0)
        vs = ndi.shift(valid.astype(np.uint8), (dy, dx), order=0, cval=0).astype(bool)
        m = vs & ref_valid
        if m.sum() < 100:
            continue
        x, y = a[m], bs[m]
        x = x - x.mean()
        y = y - y.mean()
        score = float((x * y).sum() / (np.sqrt((x * x).sum() * (y * y).sum()) + 1e-9))
        if score > best_score:
            best, best_score = (i, j), score
    return int(best[0]), int(best[1])


def _highpass(image: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    img = np.asarray(image, np.float32)
    fill = float(np.median(img[valid])) if valid.any() else 0.0
    img = np.where(valid, img, fill)
    hp = ndi.gaussian_filter(img, sigma) - ndi.gaussian_filter(img, 4 * sigma + 2)
    scale = float(np.median(np.abs(hp[valid]))) if valid.any() else 0.0
    return hp / (scale + 1e-6)


def _refine(
    ref: np.ndarray,
    img: np.ndarray,
    ref_valid: np.ndarray,
    valid: np.ndarray,
    start: tuple[float, float],
    sigma: float,
    *,
    iterations: int = 6,
) -> tuple[float, float]:
    """Lucas-Kanade refinement of a translation on band-passed images, robust weights.

    Phase correlation of edge images locates the peak to about a pixel; the least-squares
    step on the band-passed intensities (each normalised by its own contrast, so gain
    changes between dates do not matter) brings it well below a pixel. Residuals far from
    the bulk (cars that moved) get Cauchy-like low weights.
    """
    a = _highpass(ref, ref_valid, sigma)
    b = _highpass(img, valid, sigma)
    margin = int(np.ceil(4 * sigma + 3))
    wa = ndi.binary_erosion(ref_valid, iterations=margin, border_value=0).astype(np.float32)
    wb = ndi.binary_erosion(valid, iterations=margin, border_value=0).astype(np.float32)
    cur = np.array(start, float)
    for _ in range(iterations):
        bs = ndi.shift(b, cur, order=1, mode="nearest")
        ws = ndi.shift(wb, cur, order=1, cval=0.0) > 0.999
        w = wa * ws
        if w.sum() < 100:
            return (float(start[0]), float(start[1]))
        gy, gx = np.gradient(bs)
        r = a - bs
        scale = 1.4826 * float(np.median(np.abs(r[w > 0]))) + 1e-6
        w = w / (1.0 + (r / (2 * scale)) ** 2)
        mat = np.array(
            [[(w * gy * gy).sum(), (w * gy * gx).sum()], [(w * gy * gx).sum(), (w * gx * gx).sum()]]
        )
        vec = np.array([(w * gy * r).sum(), (w * gx * r).sum()])
        try:
            step = -np.linalg.solve(mat, vec)
        except np.linalg.LinAlgError:
            break
        step = np.clip(step, -1.0, 1.0)
        cur = cur + step
        if np.hypot(*step) < 0.01:
            break
    if np.hypot(*(cur - np.asarray(start))) > 2.0:
        logger.debug("refinement wandered off (%s -> %s); keeping the correlation peak", start, cur)
        return (float(start[0]), float(start[1]))
    return (float(cur[0]), float(cur[1]))


def apply_shift(
    data: np.ndarray, valid: np.ndarray, shift: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Translate an image and its valid mask by ``shift`` pixels (bilinear).

    Parameters
    ----------
    data : numpy.ndarray
        (bands, H, W) or (H, W).
    valid : numpy.ndarray
        (H, W) bool.
    shift : (dy, dx)
        Pixels, as returned by :func:`estimate_shift`.

    Returns
    -------
    data, valid : numpy.ndarray
        Shifted copies; pixels that moved in from outside or from nodata are invalid and 0.

    Examples
    --------
    >>> d = np.arange(16, dtype="float32").reshape(4, 4)
    >>> out, ok = apply_shift(d, d >= 0, (0, 1))
    >>> out[0].tolist(), ok[0].tolist()
    ([0.0, 0.0, 1.0, 2.0], [False, True, True, True])
    """
    dy, dx = float(shift[0]), float(shift[1])
    valid = np.asarray(valid, bool)
    if dy == 0 and dx == 0:
        return data.copy(), valid.copy()
    ok = ndi.shift(valid.astype(np.float32), (dy, dx), order=1, cval=0.0) > 0.999
    arr = data[None] if data.ndim == 2 else data
    out = np.empty(arr.shape, np.float32)
    for b in range(arr.shape[0]):
        band = np.where(valid, arr[b], 0).astype(np.float32)
        out[b] = ndi.shift(band, (dy, dx), order=1, cval=0.0)
    out[:, ~ok] = 0.0
    return (out[0] if data.ndim == 2 else out), ok

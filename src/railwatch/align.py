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
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage as ndi

if TYPE_CHECKING:
    from railwatch.tracks import TrackFrame

__all__ = [
    "build_reference",
    "estimate_shift",
    "extend_clipped_ends",
    "apply_shift",
    "align_stack",
    "EdgeSpectrum",
    "edge_spectrum",
    "solve_shifts",
    "select_anchors",
    "AnchorEdges",
    "anchor_edges",
    "place_scene",
    "ScenePlacer",
    "track_template",
    "register_to_tracks",
    "centre_tracks",
]

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
    med = nanmedian_stack(stack)
    seen = np.isfinite(med)
    ref = np.zeros(stack.shape[1:], np.float32)
    if seen.any():
        ref[seen] = med[seen]
        ref[~seen] = float(np.median(ref[seen]))
    return ref


def nanmedian_stack(stack: np.ndarray) -> np.ndarray:
    """Per-pixel median over axis 0 ignoring NaN; NaN where no value (no warnings).

    The same numbers as :func:`numpy.nanmedian`, by sorting (NaN sorts last) and averaging
    the middle pair of the valid values: several times faster, and without the per-slice
    warnings numpy issues for pixels that were never observed.

    Examples
    --------
    >>> nanmedian_stack(np.array([[1.0, np.nan], [3.0, np.nan], [np.nan, np.nan]])).tolist()
    [2.0, nan]
    """
    k = np.isfinite(stack).sum(axis=0)
    srt = np.sort(stack, axis=0)
    lo = np.take_along_axis(srt, np.clip((k - 1) // 2, 0, None)[None], axis=0)[0]
    hi = np.take_along_axis(srt, np.clip(k // 2, 0, None)[None], axis=0)[0]
    mid = (lo + hi) / np.asarray(2, dtype=srt.dtype)
    return np.where(k > 0, mid, np.nan).astype(srt.dtype, copy=False)


def _gradient(image: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian derivatives of an image along rows and along columns."""
    return (
        ndi.gaussian_filter(image, sigma, order=(1, 0)),
        ndi.gaussian_filter(image, sigma, order=(0, 1)),
    )


def _usable_weight(valid: np.ndarray, sigma: float) -> np.ndarray:
    """Weight of the pixels away from nodata and the border (softly tapered to them).

    The gradient at a nodata edge would correlate with itself, not with the ground.
    """
    usable = ndi.binary_erosion(valid, iterations=int(np.ceil(3 * sigma)) + 1, border_value=0)
    return ndi.gaussian_filter(usable.astype(np.float32), 3.0) * usable


def _filled(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The image with nodata set to the median of the valid pixels."""
    img = np.asarray(image, np.float32)
    fill = float(np.median(img[valid])) if valid.any() else 0.0
    return np.where(valid, img, fill)


def _edges(image: np.ndarray, valid: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Gradient magnitude, zero-mean and tapered inside the usable area, and that weight."""
    img = _filled(image, valid)
    mag = np.hypot(*_gradient(img, sigma))
    weight = _usable_weight(valid, sigma)
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
    m = int(max_shift_px)
    shape = _fft_shape(ref.shape, m)
    return _peak_shift(np.fft.rfft2(a, shape), np.fft.rfft2(b, shape), shape, m)


def _fft_shape(shape: tuple[int, ...], m: int) -> tuple[int, int]:
    from scipy.fft import next_fast_len

    return (next_fast_len(shape[0] + m + 1), next_fast_len(shape[1] + m + 1))


def _peak_shift(
    fa: np.ndarray, fb: np.ndarray, shape: tuple[int, int], m: int, workers: int = 1
) -> tuple[float, float]:
    """Shift of the cross-correlation peak within +/-m pixels, refined to sub-pixel.

    Plain cross-correlation of the zero-mean edge images: whitening the spectrum (pure
    phase correlation) lets the fine periodic texture of parallel tracks pick a peak one
    track spacing away, while the unwhitened product is dominated by the yard's layout.
    """
    from scipy.fft import irfft2

    # The same numbers with any number of threads: each 1-D transform is one thread's.
    corr = irfft2(fa * np.conj(fb), shape, workers=workers)
    # corr[t] peaks where reference(x) ~ image(x - t): apply_shift(image, t) matches.
    dys = np.r_[0 : m + 1, -m:0]
    rows = np.r_[0 : m + 1, shape[0] - m : shape[0]]
    cols = np.r_[0 : m + 1, shape[1] - m : shape[1]]
    window = corr[np.ix_(rows, cols)]
    i, j = np.unravel_index(int(np.argmax(window)), window.shape)

    def refine(lo: float, c: float, hi: float) -> float:
        den = lo - 2 * c + hi
        return 0.0 if den >= 0 else float(np.clip(0.5 * (lo - hi) / den, -0.5, 0.5))

    r0, c0 = rows[i], cols[j]
    dy = dys[i] + refine(corr[(r0 - 1) % shape[0], c0], corr[r0, c0], corr[(r0 + 1) % shape[0], c0])
    dx = dys[j] + refine(corr[r0, (c0 - 1) % shape[1]], corr[r0, c0], corr[r0, (c0 + 1) % shape[1]])
    return (float(dy), float(dx))


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


def align_stack(
    images: Sequence[np.ndarray],
    valids: Sequence[np.ndarray],
    *,
    max_shift_px: int = 30,
    n_anchors: int = 5,
    sigma_px: float = 1.0,
) -> tuple[list[tuple[float, float]], np.ndarray, np.ndarray]:
    """Co-register a stack of gray images: shifts, the reference and its valid mask.

    Parameters
    ----------
    images : sequence of numpy.ndarray
        (H, W) gray images on the site grid.
    valids : sequence of numpy.ndarray
        (H, W) bool masks.
    max_shift_px : int
        Largest shift searched, pixels.
    n_anchors : int
        Scenes every other scene is registered to.
    sigma_px : float
        Scale of the gradient filter, pixels.

    Returns
    -------
    shifts : list of (dy, dx)
        Pixels, for :func:`apply_shift`; their median is zero, so an unbiased set of
        georeferencing errors stays centred on the site coordinates.
    reference, ref_valid : numpy.ndarray
        Median of the aligned stack and where it was observed.

    Notes
    -----
    A median of unaligned scenes is blurred by their misregistration, and any single
    reference scene fails for some dates (snow, haze, another sensor). So every scene is
    registered to several *anchors* (the most complete scenes, spread over time) and the
    anchors to each other; the positions that best explain all those pairwise shifts are
    found by iteratively reweighted least squares with Cauchy weights, so a pair that
    locked on a wrong peak is outvoted.
    """
    n = len(images)
    if n == 0:
        raise ValueError("align_stack needs at least one image")
    if n == 1:
        return [(0.0, 0.0)], np.asarray(images[0], np.float32), np.asarray(valids[0], bool)
    shape = np.shape(images[0])
    spectra = [
        edge_spectrum(img, v, max_shift_px=max_shift_px, sigma_px=sigma_px)
        for img, v in zip(images, valids, strict=True)
    ]
    shifts = solve_shifts(spectra, shape, max_shift_px=max_shift_px, n_anchors=n_anchors)
    moved = [
        apply_shift(np.asarray(g, np.float32), v, sh)
        for g, v, sh in zip(images, valids, shifts, strict=True)
    ]
    ref = build_reference([g for g, _ in moved], [v for _, v in moved])
    ref_valid = np.any(np.stack([v for _, v in moved]), axis=0)
    return shifts, ref, ref_valid


@dataclass(frozen=True, slots=True)
class EdgeSpectrum:
    """One scene's edge image in the Fourier domain, with what anchor choice needs.

    Attributes
    ----------
    spectrum : numpy.ndarray
        ``rfft2`` of the zero-mean, tapered edge image, zero-padded to the FFT shape of
        the stack (complex64).
    usable : float
        Share of the grid usable for matching (valid, away from nodata edges).
    energy : float
        Mean absolute edge strength over the usable area (cloud and haze lower it).
    """

    spectrum: np.ndarray
    usable: float
    energy: float


def edge_spectrum(
    image: np.ndarray, valid: np.ndarray, *, max_shift_px: int = 30, sigma_px: float = 1.0
) -> EdgeSpectrum:
    """Edge spectrum of one scene for :func:`solve_shifts` (independent per scene).

    Parameters
    ----------
    image, valid : numpy.ndarray
        (H, W) gray image on the site grid and where it holds data.
    max_shift_px : int
        Largest shift that will be searched (sets the zero padding).
    sigma_px : float
        Scale of the gradient filter, pixels.

    Returns
    -------
    EdgeSpectrum
    """
    e, w = _edges(np.asarray(image, np.float32), np.asarray(valid, bool), sigma_px)
    shape = _fft_shape(np.shape(image), int(max_shift_px))
    return EdgeSpectrum(
        np.fft.rfft2(e, shape).astype(np.complex64),
        float((w > 0).mean()),
        float(np.mean(np.abs(e[w > 0]))) if (w > 0).any() else 0.0,
    )


def select_anchors(
    spectra: Sequence[EdgeSpectrum], *, n_anchors: int = 5, min_score: float = 0.8
) -> list[int]:
    """Indices (sorted) of the scenes every other scene is matched to in :func:`solve_shifts`.

    Anchors must be complete and sharp: the most usable scenes with at least the typical
    edge energy (a score of at least ``min_score`` times the best one's), spread over the
    order given (time).
    """
    n = len(spectra)
    if n < 2:
        return []
    usable = [sp.usable for sp in spectra]
    energy = [sp.energy for sp in spectra]
    # Cloud and haze flatten edges, so a scene with far less edge energy than the typical
    # one is no anchor however complete.
    typical = float(np.median([en for en in energy if en > 0] or [1.0]))
    score = [u * min(1.0, en / typical) for u, en in zip(usable, energy, strict=True)]
    order = np.argsort(score, kind="stable")[::-1]
    good = [int(i) for i in order if score[i] >= min_score * score[order[0]]]
    # One or two anchors cannot outvote a pair locked on a wrong peak: with fewer that
    # pass, the next most complete and sharp scenes vote too.
    good += [int(i) for i in order[len(good) : min(3, n_anchors)] if usable[i] > 0]
    pick = np.unique(np.linspace(0, len(good) - 1, min(n_anchors, len(good))).round().astype(int))
    return sorted(good[i] for i in pick)


def solve_shifts(
    spectra: Sequence[EdgeSpectrum],
    image_shape: tuple[int, ...],
    *,
    max_shift_px: int = 30,
    n_anchors: int = 5,
    workers: int = 1,
) -> list[tuple[float, float]]:
    """Shifts (dy, dx) in pixels that co-register scenes given their edge spectra.

    See :func:`align_stack`; the median shift is zero. ``workers`` threads share the
    inverse transforms (a serial step of a run, while its pool waits); the result does
    not depend on it.
    """
    n = len(spectra)
    if n == 0:
        return []
    if n == 1:
        return [(0.0, 0.0)]
    m = int(max_shift_px)
    shape = _fft_shape(image_shape, m)
    usable = [sp.usable for sp in spectra]
    anchors = select_anchors(spectra, n_anchors=n_anchors)
    edges: list[tuple[int, int, float, float]] = []  # p_j - p_i = (dy, dx)
    for a in anchors:
        for i in range(n):
            if i == a or (i in anchors and i < a) or usable[i] == 0:
                continue
            dy, dx = _peak_shift(spectra[a].spectrum, spectra[i].spectrum, shape, m, workers)
            edges.append((a, i, dy, dx))
    pos = _solve_positions(n, edges, anchors[0], anchors=anchors)
    med = np.median(pos, axis=0)
    return [(float(p[0] - med[0]), float(p[1] - med[1])) for p in pos]


@dataclass(frozen=True, slots=True)
class AnchorEdges:
    """An anchor of the stack solve, kept to place scenes outside the stack's sample.

    Attributes
    ----------
    edges : numpy.ndarray
        (H, W) float16: the anchor's zero-mean, tapered edge image (what
        :func:`edge_spectrum` transforms) in its own, unshifted frame. Half the bytes of
        the float32 reference, and half again of its zero-padded complex spectrum; the
        rounding (a part in a thousand) does not move a correlation peak.
    shift : (float, float)
        The anchor's shift (dy, dx) pixels in the stack, for :func:`apply_shift`.
    """

    edges: np.ndarray
    shift: tuple[float, float]


def anchor_edges(
    spectrum: EdgeSpectrum, image_shape: tuple[int, ...], *, max_shift_px: int = 30
) -> np.ndarray:
    """The (H, W) float16 edge image behind an :class:`EdgeSpectrum` (for :class:`AnchorEdges`).

    Examples
    --------
    >>> img = np.zeros((40, 50), "float32"); img[10:30, 20:30] = 1.0
    >>> sp = edge_spectrum(img, img >= 0, max_shift_px=5)
    >>> e, _ = _edges(img, img >= 0, 1.0)
    >>> bool(np.allclose(anchor_edges(sp, img.shape, max_shift_px=5), e, atol=1e-3))
    True
    """
    shape = _fft_shape(image_shape, int(max_shift_px))
    full = np.fft.irfft2(spectrum.spectrum, shape)
    return full[: image_shape[0], : image_shape[1]].astype(np.float16)


def place_scene(
    anchors: Sequence[AnchorEdges],
    spectrum: EdgeSpectrum,
    image_shape: tuple[int, ...],
    *,
    reference_shift: tuple[float, float] | None = None,
    max_shift_px: int = 30,
    scale_px: float = 1.0,
) -> tuple[float, float]:
    """Shift of a scene outside the stack's sample, voted on by the stack's anchors.

    Parameters
    ----------
    anchors : sequence of AnchorEdges
        The anchors of the stack solve and their shifts.
    spectrum : EdgeSpectrum
        The scene's (:func:`edge_spectrum` with the same ``max_shift_px``).
    image_shape : (int, int)
        Grid height and width.
    reference_shift : (float, float), optional
        The scene's match against the stack reference (:func:`estimate_shift`), one more
        vote.
    max_shift_px : int
        Largest shift searched along each axis, pixels.
    scale_px : float
        Scale of the Cauchy kernel, pixels (that of the stack solve).

    Returns
    -------
    (dy, dx) : tuple of float
        Pixels, for :func:`apply_shift`, in the frame of the stack's shifts.

    Notes
    -----
    One match against the median reference has nothing to outvote a wrong peak: a snowy
    scene against the snow-free median locks on one 17 m off along the tracks. Here each
    anchor's pair implies a position (its shift plus the pair's), as the same pairs do
    for a scene inside the stack (:func:`solve_shifts`); the position most votes agree on
    (:func:`_mode`) starts a Cauchy-weighted mean of the votes, which is what the stack's
    reweighted least squares makes of a scene whose anchors are fixed.
    """
    votes: list[tuple[float, float]] = []
    if spectrum.usable > 0:
        m = int(max_shift_px)
        shape = _fft_shape(image_shape, m)
        spectra = ((np.fft.rfft2(np.asarray(a.edges, np.float32), shape), a.shift) for a in anchors)
        votes = _anchor_votes(spectra, spectrum.spectrum, shape, m)
    if reference_shift is not None:
        votes.append((float(reference_shift[0]), float(reference_shift[1])))
    return _vote(votes, scale_px)


def _anchor_votes(
    anchors: Iterable[tuple[np.ndarray, tuple[float, float]]],
    spectrum: np.ndarray,
    shape: tuple[int, int],
    m: int,
) -> list[tuple[float, float]]:
    """The position each anchor (its spectrum, its shift) implies for a scene's spectrum."""
    votes = []
    for fa, (sy, sx) in anchors:
        dy, dx = _peak_shift(fa, spectrum, shape, m)
        votes.append((sy + dy, sx + dx))
    return votes


def _vote(votes: Sequence[tuple[float, float]], scale_px: float) -> tuple[float, float]:
    """Cauchy-weighted mean of the votes, started at their :func:`_mode`; (0, 0) if none."""
    if not votes:
        return (0.0, 0.0)
    v = np.array(votes, float)
    p = _mode(v, scale_px)
    for _ in range(20):
        w = 1.0 / (1.0 + (np.hypot(*(v - p).T) / scale_px) ** 2)
        p = (w[:, None] * v).sum(axis=0) / w.sum()
    return (float(p[0]), float(p[1]))


@dataclass(frozen=True)
class ScenePlacer:
    """Places scenes outside a stack's sample with the stack's spectra transformed once.

    :meth:`place` gives what :func:`estimate_shift` against the reference followed by
    :func:`place_scene` with that match as a vote gives, to the last bit, but transforms
    only the scene: the reference's edges and the anchors' spectra are computed here,
    once per stack, instead of once per scene (9 forward FFTs of the grid per scene, a
    fifth of a yard acquisition's cost, for every acquisition of an archive longer than
    the stack's sample).

    Attributes
    ----------
    image_shape : (int, int)
        Grid height and width.
    max_shift_px : int
        Largest shift searched along each axis, pixels.
    reference : numpy.ndarray or None
        Spectrum of the reference's edge image; None when too little of it is valid to
        match against.
    anchors : tuple of (numpy.ndarray, (float, float))
        Each anchor's spectrum and its shift in the stack.
    sigma_px, scale_px : float
        Gradient scale (as :func:`estimate_shift`) and vote kernel (as
        :func:`place_scene`), pixels.
    """

    image_shape: tuple[int, int]
    max_shift_px: int
    reference: np.ndarray | None
    anchors: tuple[tuple[np.ndarray, tuple[float, float]], ...] = ()
    sigma_px: float = 1.0
    scale_px: float = 1.0

    @classmethod
    def of_stack(
        cls,
        reference: np.ndarray,
        ref_valid: np.ndarray,
        anchors: Sequence[AnchorEdges] = (),
        *,
        max_shift_px: int = 30,
        sigma_px: float = 1.0,
        scale_px: float = 1.0,
    ) -> ScenePlacer:
        """The placer of a stack: its reference, the reference's valid mask, its anchors."""
        ref = np.asarray(reference, np.float32)
        shape = _fft_shape(ref.shape, int(max_shift_px))
        a, wa = _edges(ref, np.asarray(ref_valid, bool), sigma_px)
        spectra = tuple(
            (np.fft.rfft2(np.asarray(an.edges, np.float32), shape), an.shift) for an in anchors
        )
        return cls(
            image_shape=(int(ref.shape[0]), int(ref.shape[1])),
            max_shift_px=int(max_shift_px),
            reference=np.fft.rfft2(a, shape) if wa.sum() >= 100 else None,
            anchors=spectra,
            sigma_px=sigma_px,
            scale_px=scale_px,
        )

    def place(self, image: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
        """Shift (dy, dx) pixels of one scene, for :func:`apply_shift`.

        Parameters
        ----------
        image, valid : numpy.ndarray
            (H, W) gray image on the grid and where it holds data.
        """
        img = np.asarray(image, np.float32)
        if img.shape != self.image_shape:
            raise ValueError(f"shapes differ: {self.image_shape} vs {img.shape}")
        m = self.max_shift_px
        shape = _fft_shape(self.image_shape, m)
        e, w = _edges(img, np.asarray(valid, bool), self.sigma_px)
        fe = np.fft.rfft2(e, shape)
        if self.reference is None or w.sum() < 100:
            logger.debug("too little valid area to align; shift set to 0")
            matched = (0.0, 0.0)
        else:
            matched = _peak_shift(self.reference, fe, shape, m)
        if not self.anchors:
            return matched
        votes: list[tuple[float, float]] = []
        if (w > 0).any():
            # Against the scene's spectrum as edge_spectrum stores it.
            votes = _anchor_votes(self.anchors, fe.astype(np.complex64), shape, m)
        votes.append(matched)
        return _vote(votes, self.scale_px)


def _mode(votes: np.ndarray, scale_px: float) -> np.ndarray:
    """The vote most of the others agree with: the densest point under a Cauchy kernel.

    A median needs a majority of right votes; pair matches that lock on a wrong peak are
    not a random minority but scattered along the yard's tracks (a shift along parallel
    tracks barely changes their correlation), so several can be wrong at once while the
    right ones still agree with each other to a fraction of a pixel. Where no two votes
    agree within about a pixel, the median is kept.

    Examples
    --------
    >>> _mode(np.array([[0.0, 0.0], [0.2, 0.1], [30.0, -7.0], [24.0, -5.0], [18.0, -31.0]]), 1.0)
    array([0.2, 0.1])
    """
    votes = np.asarray(votes, float)
    if len(votes) < 3:
        return np.median(votes, axis=0)
    dist = np.hypot(*(votes[:, None, :] - votes[None, :, :]).transpose(2, 0, 1))
    support = (1.0 / (1.0 + (dist / scale_px) ** 2)).sum(axis=1)
    # Two votes within a pixel of each other already beat any number of lone ones.
    if support.max() < 1.5:
        return np.median(votes, axis=0)
    return votes[int(np.argmax(support))]


def _consensus_start(
    n: int,
    edges: Sequence[tuple[int, int, float, float]],
    fixed: int,
    anchors: Sequence[int],
    scale_px: float = 1.0,
) -> np.ndarray:
    """Positions implied by the pairs, each taken where most of its votes agree.

    An anchor's position relative to the fixed one is voted on by their direct pair and by
    every scene matched to both (p_b - p_a = d(a, k) - d(b, k)): one pair locked on a wrong
    peak (a cloudy anchor against a snowy one) no longer places the anchor, and with it
    every scene seen through it. Each scene then takes the :func:`_mode` of the positions
    implied through the anchors.
    """
    direct = {(i, j): np.array([dy, dx]) for i, j, dy, dx in edges}

    def rel(a: int, b: int) -> np.ndarray | None:
        # Position of b minus position of a, voted on by every scene seen from both.
        votes = [direct[(a, b)]] if (a, b) in direct else []
        if (b, a) in direct:
            votes.append(-direct[(b, a)])
        votes += [
            direct[(a, k)] - direct[(b, k)]
            for k in range(n)
            if k not in (a, b) and (a, k) in direct and (b, k) in direct
        ]
        return _mode(np.array(votes), scale_px) if votes else None

    apos = {fixed: np.zeros(2)}
    for a in anchors:
        if a != fixed and (r := rel(fixed, a)) is not None:
            apos[a] = r
    pos = np.zeros((n, 2))
    for k in range(n):
        implied = [apos[a] + direct[(a, k)] for a in apos if (a, k) in direct]
        if k in apos:
            implied.append(apos[k])
        if implied:
            pos[k] = _mode(np.array(implied), scale_px)
    return pos


def _solve_positions(
    n: int,
    edges: Sequence[tuple[int, int, float, float]],
    fixed: int,
    *,
    scale_px: float = 1.0,
    anchors: Sequence[int] = (),
) -> np.ndarray:
    """Positions p (n, 2) with p[j] - p[i] ~ d for every edge, robustly; p[fixed] = 0.

    Started from the median of the positions implied through each anchor (a robust
    start, so a minority of wrong pairs cannot pull the reweighting into a wrong
    solution), then refined by iteratively reweighted least squares (Cauchy weights).
    """
    if not edges:
        return np.zeros((n, 2))
    ii = np.array([e[0] for e in edges])
    jj = np.array([e[1] for e in edges])
    d = np.array([[e[2], e[3]] for e in edges], float)
    mat = np.zeros((len(edges) + 1, n))
    mat[np.arange(len(edges)), jj] = 1.0
    mat[np.arange(len(edges)), ii] -= 1.0
    mat[-1, fixed] = 1.0  # gauge
    rhs = np.vstack([d, [0.0, 0.0]])
    w = np.ones(len(edges) + 1)
    w[-1] = 1e3
    pos = _consensus_start(n, edges, fixed, anchors, scale_px)
    w[:-1] = 1.0 / (1.0 + (np.hypot(*(mat[:-1] @ pos - d).T) / scale_px) ** 2)
    for _ in range(20):
        sw = np.sqrt(w)[:, None]
        pos, *_ = np.linalg.lstsq(mat * sw, rhs * sw, rcond=None)
        r = np.hypot(*(mat[:-1] @ pos - d).T)
        w[:-1] = 1.0 / (1.0 + (r / scale_px) ** 2)
    return pos


def track_template(
    shape: tuple[int, int],
    transform,
    lines: Sequence,
    *,
    bed_half_width_m: float = 1.75,
    supersample: int = 4,
) -> np.ndarray:
    """Image of the track beds of known centre lines, to register a stack to them.

    Parameters
    ----------
    shape : (int, int)
        Grid height and width.
    transform : affine.Affine
        Grid transform.
    lines : sequence of shapely LineString
        Centre lines in the grid CRS.
    bed_half_width_m : float
        Half width of a ballast bed.
    supersample : int
        Sub-pixels per pixel and axis over which the bed's cover is averaged.

    Returns
    -------
    numpy.ndarray
        (H, W) float32, the fraction of each pixel covered by a bed (1 inside, 0 away
        from them): its edges (the bed borders) are what :func:`register_to_tracks`
        correlates with the edges of the imagery, whatever the sign of the contrast
        between ballast and ground.

    Notes
    -----
    A bed edge running obliquely to the grid, drawn as whole pixels, is a staircase: a
    row of small edges across the track every few pixels, which the along-track
    registration would take for bed ends. The cover fraction is a straight edge.
    """
    from affine import Affine
    from rasterio.features import rasterize
    from shapely.geometry import mapping

    out = np.zeros(shape, np.float32)
    if not lines:
        return out
    k = max(1, int(supersample))
    shapes = [(mapping(ln.buffer(bed_half_width_m, cap_style="flat")), 1) for ln in lines]
    fine = transform @ Affine.scale(1.0 / k)
    # In strips of rows: the sub-pixel raster of a large grid would not fit in memory.
    rows = max(1, 2**22 // (k * k * max(shape[1], 1)))
    for r0 in range(0, shape[0], rows):
        n = min(rows, shape[0] - r0)
        sub = rasterize(
            shapes,
            out_shape=(n * k, shape[1] * k),
            transform=fine @ Affine.translation(0, r0 * k),
            fill=0,
            dtype="uint8",
        )
        out[r0 : r0 + n] = sub.reshape(n, k, shape[1], k).mean(axis=(1, 3), dtype=np.float32)
    return out


CLIPPED_END_M = 10.0
"""A centre line ending this close before the AOI's boundary (straight on) was cut there:
its bed runs on beyond the AOI."""


def extend_clipped_ends(
    lines: Sequence, aoi, *, within_m: float = CLIPPED_END_M, by_m: float = 500.0
) -> list:
    """Centre lines whose ends at the AOI's boundary run on, straight, by ``by_m``.

    Parameters
    ----------
    lines : sequence of shapely LineString
        Centre lines in the grid CRS.
    aoi : shapely geometry
        The AOI in the grid CRS.
    within_m : float
        An end whose straight continuation leaves the AOI within this distance was cut at
        the AOI (:data:`CLIPPED_END_M`).
    by_m : float
        Length added to such an end.

    Returns
    -------
    list of shapely LineString
        The lines, the cut ends extended.

    Notes
    -----
    Surveyed or digitised lines usually stop at the AOI while the track runs on. Drawn as
    bed ends, those cuts are edges across the tracks that the ground does not have, and
    the registration along the tracks (:func:`register_to_tracks`) would take them for
    buffer stops. An end on another line (a turnout) or whose continuation stays in the
    AOI (a buffer stop inside the yard) is kept.

    Examples
    --------
    >>> from shapely.geometry import LineString, box
    >>> out = extend_clipped_ends([LineString([(2, 5), (95, 5)])], box(0, 0, 100, 10))
    >>> [round(c) for c in out[0].bounds]
    [-498, 5, 595, 5]
    """
    from shapely.geometry import LineString, Point

    out = []
    for i, ln in enumerate(lines):
        if not isinstance(ln, LineString) or ln.is_empty or ln.length == 0:
            out.append(ln)
            continue
        coords = [tuple(c[:2]) for c in ln.coords]
        others = [o for j, o in enumerate(lines) if j != i and not o.is_empty]
        for end in (0, -1):
            p = np.asarray(coords[end])
            # Outwards, along the line's last metre.
            back = ln.interpolate(min(1.0, ln.length) if end == 0 else max(ln.length - 1.0, 0.0))
            d = p - np.asarray(back.coords[0][:2])
            norm = float(np.hypot(*d))
            if norm == 0:
                continue
            d /= norm
            if any(o.distance(Point(p)) < 1.0 for o in others):
                continue
            if aoi.contains(Point(p + within_m * d)):
                continue
            new = tuple(p + by_m * d)
            coords = [new, *coords] if end == 0 else [*coords, new]
        out.append(LineString(coords))
    return out


ALONG_ANISOTROPY = 0.25
"""Ratio of the template's weaker to its stronger edge direction (structure tensor
eigenvalues) below which the beds fix one direction far better than the other: parallel
tracks, whose long edges say nothing about a shift along them."""


def _along_direction(gr: np.ndarray, gc: np.ndarray) -> np.ndarray | None:
    """Unit (row, col) vector along which a template's edges are weakest, or None.

    ``gr``, ``gc``: the template's gradient (:func:`_gradient`). The eigenvector of the
    smallest eigenvalue of its structure tensor: for a yard of parallel tracks, the
    track direction. None when the template constrains every direction alike
    (:data:`ALONG_ANISOTROPY`) or has no edges.
    """
    tensor = np.array(
        [[(gr * gr).sum(), (gr * gc).sum()], [(gr * gc).sum(), (gc * gc).sum()]], float
    )
    vals, vecs = np.linalg.eigh(tensor)
    if vals[1] <= 0 or vals[0] / vals[1] > ALONG_ANISOTROPY:
        return None
    return vecs[:, 0]


def _corr_at(spec: np.ndarray, shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    """Cross-correlation of a half-spectrum (``rfft2`` product) at sub-pixel lags.

    The correlation is band-limited, so its value between the integer lags is the inverse
    Fourier sum evaluated there: exact, where interpolating the integer-lag samples of a
    narrow ridge running obliquely to the grid is not.
    """
    ky = np.fft.fftfreq(shape[0])
    kx = np.fft.rfftfreq(shape[1])
    # Hermitian symmetry: every column but the zero (and Nyquist) one stands for two.
    w = np.full(kx.shape, 2.0)
    w[0] = 1.0
    if shape[1] % 2 == 0:
        w[-1] = 1.0
    ey = np.exp(2j * np.pi * np.outer(points[:, 0], ky))
    ex = np.exp(2j * np.pi * np.outer(points[:, 1], kx)) * w
    rows = ey @ spec
    return (rows * ex).sum(axis=1).real / (shape[0] * shape[1])


def register_to_tracks(
    template: np.ndarray,
    reference: np.ndarray,
    *,
    valid: np.ndarray | None = None,
    max_shift_px: int = 40,
    max_along_px: float = 8.0,
    min_along_edge_px: float = 7.0,
    sigma_px: float = 1.0,
) -> tuple[float, float]:
    """Sub-pixel shift that brings a stack reference onto the template of its tracks.

    Parameters
    ----------
    template : numpy.ndarray
        (H, W) bed image of the surveyed centre lines (:func:`track_template`).
    reference : numpy.ndarray
        (H, W) median reference of the stack, on the same grid.
    valid : numpy.ndarray, optional
        (H, W) bool, observed pixels of the reference (all True by default).
    max_shift_px : int
        Largest shift searched along each axis, pixels.
    max_along_px : float
        Largest correction searched along the tracks around the whole-image estimate.
    min_along_edge_px : float
        Least length of bed edge across the tracks (or its equivalent in oblique edges)
        for the template to say where the stack lies along them; one bed end is 3.5 m.
    sigma_px : float
        Scale of the gradient filter, pixels.

    Returns
    -------
    (dy, dx) : tuple of float
        Shift in pixels for :func:`apply_shift`.

    Notes
    -----
    :func:`estimate_shift` places the stack across the tracks to a fraction of a pixel:
    every metre of bed edge speaks to it. Along parallel tracks only bed ends, turnouts,
    ladders and curves do, a percent of the edge energy, and that direction of the
    whole-image correlation is a flat ridge. Its highest point was decided by things
    that have nothing to do with where the tracks are: the sampling of the long oblique
    edges (the ridge crossing the grid of integer lags), and the window that tapers the
    zero-mean edge images, which pulls edges towards the borders. That left every
    archive 0.2-0.8 m off along its tracks (up to 1.3 m at 1.0 m pixels), one direction
    or the other. So along the weak direction (:func:`_along_direction`) the position is
    found again from the edges that cross it alone: the along-track derivative of the
    template (bed ends, the diverging edges of turnouts and ladders; zero on the long
    edges) correlated with that of the reference, untapered except at nodata, the
    correlation evaluated exactly at sub-pixel lags along the ridge.
    """
    ref = np.asarray(reference, np.float32)
    tmpl = np.asarray(template, np.float32)
    valid = np.ones(ref.shape, bool) if valid is None else np.asarray(valid, bool)
    dy, dx = estimate_shift(tmpl, ref, valid=valid, max_shift_px=max_shift_px, sigma_px=sigma_px)
    tr, tc = _gradient(tmpl, sigma_px)
    u = _along_direction(tr, tc)
    if u is None or not valid.any():
        return (dy, dx)
    # The template needs no window: it is zero away from its beds, and its beds lie
    # inside the grid; its along-track edges are the features themselves.
    a = np.abs(tr * u[0] + tc * u[1])
    # A unit step filtered so has a squared gradient of 1 / (2 sqrt(pi) sigma) per pixel
    # of its length: the template's along-track edges as a length of bed end.
    if (a * a).sum() * 2.0 * np.sqrt(np.pi) * sigma_px < min_along_edge_px:
        return (dy, dx)
    rr, rc = _gradient(_filled(ref, valid), sigma_px)
    b = np.abs(rr * u[0] + rc * u[1])
    # Only nodata and the grid border are tapered (their own edges must not correlate);
    # a window over the whole image would pull the yard's ends towards the borders.
    weight = _usable_weight(valid, sigma_px)
    if weight.sum() < 100:
        return (dy, dx)
    b = (b - float((b * weight).sum() / weight.sum())) * weight
    from scipy.fft import rfft2

    shape = _fft_shape(ref.shape, int(max_shift_px + np.ceil(max_along_px)))
    spec = rfft2(a, shape) * np.conj(rfft2(b, shape))
    step = 0.25
    s = np.arange(-max_along_px, max_along_px + step / 2, step)
    corr = _corr_at(spec, shape, np.array([dy, dx]) + s[:, None] * u[None, :])
    k = int(np.argmax(corr))
    if k == 0 or k == len(s) - 1:
        # No peak inside the search: nothing along the tracks to go by.
        return (dy, dx)
    den = corr[k - 1] - 2 * corr[k] + corr[k + 1]
    frac = 0.0 if den >= 0 else float(np.clip(0.5 * (corr[k - 1] - corr[k + 1]) / den, -0.5, 0.5))
    along = (k + frac) * step - max_along_px
    logger.debug("stack moved %.2f px along the tracks (%.2f, %.2f)", along, *u)
    return (float(dy + along * u[0]), float(dx + along * u[1]))


def symmetry_offset(profile: np.ndarray, offsets_m: np.ndarray, max_offset_m: float) -> float:
    """Across-track offset about which a mean track profile is most symmetric.

    Parameters
    ----------
    profile : numpy.ndarray
        (m,) mean across-track profile (NaN allowed at the ends).
    offsets_m : numpy.ndarray
        (m,) its offsets, metres, increasing.
    max_offset_m : float
        Largest correction considered.

    Returns
    -------
    float
        The centre, metres (positive to the left of the line).

    Notes
    -----
    A track is mirror-symmetric about its centre line (two rails, ballast shoulders)
    whatever the sign of its contrast; the correlation of the profile with its mirror
    image about each candidate centre is maximised.

    Examples
    --------
    >>> o = np.linspace(-3, 3, 61)
    >>> p = np.exp(-0.5 * ((np.abs(o - 0.4) - 0.78) / 0.15) ** 2)
    >>> round(symmetry_offset(p, o, 1.5), 1)
    0.4
    """
    prof = np.asarray(profile, float)
    ok = np.isfinite(prof)
    if ok.sum() < 5:
        return 0.0
    fill = np.interp(offsets_m, offsets_m[ok], prof[ok])
    step = float(np.median(np.diff(offsets_m)))
    half = 2.5
    ref_o = np.arange(0.0, half + 1e-9, step)
    best, best_c = -np.inf, 0.0
    cands = np.arange(-max_offset_m, max_offset_m + 1e-9, step / 2)
    for c in cands:
        a = np.interp(c + ref_o, offsets_m, fill)
        b = np.interp(c - ref_o, offsets_m, fill)
        a, b = a - a.mean(), b - b.mean()
        den = np.sqrt((a * a).sum() * (b * b).sum())
        score = float((a * b).sum() / den) if den > 0 else -np.inf
        if score > best:
            best, best_c = score, float(c)
    # A peak at the edge of the search is no peak (ladders crossing other tracks).
    if abs(best_c) >= max_offset_m - step:
        return 0.0
    return best_c


CENTRE_WINDOW_M = 4.0
"""Half width of the strip whose median across-track profile re-centres a track
(:func:`centre_tracks`): its own bed (ballast about 1.5-2 m either side) and the ground
beside it, within a sideways correction of :data:`CENTRE_MAX_OFFSET_M`."""

CENTRE_MAX_OFFSET_M = 1.5
"""Largest sideways correction of a surveyed or digitised centre line."""

BED_HALF_WIDTH_M = 1.75
"""Half width of a ballast bed (3-4 m wide): how far a track's own look reaches beside its
centre line."""

PARALLEL_DEG = 3.0
"""Angle between two centre lines above which they are not side by side but converging
(a turnout, 1:6-1:12, 5-9.5 deg; a ladder, up to 1:4, 14 deg); tracks beside each other
run parallel within a degree or two."""

CONVERGE_M = 3.5
"""Centre lines closer than this share a bed whatever their angle: below any track
spacing (4.5-5.5 m centre to centre), they are two routes over one set of rails."""

CENTRE_MIN_CLEAR_M = 10.0
"""Least length of a track whose window is clear of other tracks' beds for its profile to
re-centre it; shorter, the line is kept as given."""

CENTRE_PARTS = 5
"""Consecutive parts of a track whose own median profiles must mostly (more than half)
put its centre where the whole track's profile does (:func:`_parts_agree`)."""


def _foreign_stations(frame: TrackFrame, others: Sequence, *, reach_m: float) -> np.ndarray:
    """(n,) stations of ``frame`` whose strip holds the bed of a converging track.

    A track is mirror-symmetric about its centre line only on its own: where another
    track's bed lies within ``reach_m`` of a station and that track runs at an angle
    (:data:`PARALLEL_DEG`, a ladder meeting its yard tracks) or closer than any
    track spacing (:data:`CONVERGE_M`, the two share rails), its rails and ballast sit on
    one side only and pull the symmetry centre towards it. Parallel neighbours at the
    usual spacing sit on both sides alike and keep the station.
    """
    import shapely
    from shapely.geometry import LineString

    n = frame.s_m.shape[0]
    out = np.zeros(n, bool)
    if not others or n == 0:
        return out
    pts = shapely.points(frame.x, frame.y)
    # Along-track direction at every station (the left normal turned right).
    tx, ty = frame.ny, -frame.nx
    cos_par = np.cos(np.radians(PARALLEL_DEG))
    for other in others:
        if not isinstance(other, LineString) or other.is_empty:
            continue
        d = shapely.distance(other, pts)
        near = d < reach_m + BED_HALF_WIDTH_M
        if not near.any():
            continue
        s = shapely.line_locate_point(other, pts[near])
        a = shapely.get_coordinates(shapely.line_interpolate_point(other, s - 0.5))
        b = shapely.get_coordinates(shapely.line_interpolate_point(other, s + 0.5))
        v = b - a
        norm = np.hypot(v[:, 0], v[:, 1])
        cos = np.abs(v[:, 0] * tx[near] + v[:, 1] * ty[near]) / np.maximum(norm, 1e-9)
        bad = (cos < cos_par) | (d[near] < CONVERGE_M)
        out[np.flatnonzero(near)[bad]] = True
    return out


def _parts_agree(
    values: np.ndarray,
    offsets_m: np.ndarray,
    step_m: float,
    centre_m: float,
    max_offset_m: float,
    tol_m: float,
    parts: int = CENTRE_PARTS,
) -> bool:
    """Whether most consecutive parts of a strip put the track's centre at ``centre_m``.

    Parameters
    ----------
    values : numpy.ndarray
        (m, n) strip of one band: ``m`` across-track samples at ``offsets_m`` for each
        of ``n`` stations along the track (NaN where not observed).
    offsets_m : numpy.ndarray
        (m,) across-track offsets, metres, increasing.
    step_m : float
        Station spacing along the track, metres.
    centre_m : float
        Centre found from the whole strip (:func:`symmetry_offset`).
    max_offset_m : float
        Largest correction searched.
    tol_m : float
        How far a part's centre may lie from ``centre_m`` and still agree.
    parts : int
        Number of parts, fewer where a part would be shorter than
        :data:`CENTRE_MIN_CLEAR_M` of stations (at least 3 are needed).

    Returns
    -------
    bool
        True where more than half of the parts' median profiles are most symmetric
        within ``tol_m`` of ``centre_m``.

    Notes
    -----
    A survey error moves a whole line sideways by the same amount: every part of the
    track sees it. Noise about a nearly flat profile (the bed in a reference that does
    not resolve the rails) moves the most symmetric point from part to part.

    Examples
    --------
    >>> o = np.linspace(-4, 4, 49)
    >>> bed = np.exp(-0.5 * ((np.abs(o[:, None] - 0.5) - 0.78) / 0.2) ** 2)
    >>> strip = np.repeat(bed, 200, axis=1)
    >>> _parts_agree(strip, o, 0.25, 0.5, 1.5, 0.25), _parts_agree(strip, o, 0.25, -0.5, 1.5, 0.25)
    (True, False)
    """
    n = values.shape[1]
    k = min(parts, int(n * step_m // CENTRE_MIN_CLEAR_M))
    if k < 3:
        return False
    agree = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for idx in np.array_split(np.arange(n), k):
            c = symmetry_offset(np.nanmedian(values[:, idx], axis=1), offsets_m, max_offset_m)
            agree += abs(c - centre_m) <= tol_m
    return agree > k / 2


def centre_tracks(
    reference: np.ndarray,
    ref_valid: np.ndarray,
    grid,
    tracks: Sequence,
    *,
    max_offset_m: float = CENTRE_MAX_OFFSET_M,
) -> list:
    """Move every track line sideways onto the centre of its bed in the reference image.

    Surveyed or digitised centre lines are rarely better than a metre, and the stack is
    registered to them as a whole; half a metre sideways already puts a rail where the
    detector expects ballast. Each line is offset by :func:`symmetry_offset` of its
    median profile (no change when the profile is too short to tell).

    Returns
    -------
    list of Track
        Same ids, offset lines.

    Notes
    -----
    Only stations whose strip is clear of converging tracks (:func:`_foreign_stations`)
    enter the median profile: at a ladder or turnout the other track's rails and ballast
    lie on one side only and would pull the line off its own rails (a ladder meeting its
    yard tracks at 1:4 was moved 1.2-1.3 m onto them). A track with less than
    :data:`CENTRE_MIN_CLEAR_M` of clear stations is kept as given. Where the clear
    stations and all of them agree within the search's resolution (one across sample),
    all of them decide (more stations, less noise); where they do not, the profile is
    ambiguous and the line is kept as given too. So is it where most parts of the track
    do not put its centre where the whole does (:func:`_parts_agree`): a surveyed line
    is off by the same amount all along, while a stack of 1 m scenes, which does not
    resolve the rails, leaves a bed profile so flat that its most symmetric point
    wanders from part to part and can lock on a bed edge 1.2-1.4 m off (seen on 4 of 45
    yard tracks of the 1.0 m tuning stacks, every one moved towards its neighbour).
    """
    from railwatch.tracks import Track, sample_profile

    out = []
    img = np.where(ref_valid, reference, np.nan).astype(np.float32)
    step = max(0.1, grid.resolution_m / 3)
    for t in tracks:
        strip = sample_profile(img, grid, t.line, step_m=step, half_width_m=CENTRE_WINDOW_M)
        others = [u.line for u in tracks if u is not t]
        clear = ~_foreign_stations(strip.frame, others, reach_m=CENTRE_WINDOW_M)
        c = 0.0
        if clear.sum() * strip.frame.step_m >= CENTRE_MIN_CLEAR_M:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                prof = np.nanmedian(strip.values[0][:, clear], axis=1)
                whole = np.nanmedian(strip.values[0], axis=1)
            c = symmetry_offset(prof, strip.frame.offsets_m, max_offset_m)
            c_whole = symmetry_offset(whole, strip.frame.offsets_m, max_offset_m)
            # Within the search's resolution (one across sample) the converging tracks
            # made no difference, and every station (more of them, less noise) decides.
            # Beyond it the profile is ambiguous (at 1.0 m either estimate can lock on a
            # rail or a bed edge 1.2 m off): the line is kept as given.
            c = c_whole if abs(c - c_whole) <= step + 1e-9 else 0.0
            if c != 0.0 and not _parts_agree(
                strip.values[0],
                strip.frame.offsets_m,
                strip.frame.step_m,
                c,
                max_offset_m,
                grid.resolution_m / 2,
            ):
                c = 0.0
        line = t.line
        if abs(c) >= 0.05 and t.line.length > 10:
            moved = t.line.offset_curve(c)
            if moved.geom_type == "LineString" and not moved.is_empty:
                line = moved
        logger.debug("track %s re-centred by %.2f m", t.track_id, c)
        out.append(Track(t.track_id, line))
    return out

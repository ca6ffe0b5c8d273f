"""Track centre lines: extraction from an image stack, and strips sampled along a line.

Everything here is pure: arrays, a :class:`~railwatch.site.SiteGrid` and shapely
geometries in the grid CRS (metres) go in; lines and sampled arrays come out.

Extraction (:func:`extract_tracks`) looks for two kinds of evidence centred on a track:
the *rail pair* -- both rails as sharp maxima of the thin-line response exactly one half
gauge either side (each date's response, maximum over the dates) -- and, in a single
image, where 0.5 m pixels barely resolve the rails, a *strip* of car-body or ballast-bed
width (3.1-3.9 m) with sharp parallel edges and no stronger edge pair inside it (seen
from the gap between two beds, the neighbours' rails sit at car-body half widths, but the
gap's own edges are nearer and stronger), so a long train is itself evidence of its
track. Lines are traced from the strongest seeds in 1 m steps with a +/-0.5 m lateral
search (+/-1 m while bridging), the direction taken from a quadratic fitted over the last
12 m (curves are followed without lag) and a turning limit (100 m radius), then smoothed
by a local weighted quadratic fit in which rail-pair points weigh most. Beside every
traced track, 0.85 x the track spacing to 6.5 m across, the trace threshold is enough to
seed: a yard of parallel tracks is followed across from its strongest track even where
rails that fall on pixel edges respond at half strength. Rail pairs of the polarity that
the strongest rail pairs rarely show (a yard's rails are mostly dark, or mostly bright;
the gravel between two beds, brighter than both, has two bright edges a gauge apart)
weigh down to a fifth while seeding and tracing, so those edges neither start nor carry
a line.

Where two nearly parallel lines run closer than tracks can (0.85 x the track spacing),
the one whose rails are clearly weaker locally -- rail pair weighted by how much its rails
dominate every other thin line within 2.5 m across, and by how often the strongest rail
pairs of the traced paths show its polarity (a yard's rails are mostly dark, or mostly
bright; the gravel between two beds has two edges a gauge apart of the other polarity)
-- is cut there: this removes most lines along the gaps between beds and along
formation edges. Pieces of one track are
joined when their ends continue each other, judged 10 m inside the ends (traces veer off
at their ends), or when their ends overlap, running on each other for 8 m or more. In a
stack, pieces up to 60 m apart are also joined where one curve fits both ends (a lateral
step of up to a gauge, as between traces along either rail, but no turn their own
curvature does not explain) and the rails show along most of the bridge.

Known limits (docs/accuracy.md): in a stack the rail-pair seeds also fire between tracks
and along formation edges, and not all such lines are cut (precision about 0.95 on the
tuning seeds, 0.89 in a yard whose lines 1.5-2.5 m beside a track have rail pairs as
strong as the track's); cutting fragments lines (about 1.6 pieces per track on the tuning seeds
after the gap join, mostly at turnouts and ladders, where short connectors share their
ends with the through tracks, and where a trace crosses over to the next track); in single images
lines also run along formation edges and past the yard ends; a dark car's shadow pulls a
strip-only line sideways by up to half the shadow width.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from scipy import ndimage as ndi
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from railwatch.align import nanmedian_stack
from railwatch.site import SiteGrid

__all__ = [
    "Track",
    "Strip",
    "TrackFrame",
    "tracks_from_lines",
    "track_frame",
    "sample_profile",
    "sample_frame",
    "extract_tracks",
    "world_to_pixel",
]

logger = logging.getLogger(__name__)

RAIL_HALF_GAUGE_M = 0.76
"""Half the distance between rail centres (1520 mm gauge plus rail head)."""


@dataclass(frozen=True, slots=True)
class Track:
    """One track centre line.

    Attributes
    ----------
    track_id : str
        ``T1``, ``T2``, ... for extracted tracks; the site file's id otherwise.
    line : shapely.geometry.LineString
        Centre line in the grid CRS, metres.
    """

    track_id: str
    line: LineString

    @property
    def length_m(self) -> float:
        """Length of the centre line, metres."""
        return float(self.line.length)


def tracks_from_lines(lines: Sequence[tuple[str, LineString]]) -> list[Track]:
    """Wrap (track_id, line) pairs, dropping empty or degenerate lines.

    Parameters
    ----------
    lines : sequence of (str, LineString)
        Centre lines in the grid CRS.

    Returns
    -------
    list of Track

    Examples
    --------
    >>> from shapely.geometry import LineString
    >>> [t.track_id for t in tracks_from_lines([("A", LineString([(0, 0), (10, 0)]))])]
    ['A']
    """
    out = []
    for tid, line in lines:
        if line is None or line.is_empty or line.length <= 0:
            logger.warning("track %s has no length; ignored", tid)
            continue
        out.append(Track(str(tid), LineString(line.coords)))
    return out


# --------------------------------------------------------------------------- sampling


def world_to_pixel(grid: SiteGrid, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractional (row, col) array coordinates of map points (pixel centres at integers)."""
    t = grid.transform
    col = (np.asarray(x) - t.c) / t.a - 0.5
    row = (np.asarray(y) - t.f) / t.e - 0.5
    return row, col


@dataclass(frozen=True, slots=True)
class TrackFrame:
    """Sampling geometry of a strip along a line: stations and their across-track offsets.

    Attributes
    ----------
    s_m : numpy.ndarray
        (n,) distance of each station along the line, metres.
    offsets_m : numpy.ndarray
        (m,) across-track offsets, metres, positive to the left of the line direction.
    x, y : numpy.ndarray
        (n,) station coordinates in the grid CRS.
    nx, ny : numpy.ndarray
        (n,) unit normal (left) at each station.
    rows, cols : numpy.ndarray
        (m, n) fractional pixel coordinates of every sample.
    step_m : float
        Station spacing, metres.
    """

    s_m: np.ndarray
    offsets_m: np.ndarray
    x: np.ndarray
    y: np.ndarray
    nx: np.ndarray
    ny: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    step_m: float


@dataclass(frozen=True, slots=True)
class Strip:
    """Values sampled on a :class:`TrackFrame`.

    Attributes
    ----------
    frame : TrackFrame
    values : numpy.ndarray
        (bands, m, n) float32; NaN outside the image.
    """

    frame: TrackFrame
    values: np.ndarray


def _stations(line: LineString, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    coords = np.asarray(line.coords, dtype=float)[:, :2]
    seg = np.hypot(*np.diff(coords, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.clip(s, 0.0, cum[-1])
    return np.interp(s, cum, coords[:, 0]), np.interp(s, cum, coords[:, 1])


def track_frame(
    grid: SiteGrid,
    line: LineString,
    *,
    step_m: float,
    half_width_m: float,
    across_step_m: float | None = None,
) -> TrackFrame:
    """Stations every ``step_m`` along ``line`` with samples across it.

    Parameters
    ----------
    grid : SiteGrid
    line : LineString
        Centre line in the grid CRS.
    step_m : float
        Along-track spacing, metres.
    half_width_m : float
        Samples span ``[-half_width_m, +half_width_m]`` across the line.
    across_step_m : float, optional
        Across-track spacing; ``step_m`` by default.

    Returns
    -------
    TrackFrame
    """
    length = float(line.length)
    n = max(1, int(math.floor(length / step_m)))
    s = (np.arange(n) + 0.5) * (length / n)
    x, y = _stations(line, s)
    # Tangent from points 1 m either side, so polyline vertices do not jerk the normal.
    h = max(1.0, step_m)
    x1, y1 = _stations(line, s + h)
    x0, y0 = _stations(line, s - h)
    tx, ty = x1 - x0, y1 - y0
    norm = np.hypot(tx, ty)
    norm[norm == 0] = 1.0
    tx, ty = tx / norm, ty / norm
    nx, ny = -ty, tx
    a_step = across_step_m or step_m
    k = max(1, int(round(half_width_m / a_step)))
    offsets = np.linspace(-half_width_m, half_width_m, 2 * k + 1)
    px = x[None, :] + offsets[:, None] * nx[None, :]
    py = y[None, :] + offsets[:, None] * ny[None, :]
    rows, cols = world_to_pixel(grid, px, py)
    return TrackFrame(s, offsets, x, y, nx, ny, rows, cols, float(length / n))


def sample_frame(image: np.ndarray, frame: TrackFrame) -> np.ndarray:
    """Bilinear samples of ``image`` ((H, W) or (bands, H, W)) on ``frame``.

    Returns
    -------
    numpy.ndarray
        (bands, m, n) float32, NaN where a sample falls outside the image.
    """
    img = image[None] if image.ndim == 2 else image
    h, w = img.shape[-2:]
    coords = np.stack([frame.rows.ravel(), frame.cols.ravel()])
    inside = (
        (coords[0] >= -0.5) & (coords[0] <= h - 0.5) & (coords[1] >= -0.5) & (coords[1] <= w - 0.5)
    )
    out = np.empty((img.shape[0], coords.shape[1]), dtype=np.float32)
    for b in range(img.shape[0]):
        out[b] = ndi.map_coordinates(
            img[b].astype(np.float32, copy=False), coords, order=1, mode="nearest", prefilter=False
        )
    out[:, ~inside] = np.nan
    return out.reshape(img.shape[0], *frame.rows.shape)


def sample_profile(
    image: np.ndarray,
    grid: SiteGrid,
    line: LineString,
    *,
    step_m: float,
    half_width_m: float,
) -> Strip:
    """Sample a strip of ``image`` along ``line``.

    Parameters
    ----------
    image : numpy.ndarray
        (H, W) or (bands, H, W) on ``grid``.
    grid : SiteGrid
    line : LineString
        Centre line in the grid CRS.
    step_m : float
        Along- and across-track spacing, metres.
    half_width_m : float
        Half width of the strip, metres.

    Returns
    -------
    Strip
        ``values[b, j, i]`` is band ``b`` at offset ``frame.offsets_m[j]`` and station
        ``frame.s_m[i]``.

    Examples
    --------
    >>> from affine import Affine
    >>> g = SiteGrid("EPSG:32652", Affine(1, 0, 0, 0, -1, 10), 10, 10)
    >>> img = np.tile(np.arange(10, dtype="float32"), (10, 1))
    >>> st = sample_profile(img, g, LineString([(0, 5), (10, 5)]), step_m=1, half_width_m=1)
    >>> st.values.shape, float(st.values[0, 1, 3])
    ((1, 3, 10), 3.0)
    """
    frame = track_frame(grid, line, step_m=step_m, half_width_m=half_width_m)
    return Strip(frame, sample_frame(image, frame))


# --------------------------------------------------------------------------- extraction

GAUGE_M = 2 * RAIL_HALF_GAUGE_M
"""Distance between rail centre lines (1520 mm gauge; 1435 mm is 0.09 m narrower)."""
CAR_HALF_WIDTH_M = 1.6
"""Half the body width of a freight car (DOMAIN.md: 3.1-3.3 m)."""
STRIP_HALF_WIDTHS_M = (1.55, 1.75, 1.95)
"""Half widths tried for the strip centred on a track: car body (3.1-3.3 m), ballast bed
(top 3-4 m)."""
MIN_RADIUS_M = 100.0
"""Sharpest curve a traced line may follow (yards: >= ~150 m; some slack for noise)."""
MAX_STACK_DATES = 24
"""Dates whose rail responses are combined; more are thinned evenly over the stack."""
_STEP_M = 1.0
_FIT_WINDOW_M = 12.0
_LATERAL_M = 0.5
_DUPLICATE_RUN_M = 25.0
_PEAK_DELTA_M = 0.3
"""A rail must respond more at one half gauge than this much nearer or farther out."""
_EDGE_DELTA_M = 0.2
"""A strip edge must be stronger than the gradient this much inside and outside it."""
_MIXED_EDGE_WEIGHT = 0.7
_STRIP_RANK_WEIGHT = 0.3
_CONFLICT_SHARE = 0.85
"""Two nearly parallel lines closer than this share of the track spacing are not both tracks."""
_PARALLEL_DEG = 15.0
_CONFLICT_MARGIN = 1.25
"""The stronger line must beat the other's local evidence by this factor to cut it."""
_MIN_CUT_STATIONS = 4
_PROFILE_CAP = 3.0
_PROFILE_WINDOW_M = 15.0
_BAND_M = 2.5
"""Half width of the band across a line in which its rails must be the strongest lines."""
_SHIFT_M = 0.5
_CENTRE_M = 0.4
"""Lines this close to the centre (an oil stain between the rails) are not rivals."""
_STRIP_INNER_M = (0.5, 0.75, 1.0)
"""Half widths of symmetric edge pairs inside a strip that must not beat its own edges."""
_STACK_GAP_M = 10.0
"""Longest stretch a trace in a stack (three dates or more) bridges without evidence."""
_NEIGHBOUR_FAR_M = 6.5
"""Seeds at the trace threshold are taken from 0.85 x spacing up to this far from a track."""
_JOIN_TRIM_M = 10.0
"""Joining ignores the last metres of each end (traces veer off at their ends for up to
about 10 m where they lose the rails)."""
_JOIN_SPAN_M = 15.0
_JOIN_MAX_DEG = 6.0
_JOIN_LATERAL_M = 0.8
_SEED_Z = 6.0
_GAP_TRIM_M = 10.0
"""Stack-only gap join (:func:`_join_gaps`): hooked end metres left out of an end's fit
(tried once, twice and three times over, :data:`_GAP_TRIMS`)."""
_GAP_TRIMS = ((1, 1), (2, 1), (1, 2), (2, 2), (3, 1), (1, 3), (3, 2), (2, 3), (3, 3))
_GAP_SPAN_M = 30.0
"""Metres of an end fitted inside its hook."""
_GAP_MAX_M = 60.0
"""Longest gap joined (between the ends inside their hooks)."""
_GAP_STEP_M = 1.6
"""Largest lateral step between two ends of one track (traced along either rail)."""
_GAP_RMS_M = 0.3
"""Largest misfit (rms) of either end to the one curve through both."""
_GAP_CURV_M = 1.0 / 250.0
"""Largest change of curvature (1/m) from an end's own fit to the joint curve."""
_GAP_TURN_DEG = 5.0
"""Largest turn between two ends beyond what their own curvature explains."""
_GAP_SEEN = 0.5
"""Least share of a bridge's metres with rail-pair or strip evidence."""
_OVERLAP_LATERAL_M = 1.0
"""Stations of a line this close to another line run on it."""
_OVERLAP_MAX_DEG = 10.0
_OVERLAP_HOOK_M = 15.0
"""Longest hooked end (veering off the track) ignored when ends overlap."""
_OVERLAP_RUN_M = 8.0
"""Two lines share a track where one runs on the other at least this far."""
_OVERLAP_BEYOND_M = 10.0
_OVERLAP_ALONGSIDE_M = 1.2
_TRACE_Z = 3.0
_SEED_REL = 0.2
"""Seeds also need this share of the strongest responses (99.5th percentile)."""
_STACK_SEED_REL = 0.4
"""The same in a stack, whose maximum over dates lifts the noise as well."""
_POLARITY_TOP_PCT = 75.0
"""The yard's rail polarity is read from the rail-pair points of the traced paths whose
rails respond more strongly than this percentile of them."""
_POLARITY_POWER = 4.0
_POLARITY_MIN = 0.2
"""Weight of the rail polarity seen on (almost) none of the strongest rail pairs."""
_SEED_POLARITY_PCT = 99.0
"""Before tracing, the polarity is read from the pixels whose rail pair responds above this
percentile."""

STACK_MIN_IMAGES = 3
"""From this many dates the input is a stack (maximum over dates, polarity voted on)
rather than one or two images with their own seed floors."""

# Per-pixel evidence runs in about this many pieces (a process pool's tasks), each of at
# least / at most this many pixels.
_PIECES = 16
_MIN_PIECE_PX = 4_000
_MAX_PIECE_PX = 100_000

Mapper = Callable[..., list[Any]]
"""``mapper(func, args, shared=kwargs)`` returns ``[func(*a, **kwargs) for a in args]``, in
order, however it runs them (serially, on a process pool, on a cluster):
``railwatch.pipeline.Executor.map`` is one."""


def _filled(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    img = np.asarray(image, dtype=np.float32)
    if valid.all():
        return img
    fill = float(np.median(img[valid])) if valid.any() else 0.0
    return np.where(valid, img, fill).astype(np.float32)


def _robust_sigma(values: np.ndarray) -> float:
    if values.size == 0:
        return 1.0
    med = float(np.median(values))
    return 1.4826 * float(np.median(np.abs(values - med))) + 1e-9


_SINGLE_SEED_REL = 0.4
"""In a single image (floors in clutter units), seeds need this share of the strongest
responses."""
_MINOR_NOISE_RATIO = 0.72
"""Robust spread of the smaller Hessian eigenvalue over that of the Laplacian in white noise."""


def _rail_sigma_px(resolution_m: float) -> float:
    """Scale (pixels) of the thin-line filters: half the half gauge, within 0.6-3 px."""
    return float(np.clip(0.5 * RAIL_HALF_GAUGE_M / resolution_m, 0.6, 3.0))


def _isotropic_share(
    images: Sequence[np.ndarray], valids: Sequence[np.ndarray], res: float
) -> float:
    """Isotropic clutter (noise, ground texture) as a share of the maps' line noise units.

    :func:`rail_maps` divides each image's thin-line response by the robust spread of
    its Laplacian over the whole image. Where the image is mostly yard, that spread is
    the yard's own rails, bed edges and cars rather than clutter. Rails, bed and car
    edges are straight along the track: their smaller Hessian eigenvalue (along the
    line) is near zero, while noise and ground texture have both. The spread of the
    smaller eigenvalue, scaled by its ratio to the Laplacian's in white noise
    (:data:`_MINOR_NOISE_RATIO`), is therefore the clutter, whatever share of the image the
    yard covers. At most 1; the largest over the images.
    """
    sigma = _rail_sigma_px(res)
    share = 0.0
    for image, valid in zip(images, valids, strict=True):
        valid = np.asarray(valid, bool)
        ok = ndi.binary_erosion(valid, iterations=max(1, math.ceil(3 * sigma)), border_value=1)
        if not ok.any():
            continue
        minor, lap = _minor_and_laplacian(_filled(image, valid), sigma)
        clutter = _robust_sigma(minor[ok][::7]) / _MINOR_NOISE_RATIO
        share = max(share, clutter / _robust_sigma(lap[ok][::7]))
    return min(1.0, share or 1.0)


def _along_gradient_share(maps: RailMaps) -> float:
    """Clutter of the gradient map as a share of its noise units (at most 1).

    The same argument as :func:`_isotropic_share` for strip edges: bed and car-body edges
    run along the track, so the gradient along the local line direction
    (:attr:`RailMaps.theta`) holds noise and ground texture but hardly any edge, and in
    white noise it spreads as each gradient component does.
    """
    obs = maps.observed
    if not obs.any():
        return 1.0
    along = maps.grad_r * np.cos(maps.theta) + maps.grad_c * np.sin(maps.theta)
    return min(1.0, _robust_sigma(along[obs][::5]))


def _hessian(img: np.ndarray, sigma_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Half the trace of the Gaussian Hessian and the half spread of its eigenvalues."""
    g = ndi.gaussian_filter1d
    hrr = g(g(img, sigma_px, axis=1), sigma_px, axis=0, order=2)
    hcc = g(g(img, sigma_px, axis=0), sigma_px, axis=1, order=2)
    hrc = g(g(img, sigma_px, axis=0, order=1), sigma_px, axis=1, order=1)
    tr = 0.5 * (hrr + hcc)
    disc = np.sqrt(0.25 * (hrr - hcc) ** 2 + hrc * hrc)
    return tr, disc


def _minor_and_laplacian(img: np.ndarray, sigma_px: float) -> tuple[np.ndarray, np.ndarray]:
    """The Hessian eigenvalue smaller in magnitude, and half the Laplacian (scale-normed)."""
    tr, disc = _hessian(img, sigma_px)
    minor = np.where(tr >= 0, tr - disc, tr + disc)
    return minor * sigma_px**2, tr * sigma_px**2


def _line_responses(img: np.ndarray, sigma_px: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin dark- and bright-line strength (Hessian eigenvalues) and the Laplacian."""
    tr, disc = _hessian(img, sigma_px)
    s2 = np.float32(sigma_px * sigma_px)
    dark = np.maximum(tr + disc, 0.0) * s2
    bright = np.maximum(disc - tr, 0.0) * s2
    return dark, bright, tr * s2


@dataclass(frozen=True, slots=True)
class RailMaps:
    """Stack-combined evidence for track extraction.

    Attributes
    ----------
    dark, bright : numpy.ndarray
        (H, W) float32: strongest thin dark / bright line response over the dates, in
        units of each date's noise.
    grad_r, grad_c : numpy.ndarray
        (H, W) float32: gradient (rows, columns) of the single image or of the per-pixel
        median of the stack (ballast beds and long-parked trains), in units of its noise.
    observed : numpy.ndarray
        (H, W) bool: observed on at least one date.
    theta : numpy.ndarray
        (H, W) float32: local along-line angle in (row, col), radians.
    stacked : numpy.ndarray
        (H + 2, W + 2, 4) float32: ``dark``, ``bright``, ``grad_r``, ``grad_c`` with a
        zero border, for sampling all four at once.
    """

    dark: np.ndarray
    bright: np.ndarray
    grad_r: np.ndarray
    grad_c: np.ndarray
    observed: np.ndarray
    theta: np.ndarray
    stacked: np.ndarray


def rail_maps(
    images: Sequence[np.ndarray], valids: Sequence[np.ndarray], resolution_m: float
) -> RailMaps:
    """Combine a stack (or one image) into rail-line and strip-edge evidence.

    Parameters
    ----------
    images, valids : sequences of (H, W) arrays
        Co-registered gray images and their valid masks.
    resolution_m : float
        Pixel size, metres.

    Returns
    -------
    RailMaps

    Notes
    -----
    Trains hide rails, but not on every date: the maximum over dates of each date's
    noise-normalised thin-line response shows a rail wherever some date saw it. At most
    :data:`MAX_STACK_DATES` dates, spread evenly over the stack, are used.
    """
    n = len(images)
    pick = np.unique(np.linspace(0, n - 1, min(n, MAX_STACK_DATES)).round().astype(int))
    half_px = RAIL_HALF_GAUGE_M / resolution_m
    sigma = float(np.clip(0.5 * half_px, 0.6, 3.0))
    erode = max(1, int(math.ceil(3 * sigma)))
    shape = np.shape(images[0])
    dark = np.zeros(shape, np.float32)
    bright = np.zeros(shape, np.float32)
    observed = np.zeros(shape, bool)
    stack = []
    for i in pick:
        valid = np.asarray(valids[i], bool)
        if not valid.any():
            continue
        img = _filled(images[i], valid)
        d, b, lap = _line_responses(img, sigma)
        ok = ndi.binary_erosion(valid, iterations=erode, border_value=1)
        noise = _robust_sigma(lap[ok][::7]) if ok.any() else 1.0
        np.maximum(dark, np.where(ok, d / noise, 0), out=dark)
        np.maximum(bright, np.where(ok, b / noise, 0), out=bright)
        observed |= ok
        stack.append(np.where(valid, img, np.nan))
    if len(stack) == 1:
        body = np.nan_to_num(stack[0], nan=0.0).astype(np.float32)
    elif stack:
        body = np.nan_to_num(nanmedian_stack(np.stack(stack)), nan=0.0).astype(np.float32)
    else:
        body = np.zeros(shape, np.float32)
    gsig = max(0.6, 0.35 / resolution_m)
    grad_r = ndi.gaussian_filter(body, gsig, order=(1, 0))
    grad_c = ndi.gaussian_filter(body, gsig, order=(0, 1))
    if observed.any():
        g_noise = _robust_sigma(np.concatenate([grad_r[observed][::5], grad_c[observed][::5]]))
    else:
        g_noise = 1.0
    grad_r /= g_noise
    grad_c /= g_noise
    # Along-line direction: across the ridges of the combined line map.
    m = dark + bright
    gr = ndi.gaussian_filter(m, sigma, order=(1, 0))
    gc = ndi.gaussian_filter(m, sigma, order=(0, 1))
    win = 2.0 / resolution_m
    jrr = ndi.gaussian_filter(gr * gr, win)
    jcc = ndi.gaussian_filter(gc * gc, win)
    jrc = ndi.gaussian_filter(gr * gc, win)
    theta = (0.5 * np.arctan2(2 * jrc, jrr - jcc) + np.pi / 2).astype(np.float32)
    stacked = np.zeros((shape[0] + 2, shape[1] + 2, 4), np.float32)
    for k, arr in enumerate((dark, bright, grad_r, grad_c)):
        stacked[1:-1, 1:-1, k] = arr
    return RailMaps(dark, bright, grad_r, grad_c, observed, theta, stacked)


def _shifted(arr: np.ndarray, dr: np.ndarray, dc: np.ndarray) -> np.ndarray:
    h, w = arr.shape
    rr, cc = np.mgrid[0:h, 0:w].astype(np.float32)
    return ndi.map_coordinates(arr, [rr + dr, cc + dc], order=1, mode="nearest", prefilter=False)


def _evidence(
    stacked: np.ndarray,
    pts: np.ndarray,
    normal: np.ndarray,
    along: np.ndarray,
    res: float,
    *,
    inner: bool = True,
    polarity: tuple[float, float] | None = (1.0, 1.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Rail-pair and strip evidence at points (k, 2) with unit normals and directions (k, 2).

    ``stacked`` is :attr:`RailMaps.stacked`.

    Returns
    -------
    rail : numpy.ndarray
        (k,) both rails present as *sharp* maxima of the thin-line response exactly one
        half gauge either side (higher there than :data:`_PEAK_DELTA_M` nearer or farther
        out, so a fence and its shadow 1 m apart or the two edges of a dark strip do not
        pass), in line-noise units; the weaker rail counts; best of both polarities,
        each weighted by ``polarity`` (dark, bright). With ``polarity=None``: (2, k), the
        dark and the bright rail pairs.
    strip : numpy.ndarray
        (k,) a strip of car-body or ballast-bed width centred on the point: opposite,
        equally signed outward edges at one of :data:`STRIP_HALF_WIDTHS_M` either side,
        each a sharp maximum of the gradient (stronger than :data:`_EDGE_DELTA_M` inside
        and outside it, so the narrower strip between two tracks does not pass), in
        gradient-noise units. With ``inner`` (the default), a strip counts only as far as
        no equally signed edge pair at :data:`_STRIP_INNER_M` across beats its own edges
        (strip times the squared ratio): the gap between two beds is not a strip.
    """
    taps = np.array([-0.5, 0.0, 0.5]) / res
    p = pts[:, None, :] + taps[None, :, None] * along[:, None, :]
    h = RAIL_HALF_GAUGE_M / res
    dl = _PEAK_DELTA_M / res
    rail_offs = np.array([h, h - dl, h + dl, -h, -(h - dl), -(h + dl)])
    de = _EDGE_DELTA_M / res
    widths = [half_m / res for half_m in STRIP_HALF_WIDTHS_M]
    strip_offs = np.array([s * x for w in widths for s in (1.0, -1.0) for x in (w, w - de, w + de)])
    inner_m = _STRIP_INNER_M if inner else ()
    inner_offs = np.array([s * m / res for m in inner_m for s in (1.0, -1.0)])
    strip_offs = np.concatenate([strip_offs, inner_offs])
    offs = np.concatenate([rail_offs, strip_offs])
    # (offsets, k, taps, 2) sample points; all four maps at once, averaged over the taps.
    q = p[None] + offs[:, None, None, None] * normal[None, :, None, :]
    v = _bilinear(stacked, q).mean(axis=2)  # (offsets, k, 4)
    nr = len(rail_offs)
    pairs = np.zeros((2, len(pts)), np.float32)
    for ch in (0, 1):
        m = v[:nr, :, ch]
        sides = [np.where(m[i] >= np.maximum(m[i + 1], m[i + 2]), m[i], 0.0) for i in (0, 3)]
        pairs[ch] = np.minimum(sides[0], sides[1])
    rail = pairs if polarity is None else np.maximum(polarity[0] * pairs[0], polarity[1] * pairs[1])
    # Outward gradient (positive: brighter outwards) at each offset.
    sign = np.sign(strip_offs)[:, None]
    g_all = sign * (v[nr:, :, 2] * normal[None, :, 0] + v[nr:, :, 3] * normal[None, :, 1])
    strip = np.zeros(len(pts), np.float32)
    for k in range(len(widths)):
        outs = []
        for side in (0, 1):
            i = 6 * k + 3 * side
            g = g_all[i]
            peak = np.abs(g) >= np.maximum(np.abs(g_all[i + 1]), np.abs(g_all[i + 2]))
            outs.append(np.where(peak, g, 0.0))
        # Same sign: a strip brighter or darker than both sides. Opposite signs: a body
        # between ground and its own shadow (a red car: darker than the ground, brighter
        # than the shadow), weighed less.
        same = np.where(outs[0] * outs[1] > 0, 1.0, _MIXED_EDGE_WEIGHT)
        val = same * np.minimum(np.abs(outs[0]), np.abs(outs[1]))
        np.maximum(strip, val, out=strip)
    # Nothing inside the strip may look more like a strip's edges than its own edges do:
    # seen from the middle of the gap between two beds, the neighbours' rails and stains
    # sit at car-body half widths, but the gap's own edges, nearer in, are stronger.
    inside_edges = np.zeros(len(pts), np.float32)
    base = 6 * len(widths)
    for k in range(len(inner_m)):
        ga, gb = g_all[base + 2 * k], g_all[base + 2 * k + 1]
        val = np.where(ga * gb > 0, np.minimum(np.abs(ga), np.abs(gb)), 0.0)
        np.maximum(inside_edges, val, out=inside_edges)
    ratio = np.minimum(strip / np.maximum(inside_edges, 1e-6), 1.0)
    return rail, strip * ratio**2


def _bilinear(stacked: np.ndarray, rc: np.ndarray) -> np.ndarray:
    """Bilinear samples of a zero-bordered (H + 2, W + 2, C) array at (..., 2) (row, col)."""
    hp, wp, nch = stacked.shape
    flat = stacked.reshape(-1, nch)
    r = np.clip(rc[..., 0].ravel() + 1.0, 0.0, hp - 1.001)
    c = np.clip(rc[..., 1].ravel() + 1.0, 0.0, wp - 1.001)
    r0 = r.astype(np.intp)
    c0 = c.astype(np.intp)
    fr = (r - r0).astype(np.float32)[:, None]
    fc = (c - c0).astype(np.float32)[:, None]
    i = r0 * wp + c0
    a = np.take(flat, i, axis=0)
    b = np.take(flat, i + 1, axis=0)
    top = a + (b - a) * fc
    a = np.take(flat, i + wp, axis=0)
    b = np.take(flat, i + wp + 1, axis=0)
    out = top + (a + (b - a) * fc - top) * fr
    return out.reshape(*rc.shape[:-1], nch)


def _dense_evidence(
    maps: RailMaps, inside: np.ndarray, res: float, mapper: Mapper | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_evidence` at every pixel inside, in pieces run by ``mapper``.

    Returns the dark and the bright rail pairs, the strip and the sub-pixel offset.
    """
    rc = np.argwhere(inside)
    theta = maps.theta[inside]
    size = int(np.clip(math.ceil(len(rc) / _PIECES), _MIN_PIECE_PX, _MAX_PIECE_PX))
    pieces = [(rc[a : a + size], theta[a : a + size], res) for a in range(0, len(rc), size)]
    run = mapper if mapper is not None else _serial
    done = run(_evidence_piece, pieces, shared={"stacked": maps.stacked})
    sel = tuple(rc.T)
    out = []
    for k in range(3):
        arr = np.zeros((2, *inside.shape) if k == 0 else inside.shape, np.float32)
        if done:
            arr[(..., *sel)] = np.concatenate([piece[k] for piece in done], axis=-1)
        out.append(arr)
    return out[0][0], out[0][1], out[1], out[2]


def _serial(
    func: Callable[..., Any], args: list[tuple[Any, ...]], *, shared: dict[str, Any]
) -> list[Any]:
    return [func(*a, **shared) for a in args]


def _evidence_piece(
    rc: np.ndarray, theta: np.ndarray, res: float, *, stacked: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rail and strip evidence at pixels ``rc`` (k, 2) across their directions ``theta``.

    The rail evidence is (2, k): dark and bright rail pairs. Each pixel is tried a quarter
    pixel either side across the line (the rail test needs the centre to within a third of
    a pixel); the better try is kept, and its offset (pixels along the normal) is returned
    so that seeds start on it.
    """
    rc = rc.astype(np.float64)
    th = theta.astype(np.float64)
    along = np.column_stack([np.cos(th), np.sin(th)])
    normal = np.column_stack([-along[:, 1], along[:, 0]])
    best: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    for off in (-0.25, 0.25):
        r, s = _evidence(stacked, rc + off * normal, normal, along, res, polarity=None)
        if best is None:
            best = (r, s, np.full(len(s), off))
            continue
        better = r.max(axis=0) + s > best[0].max(axis=0) + best[1]
        best = (np.maximum(best[0], r), np.maximum(best[1], s), np.where(better, off, best[2]))
    assert best is not None
    return best


def _along_mean(arr: np.ndarray, theta: np.ndarray, length_px: float, taps: int) -> np.ndarray:
    tr_, tc_ = np.cos(theta), np.sin(theta)
    out = np.zeros_like(arr)
    for k in np.linspace(-length_px / 2, length_px / 2, taps):
        out += arr if k == 0 else _shifted(arr, tr_ * k, tc_ * k)
    return out / taps


class _Tracer:
    """Follows a track from a seed, one step at a time, on rail-pair and strip evidence."""

    def __init__(
        self,
        maps: RailMaps,
        res: float,
        *,
        rail_lo: float,
        strip_lo: float,
        max_gap_m: float,
    ) -> None:
        self.maps = maps
        self.res = res
        self.rail_lo = rail_lo
        self.strip_lo = strip_lo
        self.max_gap_px = max_gap_m / res
        self.step = _STEP_M / res
        self.offsets = np.arange(-_LATERAL_M, _LATERAL_M + 1e-9, 0.125) / res
        self.wide_offsets = np.arange(-2 * _LATERAL_M, 2 * _LATERAL_M + 1e-9, 0.125) / res
        self.max_turn = _STEP_M / MIN_RADIUS_M
        self.max_curv = 1.0 / (MIN_RADIUS_M / res)
        self.fit_n = max(3, int(round(_FIT_WINDOW_M / _STEP_M)))
        h, w = maps.observed.shape
        self.shape = (h, w)
        self.owner = np.full((h, w), -1, np.int32)
        self.claim_px = max(1.0, 1.2 / res)
        # Weights of dark and bright rail pairs: while tracing, the yard's polarity from
        # the strongest responses (:func:`_seed_polarity`); in :func:`_profile`, from the
        # traced paths (:func:`_rail_polarity`).
        self.polarity = (1.0, 1.0)

    def score(self, pts: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Combined score and rail / strip evidence (in threshold units) at points (k, 2)."""
        nrm = np.array([-d[1], d[0]])
        k = len(pts)
        rail, strip = _evidence(
            self.maps.stacked,
            pts,
            np.broadcast_to(nrm, (k, 2)),
            np.broadcast_to(d, (k, 2)),
            self.res,
            # Step by step, the inner-edge test would let the diverging bed at a switch
            # pull a through line sideways; seeds and the parallel check use it.
            inner=False,
            polarity=self.polarity,
        )
        r, s = rail / self.rail_lo, strip / self.strip_lo
        return r + s, r, s

    def inside(self, p: np.ndarray) -> bool:
        r, c = int(round(p[0])), int(round(p[1]))
        h, w = self.shape
        return 0 <= r < h and 0 <= c < w and bool(self.maps.observed[r, c])

    def claimed_by(self, p: np.ndarray, me: int) -> int:
        r, c = int(round(p[0])), int(round(p[1]))
        h, w = self.shape
        if not (0 <= r < h and 0 <= c < w):
            return -1
        o = int(self.owner[r, c])
        return o if o != me else -1

    def best_direction(self, seed: np.ndarray, theta: float) -> np.ndarray:
        angles = theta + np.radians(np.arange(-20, 20.1, 2.0))
        best, best_e = angles[len(angles) // 2], -np.inf
        span = np.arange(-4.0, 4.01, 1.0) / self.res
        for a in angles:
            d = np.array([math.cos(a), math.sin(a)])
            e = float(self.score(seed + span[:, None] * d, d)[0].mean())
            if e > best_e:
                best, best_e = a, e
        return np.array([math.cos(best), math.sin(best)])

    def walk(self, seed: np.ndarray, d: np.ndarray, me: int) -> tuple[list, list]:
        """Points and their evidence kind (2 rail pair, 1 strip, 0 bridged) from seed on."""
        pts = [seed.copy()]
        kinds = [2]
        gap = 0.0
        claim_run = 0.0
        claim_start = None
        for _ in range(100_000):
            p = pts[-1] + self.step * d
            if not self.inside(p):
                break
            nrm = np.array([-d[1], d[0]])
            # Search wider while bridging, to pick the rails up again past a train.
            offsets = self.offsets if gap == 0 else self.wide_offsets
            cands = p + offsets[:, None] * nrm
            score, r, s = self.score(cands, d)
            # Prefer staying on the predicted line when the evidence is flat across.
            score = score - 1.0 * np.abs(offsets) * self.res
            j = int(np.argmax(score))
            kind = 0
            if r[j] >= 1.0 or s[j] >= 1.0:
                p, kind = cands[j], (2 if r[j] >= 1.0 else 1)
            pts.append(p)
            kinds.append(kind)
            gap = 0.0 if kind else gap + self.step
            if gap > self.max_gap_px:
                break
            if self.claimed_by(p, me) >= 0:
                if claim_start is None:
                    claim_start = len(pts) - 1
                claim_run += self.step
                if claim_run * self.res > _DUPLICATE_RUN_M:
                    del pts[claim_start:], kinds[claim_start:]
                    break
            else:
                claim_run, claim_start = 0.0, None
            d = self._direction(pts, kinds, d)
        while len(kinds) > 1 and kinds[-1] == 0:
            pts.pop()
            kinds.pop()
        return pts, kinds

    def _direction(self, pts: list, kinds: list, d: np.ndarray) -> np.ndarray:
        """Direction at the last point: a circle (parabola) fitted over the last 12 m.

        The fit's slope at the newest point, not the chord, so a curve is followed
        without lagging; its curvature is capped at :data:`MIN_RADIUS_M`.
        """
        sel = [p for p, k in zip(pts[-self.fit_n :], kinds[-self.fit_n :], strict=True) if k > 0]
        if len(sel) < 3:
            return d
        a = np.asarray(sel) - pts[-1]
        nrm = np.array([-d[1], d[0]])
        x, y = a @ d, a @ nrm
        if len(sel) >= 6 and np.ptp(x) > 4.0 / self.res:
            c2, c1, _ = np.polyfit(x, y, 2)
            c2 = float(np.clip(c2, -0.5 * self.max_curv, 0.5 * self.max_curv))
            slope = float(c1)  # derivative at x = 0, the newest point
        else:
            slope = float(np.polyfit(x, y, 1)[0])
        turn = max(-self.max_turn, min(self.max_turn, math.atan(slope)))
        c, s = math.cos(turn), math.sin(turn)
        return np.array([c * d[0] - s * d[1], s * d[0] + c * d[1]])

    def claim(self, path: np.ndarray, me: int) -> None:
        r = int(math.ceil(self.claim_px))
        h, w = self.shape
        for dr in range(-r, r + 1):
            for dc in range(-r, r + 1):
                if dr * dr + dc * dc > self.claim_px**2:
                    continue
                rr = np.clip(np.round(path[:, 0]).astype(int) + dr, 0, h - 1)
                cc = np.clip(np.round(path[:, 1]).astype(int) + dc, 0, w - 1)
                free = self.owner[rr, cc] < 0
                self.owner[rr[free], cc[free]] = me


def _densify(path: np.ndarray, step: float) -> np.ndarray:
    seg = np.hypot(*np.diff(path, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    if cum[-1] <= 0:
        return path
    s = np.linspace(0, cum[-1], max(2, int(math.ceil(cum[-1] / step)) + 1))
    return np.column_stack([np.interp(s, cum, path[:, 0]), np.interp(s, cum, path[:, 1])])


def _smooth_path(path: np.ndarray, kinds: np.ndarray, half_window: int) -> np.ndarray:
    """Local weighted quadratic fit of a traced path (one point per step).

    Rail-pair points weigh most, strip points less (a dark car's shadow pulls the strip
    centre sideways) and bridged points hardly at all, so the line follows the rails where
    they are seen and runs smoothly (straight, or on a steady curve) through trains.
    """
    n = len(path)
    if n < 4 or half_window < 2:
        return path
    weight = np.choose(np.clip(kinds, 0, 2), [0.02, 0.3, 1.0]).astype(float)
    out = path.copy()
    idx = np.arange(n, dtype=float)
    for i in range(n):
        a, b = max(0, i - half_window), min(n, i + half_window + 1)
        x = idx[a:b] - i
        tri = 1.0 - (np.abs(x) / (half_window + 1)) ** 3
        w = weight[a:b] * tri**3
        if w.sum() <= 0 or np.count_nonzero(w > 1e-6) < 4:
            continue
        basis = np.column_stack([np.ones_like(x), x, x * x])
        lhs = basis.T @ (basis * w[:, None])
        rhs = basis.T @ (path[a:b] * w[:, None])
        try:
            coef = np.linalg.solve(lhs + 1e-9 * np.eye(3), rhs)
        except np.linalg.LinAlgError:
            continue
        out[i] = coef[0]
    return out


def extract_tracks(
    images: Sequence[np.ndarray],
    valids: Sequence[np.ndarray],
    grid: SiteGrid,
    aoi: BaseGeometry,
    *,
    spacing_m: float = 4.5,
    min_length_m: float = 20.0,
    max_gap_m: float = 60.0,
    mapper: Mapper | None = None,
) -> list[Track]:
    """Track centre lines from one or more co-registered gray images.

    Parameters
    ----------
    images : sequence of numpy.ndarray
        (H, W) gray images on ``grid`` (aligned).
    valids : sequence of numpy.ndarray
        (H, W) bool, True where observed.
    grid : SiteGrid
    aoi : shapely geometry
        Area of interest in the grid CRS; lines are clipped to it.
    spacing_m : float
        Minimum centre-to-centre distance of parallel tracks; a weaker line running
        closer than this to a stronger one for most of its length is dropped.
    min_length_m : float
        Shorter lines are dropped.
    max_gap_m : float
        Longest stretch without rail or car-body evidence a line is continued across
        (e.g. under a train in a single image; in a stack at most 10 m); collinear pieces
        up to twice this apart are joined.
    mapper : callable, optional
        Runs the per-pixel evidence (most of the work) in pieces: ``mapper(func, args,
        shared=kwargs)`` must return ``[func(*a, **kwargs) for a in args]`` in order, e.g.
        ``Executor.map`` of :mod:`railwatch.pipeline` on a process pool. Default: one after
        another here. The result does not depend on it.

    Returns
    -------
    list of Track
        Ids ``T1..Tn`` ordered across the dominant track direction (left to right when
        looking along it), then along it.

    Notes
    -----
    1. Evidence (:func:`rail_maps`): thin-line responses of each date (maximum over the
       dates) and the gradient of the image (or of the stack's median).
    2. Seeds: *rail pairs* -- both rails as sharp maxima exactly one half gauge either
       side, so a fence and its shadow 1 m apart do not pass -- and, in a single image,
       *strips* of car-body or bed width with sharp parallel edges and no stronger edge
       pair within 1 m of their centre (not the gap between two beds); averaged over 4 m
       along the local direction, thinned across it, above a threshold in noise units
       that is at least a share of the strongest responses (one snowy date with strong
       rails does not raise it for the rest). In one or two images the noise units are
       taken as the clutter (:func:`_isotropic_share`, :func:`_along_gradient_share`):
       the spread of the image is mostly the yard itself where the yard fills it, and
       hazy or quiet tracks stayed below a floor in those units. In a stack of at least
       :data:`STACK_MIN_IMAGES` dates, rail pairs of the polarity that the
       strongest 1 % of them rarely show weigh less, down to a fifth, here and in tracing
       (:func:`_seed_polarity`).
       Then, repeatedly, seeds at the trace threshold 0.85 ``spacing_m`` to 6.5 m beside
       an already traced track.
    3. Tracing from the strongest free seed in both directions in 1 m steps, each step
       searching +/-0.5 m across (+/-1 m while bridging) for the best evidence, the
       direction from a quadratic fitted over the last 12 m and turned no sharper than a
       100 m radius; stretches without evidence are bridged up to ``max_gap_m`` (in
       a stack, whose dates show the rails or the median the parked train, up to
       10 m: longer bridges drifted across to the next track).
    4. Paths with evidence on less than half their length are dropped; the rest are
       smoothed (local weighted quadratic, rail-pair points weighing most), cut where a
       locally stronger line runs parallel closer than 0.85 ``spacing_m``
       (:func:`_resolve_parallels`; rail pairs of the polarity that the strongest rail
       pairs of the traced paths rarely show weigh less, :func:`_rail_polarity`), cut
       where they run on an already traced line, joined when collinear (ends compared
       10 m inside, within 6 degrees and 0.8 m across) or when their ends overlap,
       running on each other (:func:`_join_overlapping`), in a stack joined across gaps
       of up to 60 m where one curve fits both ends and the bridge shows rail pairs or
       strips on half its metres (:func:`_join_gaps`), and snapped onto another line
       near their ends (turnouts).
    """
    if not images:
        return []
    res = grid.resolution_m
    maps = rail_maps(images, valids, res)
    inside = grid.rasterize(aoi.buffer(2 * res)) & maps.observed
    if not inside.any():
        return []
    dark, bright, strip, sub_px = _dense_evidence(maps, inside, res, mapper)
    # One or two images are too few to vote on the yard's rails: a blurred (resampled)
    # scene's strongest pairs may be the bright gaps, and down-weighting its real rails
    # left a lone scene with no line at all.
    stack = len(images) >= STACK_MIN_IMAGES
    polarity = _seed_polarity(dark, bright, inside) if stack else (1.0, 1.0)
    logger.debug("seed rail polarity weights (dark, bright): %.2f, %.2f", *polarity)
    rail = np.maximum(polarity[0] * dark, polarity[1] * bright)
    along_px = 4.0 / res
    rail = _along_mean(rail, maps.theta, along_px, 5)
    strip = _along_mean(strip, maps.theta, along_px, 5)
    # Thresholds in noise units, raised for images with strong evidence everywhere (a
    # snowy date's rails) so that they stay a share of the strongest responses.
    rel = _STACK_SEED_REL if stack else _SEED_REL
    strip_rel = _SEED_REL
    rail_z = strip_z = _SEED_Z
    if not stack:
        # The maps' units are each image's spread, which in a yard is mostly its rails,
        # bed edges and cars: the floor is meant in units of clutter (noise, ground
        # texture), measured where nothing runs straight. Lowered so, the floor no longer
        # holds the line-like structure of a clear, sharp yard (bed edges, gaps between
        # beds) below the seeds; the share of the strongest responses does.
        rail_z = _SEED_Z * _isotropic_share(images, valids, res)
        strip_z = _SEED_Z * _along_gradient_share(maps)
        rel = strip_rel = _SINGLE_SEED_REL
    rail_hi = max(rail_z, rel * float(np.percentile(rail[inside], 99.5)))
    strip_hi = max(strip_z, strip_rel * float(np.percentile(strip[inside], 99.5)))
    seed_map = rail / rail_hi
    if not stack:
        # One image at 0.5 m often does not resolve the rails: strips (beds, car bodies)
        # carry the line. A stack shows the rails on some date; the strips of its median
        # (a mix of seasons and trains) only help to trace, not to seed.
        seed_map = np.maximum(seed_map, strip / strip_hi)
    nr, nc = np.cos(maps.theta + np.pi / 2), np.sin(maps.theta + np.pi / 2)
    peak = (seed_map >= _shifted(seed_map, nr, nc)) & (seed_map >= _shifted(seed_map, -nr, -nc))
    seeds = np.argwhere(peak & inside & (seed_map >= 1.0))
    order = np.argsort(-seed_map[seeds[:, 0], seeds[:, 1]], kind="stable")
    seeds = seeds[order]
    logger.debug(
        "track seeds: %d (rail threshold %.1f, strip threshold %.1f)", len(seeds), rail_hi, strip_hi
    )
    tracer = _Tracer(
        maps,
        res,
        rail_lo=rail_hi * _TRACE_Z / _SEED_Z,
        strip_lo=strip_hi * _TRACE_Z / _SEED_Z,
        # A stack shows a track's rails on some date, or the train parked on it in its
        # median: a long stretch with neither is no track (the trace drifts across).
        max_gap_m=min(max_gap_m, _STACK_GAP_M) if stack else max_gap_m,
    )
    tracer.polarity = polarity
    paths: list[tuple[np.ndarray, np.ndarray]] = []
    _trace_seeds(seeds, tracer, maps, sub_px, paths)
    # Parallel tracks: one track spacing beside a traced track, the trace threshold is
    # enough to seed (rails on pixel edges respond at half strength, dirt hides them).
    weak = np.argwhere(peak & inside & (seed_map >= _TRACE_Z / _SEED_Z))
    weak = weak[np.argsort(-seed_map[weak[:, 0], weak[:, 1]], kind="stable")]
    _trace_neighbours(
        weak,
        tracer,
        maps,
        sub_px,
        paths,
        near_px=_CONFLICT_SHARE * spacing_m / res,
        far_px=_NEIGHBOUR_FAR_M / res,
        min_length_m=min_length_m,
    )
    tracer.polarity = _rail_polarity(paths, maps, res)
    logger.debug("rail polarity weights (dark, bright): %.2f, %.2f", *tracer.polarity)
    lines = _finish(
        paths,
        grid,
        aoi,
        tracer,
        min_length_m=min_length_m,
        max_gap_m=max_gap_m,
        spacing_m=spacing_m,
        stack=stack,
    )
    # In a single image a line along a formation edge, 2.5-3 m beside the outer track,
    # is no second track: tracks are at least 0.85 x the spacing apart.
    near_m = 0.6 * spacing_m if stack else _CONFLICT_SHARE * spacing_m
    return _order(_drop_duplicates(lines, near_m))


def _rail_polarity(
    paths: list[tuple[np.ndarray, np.ndarray]], maps: RailMaps, res: float
) -> tuple[float, float]:
    """Weights of dark and bright rail pairs: a yard's rails show mostly one polarity.

    Steel rails on ballast look alike all over one yard (dark in their shadows, or bright
    where polished); a pair of thin lines of the other polarity one half gauge either side
    of a line is more often the two edges of the bright gravel between two beds. Among the
    rail-pair points of all traced paths (pixels, (row, col)) those whose weaker rail
    responds above the :data:`_POLARITY_TOP_PCT` percentile vote for the polarity that
    responds more there; each polarity is weighted by its share of the votes relative to
    the winner's, to the power :data:`_POLARITY_POWER`, at least :data:`_POLARITY_MIN`.
    Both weigh 1 when no path has rail-pair points, or when the votes are even.

    Returns
    -------
    (float, float)
        Weights of dark and of bright rail pairs.
    """
    h = RAIL_HALF_GAUGE_M / res
    pairs = []
    for path, kinds in paths:
        sel = kinds == 2
        if len(path) < 3 or not sel.any():
            continue
        d = np.gradient(path, axis=0)
        d /= np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)[:, None]
        nrm = np.column_stack([-d[:, 1], d[:, 0]])[sel]
        p = path[sel]
        rails = _bilinear(maps.stacked[..., :2], np.stack([p + h * nrm, p - h * nrm]))
        pairs.append(rails.min(axis=0))  # (k, 2): the weaker rail, dark and bright
    if not pairs:
        return 1.0, 1.0
    v = np.concatenate(pairs)
    strength = v.max(axis=1)
    top = v[strength >= np.percentile(strength, _POLARITY_TOP_PCT)]
    return _polarity_weights(top[:, 0], top[:, 1])


def _polarity_weights(dark: np.ndarray, bright: np.ndarray) -> tuple[float, float]:
    """Weights of dark and bright rail pairs from votes (:func:`_rail_polarity`).

    Each (dark, bright) pair of responses votes for the stronger; without votes both
    weigh 1.
    """
    if len(dark) == 0:
        return 1.0, 1.0
    n_dark = int(np.count_nonzero(dark > bright))
    votes = np.array([n_dark, len(dark) - n_dark], float)
    w = np.clip((votes / max(votes.max(), 1.0)) ** _POLARITY_POWER, _POLARITY_MIN, 1.0)
    return float(w[0]), float(w[1])


def _seed_polarity(dark: np.ndarray, bright: np.ndarray, inside: np.ndarray) -> tuple[float, float]:
    """Weights of dark and bright rail pairs before tracing, from the dense evidence.

    The pixels whose rail pair (either polarity) responds above the
    :data:`_SEED_POLARITY_PCT` percentile inside vote as in :func:`_rail_polarity`: the
    bright edge pairs of the gravel between beds seed and carry lines unless the yard's
    own (mostly dark) rails are preferred while seeding and tracing.
    """
    d, b = dark[inside], bright[inside]
    if d.size == 0:
        return 1.0, 1.0
    strength = np.maximum(d, b)
    top = strength >= max(float(np.percentile(strength, _SEED_POLARITY_PCT)), 1e-6)
    return _polarity_weights(d[top], b[top])


def _trace_seeds(
    seeds: np.ndarray,
    tracer: _Tracer,
    maps: RailMaps,
    sub_px: np.ndarray,
    paths: list[tuple[np.ndarray, np.ndarray]],
) -> None:
    """Trace from every seed not yet on a path (strongest first), appending to ``paths``."""
    for r0, c0 in seeds:
        if tracer.owner[r0, c0] >= 0:
            continue
        me = len(paths)
        th = float(maps.theta[r0, c0])
        seed = np.array([r0, c0], float) + sub_px[r0, c0] * np.array([-math.sin(th), math.cos(th)])
        d = tracer.best_direction(seed, th)
        fwd, kf = tracer.walk(seed, d, me)
        back, kb = tracer.walk(seed, -d, me)
        path = np.asarray(back[::-1] + fwd[1:])
        kinds = np.asarray(kb[::-1] + kf[1:])
        # Mark the seed's neighbourhood even for rejected traces, so the loop ends.
        tracer.claim(path if len(path) > 1 else seed[None], me)
        paths.append((path, kinds))


def _trace_neighbours(
    seeds: np.ndarray,
    tracer: _Tracer,
    maps: RailMaps,
    sub_px: np.ndarray,
    paths: list[tuple[np.ndarray, np.ndarray]],
    *,
    near_px: float,
    far_px: float,
    min_length_m: float,
) -> None:
    """Trace weak seeds lying one track spacing beside a traced track, until none is left.

    Only seeds ``near_px`` to ``far_px`` from a path with at least ``min_length_m`` of
    evidence are used; every new track opens the band beside it in turn, so a yard of
    parallel tracks is followed across from its strongest track.
    """
    shape = maps.observed.shape
    done = 0
    for _ in range(100):
        track_px = np.zeros(shape, bool)
        for path, kinds in paths:
            if len(path) > 1 and float((kinds > 0).sum()) * _STEP_M >= min_length_m:
                dense = _densify(path, 0.5)
                rr = np.clip(np.round(dense[:, 0]).astype(int), 0, shape[0] - 1)
                cc = np.clip(np.round(dense[:, 1]).astype(int), 0, shape[1] - 1)
                track_px[rr, cc] = True
        n_tracks = int(track_px.sum())
        if n_tracks == 0 or n_tracks == done:
            return
        done = n_tracks
        dist = ndi.distance_transform_edt(~track_px)
        band = (dist >= near_px) & (dist <= far_px)
        r, c = seeds[:, 0], seeds[:, 1]
        _trace_seeds(seeds[band[r, c] & (tracer.owner[r, c] < 0)], tracer, maps, sub_px, paths)


def _finish(
    paths: list[tuple[np.ndarray, np.ndarray]],
    grid: SiteGrid,
    aoi: BaseGeometry,
    tracer: _Tracer,
    *,
    min_length_m: float,
    max_gap_m: float,
    spacing_m: float,
    stack: bool = False,
) -> list[tuple[float, LineString]]:
    """Validate traced paths, convert them to map lines, resolve parallels, join, snap."""
    t = grid.transform
    res = grid.resolution_m
    step = _STEP_M / res
    good: list[tuple[float, LineString]] = []
    half_window = max(2, int(round(8.0 / _STEP_M)))
    for path, kinds in paths:
        if len(path) < 2:
            continue
        seen_len = float((kinds > 0).sum()) * _STEP_M
        total = (len(path) - 1) * _STEP_M
        if seen_len < max(min_length_m, 0.5 * total):
            continue
        # Rank by evidence: sharp rail pairs count fully, strips (which also appear between
        # two trains) a third.
        strength = float((kinds == 2).sum() + _STRIP_RANK_WEIGHT * (kinds == 1).sum())
        sm = _densify(_smooth_path(path, kinds, half_window), step)
        xs = t.c + (sm[:, 1] + 0.5) * t.a
        ys = t.f + (sm[:, 0] + 0.5) * t.e
        line = LineString(np.column_stack([xs, ys])).simplify(0.05)
        if line.length < 0.5 * min_length_m:
            continue
        good.append((strength, line))
    good = _resolve_parallels(
        good, grid, tracer, spacing_m=spacing_m, min_length_m=0.5 * min_length_m
    )
    good = _join_collinear(good, max_gap_m=2 * max_gap_m)
    good = _join_overlapping(good, min_length_m=0.5 * min_length_m)
    if stack:
        good = _join_gaps(good, tracer, grid)
    good = _snap_ends(good, reach_m=2.5)
    out = []
    for strength, line in good:
        clipped = line.intersection(aoi)
        parts = getattr(clipped, "geoms", [clipped])
        for part in parts:
            if isinstance(part, LineString) and part.length >= min_length_m:
                out.append((strength * part.length / line.length, part))
    return out


def _profile(
    line: LineString, grid: SiteGrid, tracer: _Tracer
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stations every metre along ``line``: positions, unit directions and local evidence.

    The evidence is the tracer's combined rail-pair and strip score (each capped at
    :data:`_PROFILE_CAP` threshold units, best of a few lateral offsets within
    +/-0.4 m), averaged over :data:`_PROFILE_WINDOW_M` along the line. Rail pairs of
    each polarity count with the tracer's weight for it (:func:`_rail_polarity`): the
    gravel between two beds, brighter than both, has two bright edges a gauge apart
    where the yard's rails are dark.
    """
    n = max(2, int(math.ceil(line.length / _STEP_M)) + 1)
    s = np.linspace(0.0, line.length, n)
    xy = shapely.get_coordinates(shapely.line_interpolate_point(line, s))
    ahead = shapely.get_coordinates(shapely.line_interpolate_point(line, s + 1.0))
    behind = shapely.get_coordinates(shapely.line_interpolate_point(line, s - 1.0))
    d = ahead - behind
    d /= np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)[:, None]
    t = grid.transform
    rows, cols = world_to_pixel(grid, xy[:, 0], xy[:, 1])
    along = np.column_stack([d[:, 1] / t.e, d[:, 0] / t.a])
    along /= np.maximum(np.hypot(along[:, 0], along[:, 1]), 1e-9)[:, None]
    normal = np.column_stack([-along[:, 1], along[:, 0]])
    pts = np.column_stack([rows, cols])
    win = max(1, int(round(_PROFILE_WINDOW_M / _STEP_M)))
    # Cross-section of the thin-line maps, averaged over the window along the line.
    res = grid.resolution_m
    offs_m = np.arange(-_BAND_M - _SHIFT_M, _BAND_M + _SHIFT_M + 1e-9, 0.125)
    q = pts[None] + (offs_m / res)[:, None, None] * normal[None]
    cross = _bilinear(tracer.maps.stacked[..., :2], q)  # (offsets, n, 2)
    cross = ndi.uniform_filter1d(cross, win, axis=1, mode="nearest")
    best = np.zeros(n, np.float32)
    step = 0.125
    shift_n = int(round(_SHIFT_M / step))
    band_n = int(round(_BAND_M / step))
    mid = len(offs_m) // 2
    rel = np.arange(-band_n, band_n + 1) * step
    a = np.abs(rel)
    at_rail = np.abs(a - RAIL_HALF_GAUGE_M) <= 0.13
    other = (a >= _CENTRE_M) & (np.abs(a - RAIL_HALF_GAUGE_M) >= _PEAK_DELTA_M + 0.05)
    left, right = rel > 0, rel < 0
    # The line may sit a little beside the rails' centre: try shifts up to _SHIFT_M.
    for sh in range(-shift_n, shift_n + 1):
        win_c = cross[mid + sh - band_n : mid + sh + band_n + 1]
        for ch in (0, 1):
            c = win_c[..., ch]
            rails = np.minimum(c[at_rail & left].max(axis=0), c[at_rail & right].max(axis=0))
            rivals = c[other].max(axis=0)
            # The rails must be the strongest thin lines within the track's own band.
            ratio = np.minimum(rails / np.maximum(rivals, 1e-6), 1.0)
            weight = tracer.polarity[ch] * ratio**2
            np.maximum(best, weight * rails / tracer.rail_lo, out=best)
    rail, strip = _evidence(tracer.maps.stacked, pts, normal, along, tracer.res)
    strip_q = ndi.uniform_filter1d(np.minimum(strip / tracer.strip_lo, _PROFILE_CAP), win)
    return xy, d, np.minimum(best, _PROFILE_CAP) + strip_q


def _resolve_parallels(
    lines: list[tuple[float, LineString]],
    grid: SiteGrid,
    tracer: _Tracer,
    *,
    spacing_m: float,
    min_length_m: float,
) -> list[tuple[float, LineString]]:
    """Cut lines where a stronger line runs alongside closer than tracks can be.

    Parallel tracks are at least ``spacing_m`` apart centre to centre. Where two nearly
    parallel lines run closer than :data:`_CONFLICT_SHARE` of that, only one is a track
    (the other follows the gap between two beds, a bed edge or the gap between two
    trains): at every station the line with the weaker local evidence is cut there.
    """
    if len(lines) < 2:
        return lines
    near_m = _CONFLICT_SHARE * spacing_m
    cos_par = math.cos(math.radians(_PARALLEL_DEG))
    profs = [_profile(line, grid, tracer) for _, line in lines]
    out = []
    for i, (strength, line) in enumerate(lines):
        xy, d, q = profs[i]
        pts = shapely.points(xy)
        lost = np.zeros(len(q), bool)
        for j, (_, other) in enumerate(lines):
            if j == i:
                continue
            dist = shapely.distance(other, pts)
            close = dist < near_m
            if not close.any():
                continue
            oxy, od, oq = profs[j]
            k = np.clip(
                np.round(
                    shapely.line_locate_point(other, pts[close]) / other.length * (len(oq) - 1)
                ),
                0,
                len(oq) - 1,
            ).astype(int)
            par = np.abs(np.sum(d[close] * od[k], axis=1)) >= cos_par
            stronger = (oq[k] > _CONFLICT_MARGIN * q[close]) | ((oq[k] == q[close]) & (j < i))
            lost[np.flatnonzero(close)[par & stronger]] = True
        if not lost.any():
            out.append((strength, line))
            continue
        # Ignore short losses; keep the runs in between.
        lost = ndi.binary_opening(lost, np.ones(_MIN_CUT_STATIONS, bool))
        keep = ~lost
        labels, n = ndi.label(keep)
        total = line.length
        for lab in range(1, n + 1):
            idx = np.flatnonzero(labels == lab)
            a = float(idx[0]) / (len(q) - 1) * total
            b = float(idx[-1]) / (len(q) - 1) * total
            if b - a < min_length_m:
                continue
            piece = substring(line, a, b)
            if isinstance(piece, LineString) and piece.length > 0:
                out.append((strength * piece.length / total, piece))
    return out


def _end(
    line: LineString, at_start: bool, span_m: float = 8.0, trim_m: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """End point and outward unit direction of a line (``trim_m`` inside its end)."""
    n = line.length
    t = min(trim_m, 0.25 * n)
    a = line.interpolate(t if at_start else n - t)
    b = line.interpolate(min(t + span_m, n) if at_start else max(0.0, n - t - span_m))
    p = np.array([a.x, a.y])
    d = p - np.array([b.x, b.y])
    return p, d / (np.hypot(*d) or 1.0)


def _join_collinear(
    lines: list[tuple[float, LineString]], *, max_gap_m: float
) -> list[tuple[float, LineString]]:
    """Join pieces of one track whose facing ends continue each other (best pair first).

    Ends of every pair are compared at once (arrays over all end pairs): the nearest
    admissible pair is joined, then the joined line's ends replace its pieces'.
    """
    items = list(lines)
    if len(items) < 2:
        return items
    trim = _JOIN_TRIM_M
    span = _JOIN_SPAN_M
    cos_max = math.cos(math.radians(_JOIN_MAX_DEG))
    lat0 = _JOIN_LATERAL_M

    def ends_of(ln: LineString) -> list[tuple[np.ndarray, np.ndarray]]:
        return [_end(ln, True, span, trim), _end(ln, False, span, trim)]

    ends = [ends_of(ln) for _, ln in items]
    while len(items) > 1:
        n = len(items)
        # End k = 2 * item + (0 start, 1 end); pairs (k, m) of different items, k's item first.
        pts = np.array([e[s][0] for e in ends for s in (0, 1)])
        dirs = np.array([e[s][1] for e in ends for s in (0, 1)])
        owner = np.repeat(np.arange(n), 2)
        v = pts[None, :, :] - pts[:, None, :]  # v[k, m] = p_m - p_k
        dist = np.hypot(v[..., 0], v[..., 1])
        facing = -(dirs @ dirs.T)  # da . -db
        ahead = np.einsum("kd,kmd->km", dirs, v)
        cross_a = np.abs(dirs[:, None, 0] * v[..., 1] - dirs[:, None, 1] * v[..., 0])
        cross_b = np.abs(dirs[None, :, 0] * v[..., 1] - dirs[None, :, 1] * v[..., 0])
        lat = np.maximum(cross_a, cross_b)
        ok = (owner[:, None] < owner[None, :]) & (dist <= max_gap_m) & (facing >= cos_max)
        ok &= (dist == 0) | ((ahead > 0) & (lat <= lat0 + 0.01 * dist))
        if not ok.any():
            return items
        # The nearest pair; ties go to the first in (item, item, end, end) order.
        nearest = float(dist[ok].min())
        kk, mm = np.nonzero(ok & (dist == nearest))
        first = int(np.lexsort((mm % 2, kk % 2, mm // 2, kk // 2))[0])
        k, m = int(kk[first]), int(mm[first])
        i, j = int(owner[k]), int(owner[m])
        sa, sb = k % 2 == 0, m % 2 == 0
        (wa, a), (wb, b) = items[i], items[j]
        # Drop the hooked last metres: the joint runs between the trimmed ends.
        ta = min(trim, 0.25 * a.length)
        tb = min(trim, 0.25 * b.length)
        a = substring(a, ta, a.length) if sa else substring(a, 0.0, a.length - ta)
        b = substring(b, tb, b.length) if sb else substring(b, 0.0, b.length - tb)
        ca = list(a.coords)[::-1] if sa else list(a.coords)  # ends at the joined end
        cb = list(b.coords) if sb else list(b.coords)[::-1]  # starts at the joined end
        joined = LineString(ca + cb)
        keep = [k2 for k2 in range(n) if k2 not in (i, j)]
        items = [items[k2] for k2 in keep] + [(wa + wb, joined)]
        ends = [ends[k2] for k2 in keep] + [ends_of(joined)]
    return items


def _gap_end(line: LineString, at_start: bool, trim_m: float, extra_m: float = 0.0) -> np.ndarray:
    """Stations (1 m) of the :data:`_GAP_SPAN_M` inside an end's hook, ordered outwards.

    The hook is ``trim_m`` (at most a quarter of the line) plus ``extra_m``.
    """
    n = line.length
    trim = min(trim_m, 0.25 * n) + extra_m
    span = max(min(_GAP_SPAN_M, n - trim - min(trim_m, 0.25 * n)), 1.0)
    s = (
        np.arange(trim + span, trim - 1e-9, -1.0)
        if at_start
        else np.arange(n - trim - span, n - trim + 1e-9, 1.0)
    )
    return shapely.get_coordinates(shapely.line_interpolate_point(line, s))


def _gap_bridge(
    pa: np.ndarray, pb: np.ndarray, tracer: _Tracer, grid: SiteGrid
) -> tuple[np.ndarray, float] | None:
    """One curve through two facing ends (stations (k, 2) ordered outwards), if it fits.

    In a frame along the ends' mean direction, a quadratic plus a lateral step for the
    second end is fitted to both: it must fit each end within :data:`_GAP_RMS_M`, the
    step be at most :data:`_GAP_STEP_M`, and its curvature be within :data:`_GAP_CURV_M`
    of each end's own (a through track straight on, not the branch curving off at a
    turnout); the ends' directions must agree within :data:`_GAP_TURN_DEG` but for the
    turn the lesser of their own curvatures (if both bend the same way) explains over
    the distance between them (not a straight branch diverging at a switch). Returns
    the bridge between the two ends (map coordinates, at least the two end points) and
    the share of its metres where the tracer sees rail-pair or strip
    evidence within 1 m across (:func:`_evidence`), or None.
    """
    a0, b0 = pa[-1], pb[-1]
    da, db = pa[-1] - pa[0], pb[-1] - pb[0]
    da = da / (np.hypot(*da) or 1.0)
    db = db / (np.hypot(*db) or 1.0)
    u = da - db
    u = u / (np.hypot(*u) or 1.0)
    nrm = np.array([-u[1], u[0]])
    x_end = float((b0 - a0) @ u)
    if x_end < 0.0 or float(da @ db) > -math.cos(math.radians(30.0)):
        return None
    # The ends' directions must agree but for the turn their own curvature explains.
    own_k = []
    for p, sign in ((pa, 1.0), (pb, -1.0)):
        if len(p) >= 0.5 * _GAP_SPAN_M:
            q = p - p[-1]
            dp = p[-1] - p[0]
            dp = dp / (np.hypot(*dp) or 1.0)
            # Signed as seen travelling from the first end to the second.
            curv = 2.0 * np.polyfit(q @ dp, q @ np.array([-dp[1], dp[0]]), 2)[0]
            own_k.append(sign * curv)
    turn = math.atan2(float(da[0] * -db[1] - da[1] * -db[0]), float(da @ -db))
    # A curve turns by its curvature times the distance between the ends' mid-spans. The
    # ends' own curvatures must agree in sign, and the lesser counts (a hooked end bends
    # its own fit).
    curv = 0.0
    if len(own_k) == 2 and own_k[0] * own_k[1] > 0:
        curv = min(own_k, key=abs)
    expected = curv * (x_end + _GAP_SPAN_M)
    if abs(turn - expected) > math.radians(_GAP_TURN_DEG):
        return None
    pts = np.concatenate([pa, pb]) - a0
    x, y = pts @ u, pts @ nrm
    is_b = np.r_[np.zeros(len(pa)), np.ones(len(pb))]
    basis = np.column_stack([np.ones_like(x), x, x * x, is_b])
    coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
    if abs(coef[3]) > _GAP_STEP_M or abs(2 * coef[2]) > 1.0 / MIN_RADIUS_M:
        return None
    resid = y - basis @ coef
    for side in (is_b == 0, is_b == 1):
        if float(np.sqrt(np.mean(resid[side] ** 2))) > _GAP_RMS_M:
            return None
        xs = x[side]
        if np.ptp(xs) >= 0.5 * _GAP_SPAN_M:
            own = np.polyfit(xs - xs.mean(), y[side], 2)[0]
            if abs(2 * (own - coef[2])) > _GAP_CURV_M:
                return None
    k = max(2, int(math.ceil(x_end / _STEP_M)) + 1)
    xb = np.linspace(0.0, x_end, k)
    yb = coef[0] + coef[1] * xb + coef[2] * xb**2 + coef[3] * xb / max(x_end, 1e-9)
    # Keep the ends' own points at the joint: the fit may sit beside them.
    yb[0], yb[-1] = 0.0, float((b0 - a0) @ nrm)
    xy = a0 + xb[:, None] * u + yb[:, None] * nrm
    if k <= 2:
        return xy, 1.0
    slope = coef[1] + 2 * coef[2] * xb + coef[3] / max(x_end, 1e-9)
    d = u[None] + slope[:, None] * nrm[None]
    t = grid.transform
    rows, cols = world_to_pixel(grid, xy[:, 0], xy[:, 1])
    along = np.column_stack([d[:, 1] / t.e, d[:, 0] / t.a])
    along /= np.maximum(np.hypot(along[:, 0], along[:, 1]), 1e-9)[:, None]
    normal = np.column_stack([-along[:, 1], along[:, 0]])
    offs = tracer.wide_offsets
    q = np.column_stack([rows, cols])[:, None] + offs[None, :, None] * normal[:, None]
    m = len(offs)
    rail, strip = _evidence(
        tracer.maps.stacked,
        q.reshape(-1, 2),
        np.repeat(normal, m, axis=0),
        np.repeat(along, m, axis=0),
        tracer.res,
        inner=False,
        polarity=tracer.polarity,
    )
    seen = (rail.reshape(k, m) / tracer.rail_lo >= 1.0) | (
        strip.reshape(k, m) / tracer.strip_lo >= 1.0
    )
    return xy, float(seen.any(axis=1)[1:-1].mean())


def _gap_pair(
    a: LineString,
    a_start: bool,
    b: LineString,
    b_start: bool,
    tracer: _Tracer,
    grid: SiteGrid,
) -> tuple[np.ndarray, float, float] | None:
    """The bridge joining an end of ``a`` to an end of ``b`` and the metres cut off them.

    Ends whose tips have passed each other are both cut back to meet halfway. A hook may
    reach further in than :data:`_GAP_TRIM_M`: deeper cuts are tried in turn
    (:data:`_GAP_TRIMS`) until one curve fits both ends and its bridge shows evidence
    on :data:`_GAP_SEEN` of its metres (:func:`_gap_bridge`). None if none does.
    """
    ea = _gap_end(a, a_start, _GAP_TRIM_M)
    eb = _gap_end(b, b_start, _GAP_TRIM_M)
    da = ea[-1] - ea[0]
    behind = -float((eb[-1] - ea[-1]) @ da) / (np.hypot(*da) or 1.0)
    extra = 0.5 * behind + 1.0 if behind > 0 else 0.0
    if extra > 0.5 * _GAP_SPAN_M:
        return None
    for ta, tb in _GAP_TRIMS:
        cut_a, cut_b = ta * _GAP_TRIM_M, tb * _GAP_TRIM_M
        if (ta, tb) != (1, 1) and (cut_a > 0.25 * a.length or cut_b > 0.25 * b.length):
            continue
        got = _gap_bridge(
            _gap_end(a, a_start, cut_a, extra),
            _gap_end(b, b_start, cut_b, extra),
            tracer,
            grid,
        )
        if got is not None and got[1] >= _GAP_SEEN:
            return (
                got[0],
                min(cut_a, 0.25 * a.length) + extra,
                min(cut_b, 0.25 * b.length) + extra,
            )
    return None


def _join_gaps(
    lines: list[tuple[float, LineString]],
    tracer: _Tracer,
    grid: SiteGrid,
) -> list[tuple[float, LineString]]:
    """Join pieces of one track across a gap of up to :data:`_GAP_MAX_M` (a stack only).

    :func:`_join_collinear` accepts ends 0.8 m apart across: two pieces traced along
    either rail (0.7 m each side of the centre) or past a turnout, whose ends hook off,
    stay apart. Here the ends inside their hooks must continue one curve
    (:func:`_gap_bridge`: a lateral step of up to a gauge, no change of curvature, so
    neither a parallel track 4.5 m across nor a branch curving off at a turnout) and the
    bridge between them must show rail-pair or strip evidence on at least
    :data:`_GAP_SEEN` of its metres. Nearest pair first.
    """
    items = list(lines)
    # (line, end, line, end) -> bridge or None; lines are never changed in place, so a
    # pair is judged once (the geometries are kept alive by ``items`` or ``keep_alive``).
    judged: dict[tuple[int, int, int, int], tuple | None] = {}
    keep_alive: list[LineString] = []
    while len(items) > 1:
        geoms = [ln for _, ln in items]
        ends = [_gap_end(ln, at_start, _GAP_TRIM_M) for ln in geoms for at_start in (True, False)]
        tips = np.array([e[-1] for e in ends])
        dist = np.hypot(*(tips[:, None] - tips[None]).transpose(2, 0, 1))
        kk, mm = np.nonzero(
            (dist <= _GAP_MAX_M)
            & (np.arange(len(ends))[:, None] // 2 < np.arange(len(ends))[None] // 2)
        )
        best = None
        for pair in np.lexsort((mm, kk, dist[kk, mm])):
            k, m = int(kk[pair]), int(mm[pair])
            key = (id(geoms[k // 2]), k % 2, id(geoms[m // 2]), m % 2)
            if key not in judged:
                judged[key] = _gap_pair(
                    geoms[k // 2], k % 2 == 0, geoms[m // 2], m % 2 == 0, tracer, grid
                )
                keep_alive.extend((geoms[k // 2], geoms[m // 2]))
            if judged[key] is not None:
                best = (k, m, judged[key])
                break
        if best is None:
            return items
        k, m, (bridge, ta, tb) = best
        i, j = k // 2, m // 2
        (wa, a), (wb, b) = items[i], items[j]
        a = substring(a, ta, a.length) if k % 2 == 0 else substring(a, 0.0, a.length - ta)
        b = substring(b, tb, b.length) if m % 2 == 0 else substring(b, 0.0, b.length - tb)
        ca = list(a.coords)[::-1] if k % 2 == 0 else list(a.coords)
        cb = list(b.coords) if m % 2 == 0 else list(b.coords)[::-1]
        joined = LineString(ca + [tuple(p) for p in bridge[1:-1]] + cb)
        items = [it for n, it in enumerate(items) if n not in (i, j)] + [(wa + wb, joined)]
    return items


def _shared_tail(a: LineString, b: LineString) -> tuple[float, float] | None:
    """The run of ``a`` (1 m stations) along ``b`` nearest ``a``'s end, if it counts.

    Returns (start, end) metres along ``a`` of the last run of stations within
    :data:`_OVERLAP_LATERAL_M` of ``b`` that ends at most :data:`_OVERLAP_HOOK_M` before
    ``a``'s end (traces veer off at their ends) and is at least :data:`_OVERLAP_RUN_M`
    long; None otherwise.
    """
    n = a.length
    s = np.arange(max(0.0, n - _OVERLAP_HOOK_M - 60.0), n + 1e-9, 1.0)
    pts = shapely.line_interpolate_point(a, s)
    close = shapely.distance(b, pts) <= _OVERLAP_LATERAL_M
    idx = np.flatnonzero(close)
    if len(idx) == 0 or n - s[idx[-1]] > _OVERLAP_HOOK_M:
        return None
    k1 = idx[-1]
    k0 = k1
    while k0 > 0 and close[k0 - 1]:
        k0 -= 1
    s0, s1 = float(s[k0]), float(s[k1])
    if s1 - s0 < _OVERLAP_RUN_M:
        return None
    return s0, s1


def _direction_at(line: LineString, s: float, h: float = 3.0) -> np.ndarray:
    u = np.asarray(line.interpolate(min(s + h, line.length)).coords[0])
    v = np.asarray(line.interpolate(max(s - h, 0.0)).coords[0])
    d = u - v
    return d / (np.hypot(*d) or 1.0)


def _join_overlapping(
    lines: list[tuple[float, LineString]], *, min_length_m: float
) -> list[tuple[float, LineString]]:
    """Join two pieces of one track whose ends overlap, running on each other.

    Where a trace stops at a turnout (or is cut beside a false line), the piece beyond it
    is often traced from the other side and runs back past the end for several metres,
    both ends hooking off the track: the ends pass each other, which
    :func:`_join_collinear` (facing ends with a gap between them) does not join. Here
    the last metres of a line (but for a hooked end of up to :data:`_OVERLAP_HOOK_M`)
    run within :data:`_OVERLAP_LATERAL_M` of another, parallel line for at least
    :data:`_OVERLAP_RUN_M`; that line carries on at least :data:`_OVERLAP_BEYOND_M`
    past the end and itself ends within the shared run. The two become one line, joined
    in the middle of the shared run; what is left of the other line behind the joint,
    less its metres alongside the joined line, is kept if at least ``min_length_m``
    long. Longest shared runs first.
    """
    items = list(lines)
    cos_par = math.cos(math.radians(_OVERLAP_MAX_DEG))
    # (end's line, which end, other line) -> candidate or None; lines are never changed in
    # place, so a pair is judged once (the geometries are kept alive by ``items`` or here).
    judged: dict[tuple[int, bool, int], tuple | None] = {}
    keep_alive: list[LineString] = []

    def judge(a0: LineString, at_start: bool, b: LineString) -> tuple | None:
        a = LineString(list(a0.coords)[::-1]) if at_start else a0
        run = _shared_tail(a, b)
        if run is None:
            return None
        s0, s1 = run
        sm = 0.5 * (s0 + s1)
        da = _direction_at(a, sm)
        sp = b.project(a.interpolate(sm))
        cos = float(_direction_at(b, sp) @ da)
        if abs(cos) < cos_par:
            return None
        forward = cos > 0
        ahead_len = b.length - sp if forward else sp
        if ahead_len < a.length - sm + _OVERLAP_BEYOND_M:
            return None
        # The other line must itself end within the shared run (but for its hooked
        # end): two pieces of one track overlapping at their ends.
        behind_len = sp if forward else b.length - sp
        if behind_len > (sm - s0) + _OVERLAP_HOOK_M:
            return None
        return s1 - s0, sm, sp, forward

    for _ in range(3 * len(items)):
        geoms = [ln for _, ln in items]
        tree = shapely.STRtree(geoms)
        best = None
        for i, a0 in enumerate(geoms):
            for at_start in (True, False):
                n = a0.length
                reach = min(n, _OVERLAP_HOOK_M + 60.0)
                tail = substring(a0, 0.0, reach) if at_start else substring(a0, n - reach, n)
                for j in tree.query(tail.buffer(_OVERLAP_LATERAL_M + 0.01).envelope):
                    j = int(j)
                    if j == i:
                        continue
                    key = (id(a0), at_start, id(geoms[j]))
                    if key not in judged:
                        judged[key] = judge(a0, at_start, geoms[j])
                        keep_alive.extend((a0, geoms[j]))
                    cand = judged[key]
                    if cand is None:
                        continue
                    rank = (cand[0], -j)
                    if best is None or rank > best[0]:
                        best = (rank, i, at_start, j, *cand[1:])
        if best is None:
            return items
        _, i, at_start, j, sm, sp, forward = best
        (wa, a0), (wb, b) = items[i], items[j]
        a = LineString(list(a0.coords)[::-1]) if at_start else a0
        ahead = substring(b, sp, b.length) if forward else substring(b, sp, 0.0)
        behind = substring(b, sp, 0.0) if forward else substring(b, sp, b.length)
        joined = LineString(list(substring(a, 0.0, sm).coords) + list(ahead.coords))
        new = [(wa + wb * ahead.length / b.length, joined)]
        if isinstance(behind, LineString) and behind.length > 0:
            s = np.arange(0.0, behind.length + 1e-9, 1.0)
            near = shapely.distance(joined, shapely.line_interpolate_point(behind, s))
            off = np.flatnonzero(near > _OVERLAP_ALONGSIDE_M)
            if len(off):
                rest = substring(behind, float(s[off[0]]), behind.length)
                if isinstance(rest, LineString) and rest.length >= min_length_m:
                    new.append((wb * rest.length / b.length, rest))
        items = [it for k, it in enumerate(items) if k not in (i, j)] + new
    return items


def _snap_ends(
    lines: list[tuple[float, LineString]], *, reach_m: float
) -> list[tuple[float, LineString]]:
    """Extend or trim a line end that stops near another line onto it (turnout)."""
    out = []
    for i, (w, line) in enumerate(lines):
        coords = list(line.coords)
        for at_start in (True, False):
            p, d = _end(LineString(coords), at_start)
            best = None
            for j, (_, other) in enumerate(lines):
                if j == i:
                    continue
                dist = other.distance(Point(p))
                if dist <= reach_m and (best is None or dist < best[0]):
                    best = (dist, other)
            if best is None or best[0] < 1e-6:
                continue
            q = best[1].interpolate(best[1].project(Point(p)))
            if at_start:
                coords = [(q.x, q.y), *coords]
            else:
                coords = [*coords, (q.x, q.y)]
        out.append((w, LineString(coords)))
    return out


def _drop_duplicates(lines: list[tuple[float, LineString]], near_m: float) -> list[LineString]:
    """Keep stronger lines; drop one that mostly runs within ``near_m`` of a kept line."""
    kept: list[LineString] = []
    for _, line in sorted(lines, key=lambda p: -p[0]):
        near = 0.0
        for k in kept:
            near = max(near, line.intersection(k.buffer(near_m)).length)
        if near <= 0.7 * line.length:
            kept.append(line)
    return kept


def _order(lines: list[LineString]) -> list[Track]:
    if not lines:
        return []
    dirs = []
    for ln in lines:
        (x0, y0), (x1, y1) = ln.coords[0], ln.coords[-1]
        d = np.array([x1 - x0, y1 - y0])
        d /= np.hypot(*d) or 1.0
        if d[0] < 0 or (d[0] == 0 and d[1] < 0):
            d = -d
        dirs.append(d * ln.length)
    main = np.sum(dirs, axis=0)
    main /= np.hypot(*main) or 1.0
    normal = np.array([-main[1], main[0]])
    oriented = []
    for ln in lines:
        c = np.asarray(ln.coords)
        if (c[-1] - c[0]) @ main < 0:
            ln = LineString(c[::-1])
        cen = np.asarray(ln.interpolate(0.5, normalized=True).coords[0])
        oriented.append((-(cen @ normal), cen @ main, ln))
    oriented.sort(key=lambda p: (round(p[0], 1), p[1]))
    return [Track(f"T{i + 1}", ln) for i, (_, _, ln) in enumerate(oriented)]

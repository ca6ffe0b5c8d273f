"""Track centre lines: extraction from an image stack, and strips sampled along a line.

Everything here is pure: arrays, a :class:`~railwatch.site.SiteGrid` and shapely
geometries in the grid CRS (metres) go in; lines and sampled arrays come out.

Extraction looks for the one structure every track has and nothing else in a yard has: two
thin parallel rails 1.52 m apart (1435 mm gauge: 1.43 m; the filter tolerates both). It
filters each image for thin lines of both polarities, keeps the polarity whose *pairs* of
lines at rail spacing are strongest, averages that response over the stack (cars come and
go, rails stay), smooths it along the local track direction, thins it to one-pixel centre
lines and links the pieces through junctions and short gaps by continuity of direction,
so a through track stays one line across a turnout and the diverging track ends on it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from shapely.geometry import LineString, MultiLineString
from shapely.geometry.base import BaseGeometry

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


def _filled(image: np.ndarray, valid: np.ndarray) -> np.ndarray:
    img = np.asarray(image, dtype=np.float32)
    if valid.all():
        return img
    fill = float(np.median(img[valid])) if valid.any() else 0.0
    return np.where(valid, img, fill).astype(np.float32)


def _line_response(img: np.ndarray, sigma_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Thin-line responses (bright, dark) from the Hessian's larger-magnitude eigenvalue."""
    hrr = ndi.gaussian_filter(img, sigma_px, order=(2, 0))
    hcc = ndi.gaussian_filter(img, sigma_px, order=(0, 2))
    hrc = ndi.gaussian_filter(img, sigma_px, order=(1, 1))
    tr = 0.5 * (hrr + hcc)
    disc = np.sqrt(0.25 * (hrr - hcc) ** 2 + hrc**2)
    lam_lo, lam_hi = tr - disc, tr + disc
    bright = np.maximum(-lam_lo, 0.0) * sigma_px**2
    dark = np.maximum(lam_hi, 0.0) * sigma_px**2
    return bright.astype(np.float32), dark.astype(np.float32)


def _orientation(img: np.ndarray, sigma_px: float, window_px: float) -> np.ndarray:
    """Local line direction (angle of the along-line vector in (row, col)), radians."""
    gr = ndi.gaussian_filter(img, sigma_px, order=(1, 0))
    gc = ndi.gaussian_filter(img, sigma_px, order=(0, 1))
    jrr = ndi.gaussian_filter(gr * gr, window_px)
    jcc = ndi.gaussian_filter(gc * gc, window_px)
    jrc = ndi.gaussian_filter(gr * gc, window_px)
    # Dominant gradient direction is across the lines; the line runs perpendicular to it.
    theta_grad = 0.5 * np.arctan2(2 * jrc, jrr - jcc)
    return theta_grad + np.pi / 2


def _shifted(arr: np.ndarray, dr: np.ndarray, dc: np.ndarray) -> np.ndarray:
    h, w = arr.shape
    rr, cc = np.mgrid[0:h, 0:w].astype(np.float32)
    return ndi.map_coordinates(arr, [rr + dr, cc + dc], order=1, mode="nearest", prefilter=False)


def track_response(
    images: Sequence[np.ndarray], valids: Sequence[np.ndarray], grid: SiteGrid
) -> tuple[np.ndarray, np.ndarray]:
    """Rail-pair response and local track direction averaged over a stack.

    Parameters
    ----------
    images, valids : sequences of (H, W) arrays
        Gray images and their valid masks on ``grid``.
    grid : SiteGrid

    Returns
    -------
    response : numpy.ndarray
        (H, W) float32, high on track centre lines.
    theta : numpy.ndarray
        (H, W) along-track angle in (row, col) coordinates, radians.
    """
    res = grid.resolution_m
    sigma = max(0.6, 0.3 / res)
    half = RAIL_HALF_GAUGE_M / res
    acc = np.zeros(grid.shape, np.float32)
    weight = np.zeros(grid.shape, np.float32)
    tensor = np.zeros((3, *grid.shape), np.float32)
    gray_sum = np.zeros(grid.shape, np.float32)
    for image, valid in zip(images, valids, strict=True):
        img = _filled(image, valid)
        gray_sum += np.where(valid, img, 0)
        gr = ndi.gaussian_filter(img, 1.0 / res, order=(1, 0))
        gc = ndi.gaussian_filter(img, 1.0 / res, order=(0, 1))
        tensor += np.stack([gr * gr, gc * gc, gr * gc])
    win = 4.0 / res
    jrr, jcc, jrc = (ndi.gaussian_filter(t, win) for t in tensor)
    theta = 0.5 * np.arctan2(2 * jrc, jrr - jcc) + np.pi / 2
    # Unit normal (across track) in (row, col).
    nr, nc = np.cos(theta + np.pi / 2), np.sin(theta + np.pi / 2)
    for image, valid in zip(images, valids, strict=True):
        img = _filled(image, valid)
        best, best_score = None, -np.inf
        # An empty track is symmetric about its centre: both rails look alike. A shadow
        # edge next to a ballast edge (the usual false pair) is not.
        smooth = ndi.gaussian_filter(img, sigma)
        asym = np.abs(
            _shifted(smooth, nr * half, nc * half) - _shifted(smooth, -nr * half, -nc * half)
        )
        for resp in _line_response(img, sigma):
            left = _shifted(resp, nr * half, nc * half)
            right = _shifted(resp, -nr * half, -nc * half)
            pair = np.minimum(left, right) - 0.5 * resp - 0.3 * asym
            # Rails are long: judge the polarity on the response averaged over 12 m along
            # the track, where car edges and ends (short) fade and rails stay.
            # With the wrong polarity the pair sits on each rail (ballast either side), so
            # a twin line appears one gauge away; with the right one it stands alone.
            sm = _along_mean(pair, theta, 12.0 / res, 9)
            twin = np.maximum(
                _shifted(sm, 2 * nr * half, 2 * nc * half),
                _shifted(sm, -2 * nr * half, -2 * nc * half),
            )
            top = sm >= np.percentile(sm, 99)
            score = float(np.median((sm - twin)[top]))
            if score > best_score:
                best, best_score = pair, score
        v = ndi.binary_erosion(valid, iterations=max(1, int(math.ceil(2 * half))))
        acc += np.where(v, best, 0)
        weight += v
    resp = np.where(weight > 0, acc / np.maximum(weight, 1), 0).astype(np.float32)
    resp = np.maximum(resp, 0)
    # Average along the track direction (rails are continuous; noise is not).
    out = _along_mean(resp, theta, 3.0 / res, max(3, int(round(3.0 / res)) | 1))
    return out.astype(np.float32), theta.astype(np.float32)


def _along_mean(arr: np.ndarray, theta: np.ndarray, length_px: float, taps: int) -> np.ndarray:
    """Mean of ``arr`` over ``taps`` points spread over ``length_px`` along ``theta``."""
    tr_, tc_ = np.cos(theta), np.sin(theta)
    out = np.zeros_like(arr)
    for k in np.linspace(-length_px / 2, length_px / 2, taps):
        out += arr if k == 0 else _shifted(arr, tr_ * k, tc_ * k)
    return out / taps


def _nms_across(resp: np.ndarray, theta: np.ndarray) -> np.ndarray:
    nr, nc = np.cos(theta + np.pi / 2), np.sin(theta + np.pi / 2)
    a = _shifted(resp, nr, nc)
    b = _shifted(resp, -nr, -nc)
    return (resp >= a) & (resp >= b)


_NEIGH = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def _trace_branches(skel: np.ndarray) -> list[np.ndarray]:
    """Split a skeleton into branches (ordered (row, col) pixel paths) at junctions."""
    h, w = skel.shape
    count = ndi.convolve(skel.astype(np.uint8), np.ones((3, 3), np.uint8), mode="constant") - 1
    junction = skel & (count >= 3)
    body = skel & ~junction
    labels, n = ndi.label(body, structure=np.ones((3, 3)))
    branches = []
    objs = ndi.find_objects(labels)
    for i, sl in enumerate(objs, start=1):
        if sl is None:
            continue
        pix = np.argwhere(labels[sl] == i) + [sl[0].start, sl[1].start]
        if len(pix) < 2:
            continue
        pset = {tuple(p) for p in pix}
        nb = {p: [q for d in _NEIGH if (q := (p[0] + d[0], p[1] + d[1])) in pset] for p in pset}
        ends = [p for p, q in nb.items() if len(q) <= 1]
        start = ends[0] if ends else next(iter(pset))
        path = [start]
        seen = {start}
        cur = start
        while True:
            nxt = [q for q in nb[cur] if q not in seen]
            if not nxt:
                break
            # Prefer 4-connected steps to stay on the thin path.
            nxt.sort(key=lambda q: abs(q[0] - cur[0]) + abs(q[1] - cur[1]))
            cur = nxt[0]
            seen.add(cur)
            path.append(cur)
        branches.append(np.asarray(path, dtype=float))
    return branches


def _end_direction(path: np.ndarray, at_start: bool, n: int) -> np.ndarray:
    seg = path[:n] if at_start else path[-n:][::-1]
    d = seg[0] - seg[-1]  # pointing outwards from the branch
    norm = np.hypot(*d)
    return d / norm if norm > 0 else np.zeros(2)


def _link(branches: list[np.ndarray], res: float, *, max_gap_m: float) -> list[np.ndarray]:
    """Join branch ends whose directions continue each other (greedy, best first)."""
    n_dir = max(3, int(round(4.0 / res)))
    ends = []
    for i, b in enumerate(branches):
        for at_start in (True, False):
            p = b[0] if at_start else b[-1]
            ends.append((i, at_start, p, _end_direction(b, at_start, min(n_dir, len(b)))))
    cands = []
    for a in range(len(ends)):
        ia, sa, pa, da = ends[a]
        for c in range(a + 1, len(ends)):
            ic, sc, pc, dc = ends[c]
            if ia == ic:
                continue
            v = pc - pa
            dist = float(np.hypot(*v))
            if dist * res > max_gap_m:
                continue
            if float(da @ -dc) < math.cos(math.radians(20)):
                continue  # not heading into each other
            if dist > 0:
                # Lateral offset of each end from the other's heading: tracks are parallel
                # 4.5 m apart, so a bridge may not step sideways by more than ~1 m.
                off_a = abs(float(da[0] * v[1] - da[1] * v[0]))
                off_c = abs(float(dc[0] * v[1] - dc[1] * v[0]))
                if max(off_a, off_c) * res > max(1.0, 2 * res) or float(da @ v) <= 0:
                    continue
            cands.append((dist - 10 * float(da @ -dc), a, c))
    cands.sort()
    used: set[int] = set()
    partner: dict[int, int] = {}
    for _, a, c in cands:
        if a in used or c in used:
            continue
        used.update((a, c))
        partner[a] = c
        partner[c] = a
    # Walk chains.
    visited: set[int] = set()
    chains = []
    for i in range(len(branches)):
        if i in visited:
            continue
        # find a chain end: go from branch i's start outwards until no partner
        cur, entered_at_start = i, True
        guard = 0
        while True:
            e = 2 * cur + (0 if entered_at_start else 1)
            if e not in partner or guard > len(branches):
                break
            other = partner[e]
            nxt = other // 2
            if nxt == i:
                break
            cur, entered_at_start = nxt, (other % 2 == 1)
            guard += 1
        # cur is the chain end; its free end is the 'entered_at_start' side
        start_branch, free_is_start = cur, entered_at_start
        pts = []
        b, from_start = start_branch, free_is_start
        while b not in visited:
            visited.add(b)
            path = branches[b] if from_start else branches[b][::-1]
            pts.append(path)
            exit_end = 2 * b + (1 if from_start else 0)
            if exit_end not in partner:
                break
            other = partner[exit_end]
            b, from_start = other // 2, (other % 2 == 0)
        chains.append(np.concatenate(pts))
    return chains


def _smooth_path(path: np.ndarray, window: int) -> np.ndarray:
    if len(path) < 3 or window < 2:
        return path
    pad = window // 2
    padded = np.pad(path, ((pad, pad), (0, 0)), mode="edge")
    kernel = np.ones(window) / window
    return np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(2)], axis=1)[
        : len(path)
    ]


def extract_tracks(
    images: Sequence[np.ndarray],
    valids: Sequence[np.ndarray],
    grid: SiteGrid,
    aoi: BaseGeometry,
    *,
    spacing_m: float = 4.5,
    min_length_m: float = 20.0,
    max_gap_m: float = 60.0,
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
        Minimum centre-to-centre distance of parallel tracks; weaker lines closer than
        this to a stronger one are dropped.
    min_length_m : float
        Shorter pieces are dropped.
    max_gap_m : float
        Collinear pieces separated by at most this (e.g. under a train in a single image)
        are joined.

    Returns
    -------
    list of Track
        Ids ``T1..Tn`` ordered across the dominant track direction (left to right when
        looking along it), then along it.

    Notes
    -----
    The response is the weaker of the two thin-line responses at +/- half the gauge
    across the local direction, minus half the response on the centre line, so ballast
    edges, car bodies and the gaps between tracks (which have no rail pair) stay dark.
    """
    if not images:
        return []
    res = grid.resolution_m
    resp, theta = track_response(images, valids, grid)
    inside = grid.rasterize(aoi.buffer(3 * res))
    cand = resp[inside & (resp > 0)]
    if cand.size == 0:
        return []
    # Noise level from the bulk of the AOI (most pixels are not on a rail pair).
    med = float(np.median(resp[inside]))
    mad = float(np.median(np.abs(resp[inside] - med))) * 1.4826 + 1e-9
    hi = max(med + 8 * mad, 0.25 * float(np.percentile(cand, 99.5)))
    lo = 0.5 * hi
    peaks = _nms_across(resp, theta) & (resp > lo)
    seeds = peaks & (resp > hi)
    lab, _ = ndi.label(peaks, structure=np.ones((3, 3)))
    keep = np.unique(lab[seeds])
    mask = np.isin(lab, keep[keep > 0])
    from skimage.morphology import skeletonize

    mask = ndi.binary_closing(mask, structure=np.ones((3, 3)))
    skel = skeletonize(mask)
    branches = [b for b in _trace_branches(skel) if len(b) * res >= 1.5]
    chains = _link(branches, res, max_gap_m=max_gap_m)
    t = grid.transform
    lines: list[tuple[float, LineString]] = []
    window = max(3, int(round(3.0 / res)))
    for ch in chains:
        if len(ch) * res < min_length_m * 0.5:
            continue
        sm = _smooth_path(ch, window)
        xs = t.c + (sm[:, 1] + 0.5) * t.a
        ys = t.f + (sm[:, 0] + 0.5) * t.e
        line = LineString(np.column_stack([xs, ys])).simplify(0.1 * res)
        if line.length < min_length_m * 0.5:
            continue
        strength = float(np.mean(resp[ch[:, 0].astype(int), ch[:, 1].astype(int)]))
        lines.append((strength * line.length, line))
    lines.sort(key=lambda p: -p[0])
    kept: list[LineString] = []
    for _, line in lines:
        clipped = line.intersection(aoi)
        parts = (
            list(clipped.geoms)
            if isinstance(clipped, MultiLineString)
            else ([clipped] if isinstance(clipped, LineString) else [])
        )
        for part in parts:
            if part.length < min_length_m:
                continue
            # Drop duplicates: most of the line lies within spacing of a kept stronger line.
            dup = False
            for k in kept:
                near = part.intersection(k.buffer(0.6 * spacing_m)).length
                if near > 0.7 * part.length:
                    dup = True
                    break
            if not dup:
                kept.append(part)
    return _order(kept)


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

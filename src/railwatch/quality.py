"""Observation quality along the tracks: nodata coverage, cloud / heavy haze, snow -> status.

Quality is measured where it matters, on the track strips, station by station (one station
per ``step`` along each centre line):

* observed: the whole car-width strip at the station has data (valid mask) and lies in the
  AOI;
* cloud: the strip is bright and has lost its texture. Every track carries texture in clear
  air: two rails on ballast, or a car body with edges and a dark shadow beside it. Cloud and
  heavy haze flatten that texture, snow does not (rails and cars stay visible on snow), so
  the test is *bright and flat over at least ~10 m of track* (flat: in absolute terms, or
  for thin cloud over a very bright strip relative to its brightness), and with a
  background model *texture far below what this station shows in clear scenes*;
* thin cloud: with a background model, in a scene where some cloud was found, a station
  whose light is raised above what its contrast asks for (:func:`_veil`): a cloud's
  semi-transparent rim adds its own light and lowers the contrast of everything beneath
  it, however little it flattens;
* snow: bright but textured.

``coverage`` is the observed share of the track length inside the AOI; ``cloud`` is the
share of that observed length under cloud; the status follows :class:`QualityConfig`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy import ndimage as ndi
from shapely.geometry.base import BaseGeometry

from railwatch.align import nanmedian_stack
from railwatch.site import QualityConfig, SiteGrid
from railwatch.tracks import Track, TrackFrame, sample_frame, track_frame

__all__ = [
    "Quality",
    "TrackObservation",
    "assess",
    "observe_tracks",
    "quality_from_observations",
    "strip_step_m",
    "gray_bands",
    "STRIP_HALF_WIDTH_M",
]

logger = logging.getLogger(__name__)

STRIP_HALF_WIDTH_M = 2.4
"""Half width of the sampled strip: body (1.6 m) plus the shadow beside it, short of the
neighbouring track's body at 4.5 m spacing."""

FLAT_TEXTURE = 0.012
"""Across-track standard deviation (reflectance units) below which a strip is 'flat'.
Clear-air strips show about 0.02-0.2 (rails on ballast, a car and its shadow)."""

BRIGHT = 0.45
"""Mean reflectance above which a flat strip is cloud rather than dark shadow."""

CLOUD_EDGE_M = 12.0
"""Track length either side of a detected cloud also treated as cloud (soft edges)."""

THIN_CLOUD_BRIGHT = 0.6
"""Mean reflectance above which a strip must show its rails (see THIN_CLOUD_TEXTURE)."""

THIN_CLOUD_TEXTURE = 0.04
"""Across-track texture, as a share of the brightness, below which a bright strip is thin
cloud: in clear air dark rails and cars on bright ground (snow, pale ballast) give
0.07 or more; thin cloud adds light without texture."""

HAZE_RATIO = 0.3
"""With a background model: texture below this share of the clear-scene texture is haze."""

MIN_CLOUD_M = 10.0
"""Clouds are large: flat runs shorter than this along a track are cars or roofs."""

VEIL_LIGHT = 0.2
"""Light added by thin cloud (reflectance units) from which a station is under cloud
(:func:`_veil`): a cloud itself is about 0.8-0.9, so about a quarter of one in front of
the ground."""

VEIL_CONTRAST = 0.7
"""Share of the usual contrast below which a station with added light is under thin
cloud (:func:`_veil`): a veil passing a share ``t`` of the ground's light keeps that
share of its contrast, here the same quarter to a third hidden as :data:`VEIL_LIGHT`
adds. The usual contrast is the scene's, or the clear-scene texture where snow raises
the scene's above it (dark rails on snow)."""

VEIL_BRIGHTER = 0.1
"""Least rise (reflectance units) above the brightness of the scene's usual light for a
veil (:func:`_veil`): a quarter of a cloud's light in front of ground of about 0.45
raises it by about this much. A station that is only less textured than usual (a
usually busy station empty today) is not brighter."""

VEIL_MAX_SNOW = 0.1
"""Share of the observed track on snow above which thin cloud is not looked for: snow
brightens the ground, not the light (as for the light correction of
:mod:`railwatch.detect`)."""

VEIL_LEVEL_TOL = 1.25
"""Stations whose contrast is within this factor of the scene's median are in the
scene's usual light (:func:`_veil`)."""


@dataclass(frozen=True, slots=True)
class Quality:
    """Observation quality of one acquisition over the tracks.

    Attributes
    ----------
    coverage : float
        Observed (valid data) share of the track length inside the AOI, 0-1.
    cloud : float
        Share of the observed track length under cloud or heavy haze, 0-1.
    snow : float
        Share of the observed track length on snow, 0-1.
    status : str
        ``ok``, ``partial``, ``obscured`` or ``no_coverage``.
    """

    coverage: float
    cloud: float
    snow: float
    status: str

    def to_record(self) -> dict[str, Any]:
        """Plain mapping for table rows."""
        return {
            "coverage": self.coverage,
            "cloud": self.cloud,
            "snow": self.snow,
            "status": self.status,
        }


@dataclass(frozen=True, slots=True)
class TrackObservation:
    """Per-station observation flags along one track.

    Attributes
    ----------
    track : Track
    frame : TrackFrame
        Sampling geometry (stations and across offsets).
    values : numpy.ndarray
        (bands, m, n) strip samples, NaN outside the image.
    inside : numpy.ndarray
        (n,) bool, station inside the AOI.
    valid : numpy.ndarray
        (n,) bool, the car-width strip at the station has data.
    cloud : numpy.ndarray
        (n,) bool, under cloud or heavy haze.
    snow : numpy.ndarray
        (n,) bool, on snow.
    texture : numpy.ndarray
        (n,) across-track standard deviation of the strip, reflectance units.
    bands : tuple of str
        Band names of ``values``.
    thin : numpy.ndarray or None
        (n,) bool, the part of ``cloud`` found only as a thin cloud's rim (:func:`_veil`,
        with its margin): not seen, but its light is the yard's as usual (see
        :func:`railwatch.detect.analyse_scene`). None where there is none.
    """

    track: Track
    frame: TrackFrame
    values: np.ndarray
    inside: np.ndarray
    valid: np.ndarray
    cloud: np.ndarray
    snow: np.ndarray
    texture: np.ndarray
    bands: tuple[str, ...] = ()
    thin: np.ndarray | None = None

    @property
    def observed(self) -> np.ndarray:
        """(n,) bool: in the AOI, with data and not under cloud."""
        return self.inside & self.valid & ~self.cloud


def strip_step_m(grid: SiteGrid) -> float:
    """Station spacing for a grid: half a pixel (coupling gaps are 0.5-1.5 m), 0.15-0.5 m."""
    return float(np.clip(grid.resolution_m / 2, 0.15, 0.5))


def gray_bands(bands: Sequence[str]) -> list[int]:
    """Indices of the visible (or panchromatic) bands; all bands when none is named."""
    idx = [i for i, b in enumerate(bands) if b in ("red", "green", "blue", "pan")]
    return idx or list(range(len(bands)))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index pairs of the True runs of a 1-D mask."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(d[::2].tolist(), d[1::2].tolist(), strict=True))


def _sample_mask(mask: np.ndarray, values: np.ndarray, frame: Any) -> np.ndarray:
    """(m, n) :func:`sample_frame` of ``values`` (``mask`` as float32) on ``frame``.

    Where no pixel within reach of the frame's samples is set, the samples are 0 on the
    image and NaN off it, as sampling would give, without interpolating.
    """
    h, w = mask.shape
    r, c = frame.rows, frame.cols
    r0, r1 = max(int(np.floor(r.min())) - 1, 0), min(int(np.ceil(r.max())) + 2, h)
    c0, c1 = max(int(np.floor(c.min())) - 1, 0), min(int(np.ceil(c.max())) + 2, w)
    if r0 < r1 and c0 < c1 and mask[r0:r1, c0:c1].any():
        return sample_frame(values, frame)[0]
    on = (r >= -0.5) & (r <= h - 0.5) & (c >= -0.5) & (c <= w - 0.5)
    return np.where(on, np.float32(0.0), np.float32(np.nan))


def observe_tracks(
    scene_data: np.ndarray,
    bands: Sequence[str],
    valid: np.ndarray,
    grid: SiteGrid,
    tracks: Sequence[Track],
    aoi: BaseGeometry,
    *,
    background: Any = None,
) -> list[TrackObservation]:
    """Sample every track strip and flag each station as observed, cloud or snow.

    Parameters
    ----------
    scene_data : numpy.ndarray
        (bands, H, W) float32 scaled about 0-1, on ``grid``.
    bands : sequence of str
        Band names.
    valid : numpy.ndarray
        (H, W) bool.
    grid : SiteGrid
    tracks : sequence of Track
    aoi : shapely geometry
        AOI in the grid CRS.
    background : railwatch.detect.Background, optional
        When given, its clear-scene texture per station sharpens the haze test and
        finds thin cloud that leaves the rails visible (:func:`_veil`).

    Returns
    -------
    list of TrackObservation
    """
    from shapely import contains_xy

    step = strip_step_m(grid)
    gidx = gray_bands(bands)
    bad_px = ~(np.isfinite(scene_data).all(axis=0)) | ~np.asarray(valid, bool)
    invalid = bad_px.astype(np.float32)
    min_run = max(1, int(round(MIN_CLOUD_M / step)))
    # Along-track medians over ~5 m: one car end or one noisy station decides nothing.
    k = max(3, int(round(5.0 / step)) | 1)
    strips = []
    for track in tracks:
        frame = track_frame(grid, track.line, step_m=step, half_width_m=STRIP_HALF_WIDTH_M)
        values = sample_frame(scene_data, frame)
        bad = _sample_mask(bad_px, invalid, frame)
        body = np.abs(frame.offsets_m) <= 1.7
        st_valid = np.isfinite(bad[body]).all(axis=0) & (np.nan_to_num(bad[body], nan=1) < 0.5).all(
            axis=0
        )
        inside = contains_xy(aoi, frame.x, frame.y)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            gray = np.nanmean(values[gidx], axis=0)  # (m, n)
            texture = np.nanstd(gray, axis=0)
            bright = nanmedian_stack(gray)
        texture = np.nan_to_num(texture, nan=0.0)
        bright = np.nan_to_num(bright, nan=0.0)
        tex_s = ndi.median_filter(texture, size=k, mode="nearest")
        bri_s = ndi.median_filter(bright, size=k, mode="nearest")
        flat = tex_s < FLAT_TEXTURE
        flat |= (tex_s < THIN_CLOUD_TEXTURE * bri_s) & (bri_s > THIN_CLOUD_BRIGHT)
        ref_tex = None if background is None else background.texture_for(track.track_id, frame)
        if ref_tex is not None:
            flat |= tex_s < HAZE_RATIO * ref_tex
        cand = flat & (bri_s > BRIGHT) & st_valid
        strips.append(
            _Strip(track, frame, values, inside, st_valid, texture, bri_s, cand, gray, ref_tex)
        )
    edge = max(1, int(round(CLOUD_EDGE_M / step)))
    # Cloud edges are soft: thin, semi-transparent cloud around a detected core or rim
    # brightens and flattens the track without meeting either test.
    clouds = [_soft_edges(_long_runs(st.cand, min_run), st.valid, edge) for st in strips]
    seen = np.concatenate([st.inside & st.valid & ~c for st, c in zip(strips, clouds, strict=True)])
    on_snow = np.concatenate([st.bright > 0.7 for st in strips])[seen]
    # Thin cloud is the rim of a cloud: looked for only where the scene shows a cloud's
    # core (a uniform thin layer is haze, which the scene's own level takes out), and
    # not on snow, whose brightness maps the snow rather than the light.
    thins: list[np.ndarray | None] = [None] * len(strips)
    if any(c.any() for c in clouds) and on_snow.size and on_snow.mean() <= VEIL_MAX_SNOW:
        veils = _veil(
            [(st.bright, _contrast(st, k), st.inside & st.valid & ~st.cand) for st in strips]
        )
        thins = [
            _soft_edges(_long_runs(v & st.valid, min_run), st.valid, edge) & ~c
            for c, v, st in zip(clouds, veils, strips, strict=True)
        ]
    out = []
    for st, cloud, thin in zip(strips, clouds, thins, strict=True):
        if thin is not None and thin.any():
            cloud = cloud | thin
        else:
            thin = None
        snow = st.valid & ~cloud & (st.bright > 0.7)
        out.append(
            TrackObservation(
                st.track,
                st.frame,
                st.values,
                st.inside,
                st.valid,
                cloud,
                snow,
                st.texture,
                tuple(bands),
                thin,
            )
        )
    return out


class _Strip(NamedTuple):
    """One track's strip as :func:`observe_tracks` first reads it."""

    track: Track
    frame: TrackFrame
    values: np.ndarray
    inside: np.ndarray
    valid: np.ndarray
    texture: np.ndarray
    bright: np.ndarray
    """(n,) along-track median of the strip's brightness."""
    cand: np.ndarray
    """(n,) candidate cloud core: bright and flat."""
    gray: np.ndarray
    """(m, n) gray samples."""
    ref_tex: np.ndarray | None
    """(n,) the background's clear-scene texture, None without a background."""


def _contrast(strip: _Strip, k: int) -> np.ndarray | None:
    """(n,) texture about a straight line across the strip, over the clear-scene texture.

    The edge of a cloud or of its shadow crosses the strip as a ramp of light, which the
    plain spread counts as texture: measured about a straight line it is none. Smoothed
    over ``k`` stations like the other along-track values; None without a background.
    """
    if strip.ref_tex is None:
        return None
    ramp_free = ndi.median_filter(
        _detrended_std(strip.gray, strip.frame.offsets_m), size=k, mode="nearest"
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        return ramp_free / np.where(strip.ref_tex > 0, strip.ref_tex, np.nan)


def _soft_edges(cloud: np.ndarray, valid: np.ndarray, edge: int) -> np.ndarray:
    """``cloud`` widened by ``edge`` stations each way along the track, within ``valid``."""
    if not cloud.any():
        return cloud
    return ndi.binary_dilation(cloud, iterations=edge) & valid


def _long_runs(mask: np.ndarray, min_len: int) -> np.ndarray:
    """``mask`` keeping only its runs of at least ``min_len`` stations."""
    out = np.zeros_like(mask)
    for a, b in _runs(mask):
        if b - a >= min_len:
            out[a:b] = True
    return out


def _detrended_std(gray: np.ndarray, offsets_m: np.ndarray) -> np.ndarray:
    """(n,) across-track standard deviation of ``gray`` (m, n) about its best straight line.

    Rails, a body and its shadow are local features; a change of light across the strip
    (the edge of a cloud or of a cloud's shadow) is a ramp, which the line takes away.
    NaN samples are left out; a station without two samples gives 0.

    Examples
    --------
    >>> import numpy as np
    >>> u = np.linspace(-2.0, 2.0, 9)
    >>> ramp = (0.3 + 0.1 * u)[:, None]
    >>> float(np.round(_detrended_std(ramp, u)[0], 6))
    0.0
    """
    ok = np.isfinite(gray)
    w = ok.astype(np.float64)
    g = np.where(ok, gray, 0.0)
    u = offsets_m[:, None] * w
    n = w.sum(axis=0)
    su, sg = u.sum(axis=0), g.sum(axis=0)
    suu, sug = (u * offsets_m[:, None]).sum(axis=0), (u * g).sum(axis=0)
    den = n * suu - su**2
    fit = den > 1e-12
    slope = np.where(fit, (n * sug - su * sg) / np.where(fit, den, 1.0), 0.0)
    icpt = (sg - slope * su) / np.maximum(n, 1.0)
    res = np.where(ok, gray - icpt - slope * offsets_m[:, None], 0.0)
    return np.sqrt((res**2).sum(axis=0) / np.maximum(n, 1.0))


def _veil(
    tracks: Sequence[tuple[np.ndarray, np.ndarray | None, np.ndarray]],
) -> list[np.ndarray]:
    """Per track, (n,) True where thin cloud adds light in front of the ground.

    Parameters
    ----------
    tracks : sequence of (brightness, contrast, clear)
        Per track, the (n,) smoothed brightness, the (n,) contrast against the
        background's clear-scene texture (None without one) and the (n,) stations that
        are observed and not cloud cores.

    Returns
    -------
    list of numpy.ndarray

    Notes
    -----
    Light and shade scale ground and contrast together: a cloud's shadow (or the sun
    itself, or a darker day) leaves a station's brightness per unit of contrast as it is
    in the rest of the scene, the *level*: the median brightness of the stations within
    :data:`VEIL_LEVEL_TOL` of the scene's median contrast (the scene's usual light),
    divided by that contrast. A semi-transparent cloud passes a share ``t`` of the
    ground's light and adds ``(1 - t)`` of its own: the contrast falls to ``t`` and the
    brightness rises above ``contrast x level`` by the cloud's light. A station is under
    thin cloud where that excess is at least :data:`VEIL_LIGHT`, its contrast below
    :data:`VEIL_CONTRAST` of the usual and its brightness at least
    :data:`VEIL_BRIGHTER` above the usual light's (and above :data:`BRIGHT`). A car
    raises the contrast of its strip and a dark car lowers its brightness: neither adds
    light. The scene's own level takes haze and the day's light out, so a uniformly hazy
    scene has no veil. Without a background, or with fewer than 100 stations in the
    usual light, nothing is flagged.
    """
    none = [np.zeros(b.shape, bool) for b, _, _ in tracks]
    usable = [(b, c, ok) for b, c, ok in tracks if c is not None]
    if not usable:
        return none
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.concatenate([c[ok] for _, c, ok in usable])
        bright = np.concatenate([b[ok] for b, _, ok in usable])
        seen = np.isfinite(ratio) & (ratio > 0)
        ratio, bright = ratio[seen], bright[seen]
        if ratio.size < 100:
            return none
        usual = float(np.median(ratio))
        in_usual_light = np.abs(np.log(ratio / usual)) < np.log(VEIL_LEVEL_TOL)
        if in_usual_light.sum() < 100:
            return none
        usual_bright = float(np.median(bright[in_usual_light]))
        level = usual_bright / usual
        out = []
        for b, c, _ in tracks:
            if c is None:
                out.append(np.zeros(b.shape, bool))
                continue
            cc = np.where(np.isfinite(c), c, np.inf)
            out.append(
                (b - cc * level >= VEIL_LIGHT)
                & (cc < VEIL_CONTRAST * min(usual, 1.0))
                & (b >= max(BRIGHT, usual_bright + VEIL_BRIGHTER))
            )
    return out


def quality_from_observations(
    observations: Sequence[TrackObservation],
    cfg: QualityConfig,
    *,
    unsearched_share: float = 0.0,
) -> Quality:
    """Coverage, cloud and snow shares and the status from per-station flags.

    Status rules (``cfg`` = :class:`QualityConfig`): ``no_coverage`` when coverage is
    below ``min_coverage``; ``obscured`` when more than ``max_cloud`` of the observed
    length is under cloud; ``partial`` when the clear, observed share of the track length
    is below ``full_coverage``; ``ok`` otherwise.

    ``unsearched_share`` is the share of the AOI's area where tracks could not have been
    found (extracted tracks, and no image of the stack covered it). The track length
    there is unknown; taken at the density of the searched part, coverage scales by
    ``1 - unsearched_share``.
    """
    step_len = np.array([o.frame.step_m for o in observations] or [0.0])
    total = float(sum(o.inside.sum() * s for o, s in zip(observations, step_len, strict=False)))
    if total <= 0:
        return Quality(0.0, 0.0, 0.0, "no_coverage")
    seen = float(
        sum((o.inside & o.valid).sum() * s for o, s in zip(observations, step_len, strict=False))
    )
    cloudy = float(
        sum(
            (o.inside & o.valid & o.cloud).sum() * s
            for o, s in zip(observations, step_len, strict=False)
        )
    )
    snowy = float(
        sum(
            (o.inside & o.valid & o.snow).sum() * s
            for o, s in zip(observations, step_len, strict=False)
        )
    )
    coverage = seen / total * (1.0 - min(max(unsearched_share, 0.0), 1.0))
    cloud = cloudy / seen if seen > 0 else 0.0
    snow = snowy / seen if seen > 0 else 0.0
    if coverage < cfg.min_coverage:
        status = "no_coverage"
    elif cloud > cfg.max_cloud:
        status = "obscured"
    elif coverage * (1.0 - cloud) < cfg.full_coverage:
        status = "partial"
    else:
        status = "ok"
    return Quality(round(coverage, 4), round(cloud, 4), round(snow, 4), status)


def assess(
    scene_data: np.ndarray,
    bands: tuple[str, ...],
    valid: np.ndarray,
    grid: SiteGrid,
    tracks: Sequence[Track],
    aoi: BaseGeometry,
    cfg: QualityConfig,
    *,
    background: Any = None,
) -> Quality:
    """Quality of one (aligned) acquisition over the tracks inside the AOI.

    Parameters
    ----------
    scene_data : numpy.ndarray
        (bands, H, W) float32 scaled about 0-1, on ``grid``.
    bands : tuple of str
    valid : numpy.ndarray
        (H, W) bool.
    grid : SiteGrid
    tracks : sequence of Track
        Centre lines in the grid CRS. Without tracks the AOI area itself is measured.
    aoi : shapely geometry
        AOI in the grid CRS.
    cfg : QualityConfig
    background : railwatch.detect.Background, optional

    Returns
    -------
    Quality
    """
    if not tracks:
        return _quality_without_tracks(scene_data, bands, valid, grid, aoi, cfg)
    obs = observe_tracks(scene_data, bands, valid, grid, tracks, aoi, background=background)
    return quality_from_observations(obs, cfg)


def _quality_without_tracks(
    scene_data: np.ndarray,
    bands: Sequence[str],
    valid: np.ndarray,
    grid: SiteGrid,
    aoi: BaseGeometry,
    cfg: QualityConfig,
) -> Quality:
    inside = grid.rasterize(aoi)
    n = int(inside.sum())
    if n == 0:
        return Quality(0.0, 0.0, 0.0, "no_coverage")
    seen = inside & valid
    coverage = float(seen.sum()) / n
    gray = scene_data[gray_bands(bands)].mean(axis=0)
    size = max(3, int(round(5.0 / grid.resolution_m)))
    mean = ndi.uniform_filter(gray, size)
    std = np.sqrt(np.maximum(ndi.uniform_filter(gray * gray, size) - mean**2, 0))
    cloud_px = (std < FLAT_TEXTURE) & (mean > BRIGHT)
    cloud_px = ndi.binary_opening(cloud_px, iterations=max(1, int(round(4 / grid.resolution_m))))
    cloud = float((cloud_px & seen).sum()) / max(1, int(seen.sum()))
    q = quality_from_observations([], cfg)
    status = q.status
    if coverage >= cfg.min_coverage:
        status = (
            "obscured"
            if cloud > cfg.max_cloud
            else ("partial" if coverage * (1 - cloud) < cfg.full_coverage else "ok")
        )
    snow = float(((mean > 0.7) & ~cloud_px & seen).sum()) / max(1, int(seen.sum()))
    return Quality(round(coverage, 4), round(cloud, 4), round(snow, 4), status)

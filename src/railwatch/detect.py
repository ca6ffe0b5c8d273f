"""Rail vehicles along the tracks: occupancy, splitting into vehicles, type, confidence, count.

Each track is sampled as a strip (stations every pixel along the centre line, samples
across it out to the shadow beside a car body). A station is *occupied* when its
across-track profile differs from the empty-track appearance:

* with a :class:`Background` (learned over the aligned stack): the per-station empty
  profile and its spread between dates; each scene is first normalised by its own
  brightness and contrast, so sun, haze and season do not count as change;
* always, from the scene alone: the yard-wide empty-track profile (rails on ballast) is
  the densest cluster of station profiles of the scene, because empty track looks the same
  everywhere while cars come in every colour and cast a shadow beside them.

The distance is a robust RMS of per-sample z-scores. Occupied runs are split into vehicles
by dynamic programming over cut positions, scored by the length priors of
:class:`~railwatch.site.VehiclePriors` and by the evidence for a coupling gap at each cut
(a dip of the change score where ballast shows between bodies, or a change of body
colour). The same recursion, summed instead of minimised, gives the posterior of the
number of vehicles in each run, from which the count interval comes (see
:func:`count_interval`).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage as ndi
from scipy.special import logsumexp
from shapely import union_all
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from railwatch.quality import (
    Quality,
    TrackObservation,
    gray_bands,
    observe_tracks,
    quality_from_observations,
)
from railwatch.site import QualityConfig, Site, SiteGrid, VehiclePriors
from railwatch.tracks import Track, TrackFrame

__all__ = [
    "Vehicle",
    "Background",
    "SceneAnalysis",
    "learn_background",
    "analyse_scene",
    "occupancy_scores",
    "split_run",
    "count_interval",
]

logger = logging.getLogger(__name__)

PROFILE_HALF_WIDTH_M = 2.1
"""Across-track extent used for the change score: body (1.6 m) and the start of its shadow,
short of the shadows cast by cars on the neighbouring track."""

NOISE_FLOOR = 0.012
"""Smallest per-sample spread (reflectance units) used in z-scores: sensor noise."""

THRESHOLD = 3.0
"""Change score (robust RMS z) above which a station is occupied."""

COARSE_GSD_M = 1.5
"""At or above this pixel size single cars are not resolved: counts come from length."""


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Vehicle:
    """One detected rail vehicle.

    Attributes
    ----------
    track_id : str
    polygon : shapely.geometry.Polygon
        Body outline in the grid CRS, oriented along the track.
    length_m : float
        Length over couplers, metres.
    type : str
        ``tank``, ``open``, ``flat``, ``covered``, ``locomotive`` or ``unknown``.
    confidence : float
        0-1. Below ``site.detection.min_confidence`` the vehicle is reported but not
        counted.
    observed_share : float
        Share of the vehicle's length that was observed (clear data inside the AOI).
    counted : bool
        Whether the vehicle enters ``railcars`` (confident and mostly observed).
    """

    track_id: str
    polygon: Polygon
    length_m: float
    type: str
    confidence: float
    observed_share: float = 1.0
    counted: bool = True

    def to_record(self) -> dict[str, Any]:
        """Plain mapping (without geometry) for table rows."""
        return {
            "track_id": self.track_id,
            "type": self.type,
            "length_m": round(self.length_m, 2),
            "confidence": round(self.confidence, 3),
        }


@dataclass(frozen=True, slots=True)
class _TrackBackground:
    profile: np.ndarray  # (bands, m, n) normalised empty profile per station
    spread: np.ndarray  # (bands, m, n) robust spread between dates
    support: np.ndarray  # (n,) number of empty observations per station
    texture: np.ndarray  # (n,) clear-scene across-track texture, reflectance units


@dataclass(frozen=True, slots=True)
class Background:
    """Empty-track appearance learned over the aligned stack, per track and station.

    Attributes
    ----------
    tracks : dict
        Per track id: normalised empty profile and spread per station, the number of
        dates that showed the station empty, and its clear-scene texture.
    n_scenes : int
        Scenes that contributed.
    step_m : float
        Station spacing the model was learned with.
    """

    tracks: dict[str, _TrackBackground] = field(default_factory=dict)
    n_scenes: int = 0
    step_m: float = 0.5

    def for_track(self, track_id: str, frame: TrackFrame) -> _TrackBackground | None:
        """The model of one track if it matches ``frame`` (same stations), else None."""
        tb = self.tracks.get(track_id)
        if tb is None or tb.support.shape[0] != frame.s_m.shape[0]:
            return None
        return tb

    def texture_for(self, track_id: str, frame: TrackFrame) -> np.ndarray | None:
        """Clear-scene texture per station (for the haze test), or None."""
        tb = self.for_track(track_id, frame)
        if tb is None or self.n_scenes < 3:
            return None
        return np.where(tb.support >= 2, tb.texture, np.nan)


@dataclass(frozen=True, slots=True)
class SceneAnalysis:
    """Everything detected in one acquisition.

    Attributes
    ----------
    vehicles : tuple of Vehicle
        All detections, counted or not.
    quality : Quality
    railcars : int or None
        Counted vehicles; None when the yard is obscured or not covered.
    railcars_low, railcars_high : int or None
        Interval that should contain the true count in at least 90 % of acquisitions.
    by_type : dict
        Counted vehicles per type (every type present, zeros included).
    unobserved : shapely geometry
        Track parts inside the AOI not seen (nodata or cloud), grid CRS.
    """

    vehicles: tuple[Vehicle, ...]
    quality: Quality
    railcars: int | None
    railcars_low: int | None
    railcars_high: int | None
    by_type: dict[str, int]
    unobserved: BaseGeometry


# --------------------------------------------------------------------------- features


def _profiles(obs: TrackObservation, *, gray: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Strip samples within the profile half width: (bands, m', n), and the offsets.

    ``gray=True`` gives one channel (mean of the visible bands), comparable between
    products with different band sets; the background model is learned on it.
    """
    keep = np.abs(obs.frame.offsets_m) <= PROFILE_HALF_WIDTH_M + 1e-6
    vals = obs.values[:, keep, :]
    if gray:
        idx = gray_bands(obs.bands) if obs.bands else list(range(vals.shape[0]))
        vals = vals[idx].mean(axis=0, keepdims=True)
    return vals, obs.frame.offsets_m[keep]


def _normalise(obs_list: Sequence[TrackObservation], empty: Sequence[np.ndarray] | None):
    """Gray (location, scale) of a scene from its (empty, observed) station samples."""
    vals = []
    for k, o in enumerate(obs_list):
        p, _ = _profiles(o, gray=True)
        sel = o.observed if empty is None else (o.observed & empty[k])
        if sel.any():
            vals.append(p[:, :, sel].reshape(p.shape[0], -1))
    if not vals:
        return None
    v = np.concatenate(vals, axis=1)
    loc = np.nanmedian(v, axis=1)
    scale = 1.4826 * np.nanmedian(np.abs(v - loc[:, None]), axis=1)
    return loc, np.maximum(scale, NOISE_FLOOR)


def _robust_rms(z: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
    # Cap single samples so one glint or a mast shadow cannot decide alone.
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.sqrt(np.nanmean(np.minimum(z * z, 400.0), axis=axis))


def _empty_template(
    obs_list: Sequence[TrackObservation],
) -> tuple[np.ndarray, np.ndarray] | None:
    """Yard-wide empty-track profile of one scene: the densest cluster of station profiles.

    Starting from the median profile, keep the closest third of the stations and take
    their median again, a few times (a trimmed mode search). Empty track looks alike
    everywhere; cars differ in colour and carry shadows, so they are trimmed away.
    Profiles are mirrored too (a track has no preferred side when empty).
    """
    cols = []
    for o in obs_list:
        p, _ = _profiles(o)
        if o.observed.any():
            cols.append(p[:, :, o.observed])
    if not cols:
        return None
    stack = np.concatenate(cols, axis=2)  # (b, m, N)
    stack = stack[:, :, np.isfinite(stack).all(axis=(0, 1))]
    if stack.shape[2] < 10:
        return None
    if stack.shape[2] > 6000:
        idx = np.linspace(0, stack.shape[2] - 1, 6000).astype(int)
        stack = stack[:, :, idx]
    tmpl = np.median(stack, axis=2)
    for _ in range(4):
        d = np.sqrt(((stack - tmpl[:, :, None]) ** 2).mean(axis=(0, 1)))
        close = d <= np.quantile(d, 0.3)
        tmpl = np.median(stack[:, :, close], axis=2)
        tmpl = 0.5 * (tmpl + tmpl[:, ::-1])
    d = np.sqrt(((stack - tmpl[:, :, None]) ** 2).mean(axis=(0, 1)))
    close = d <= np.quantile(d, 0.3)
    spread = 1.4826 * np.median(np.abs(stack[:, :, close] - tmpl[:, :, None]), axis=2)
    spread = 0.5 * (spread + spread[:, ::-1])
    return tmpl, np.maximum(spread, NOISE_FLOOR)


def occupancy_scores(
    observations: Sequence[TrackObservation],
    *,
    background: Background | None = None,
) -> list[np.ndarray]:
    """Change score per station of every track (robust RMS z; NaN where unobserved).

    Parameters
    ----------
    observations : sequence of TrackObservation
        From :func:`railwatch.quality.observe_tracks` for one scene.
    background : Background, optional

    Returns
    -------
    list of numpy.ndarray
        One (n,) float array per track. About 1 on empty track; cars score far above
        :data:`THRESHOLD`.
    """
    tmpl = _empty_template(observations)
    single = []
    for o in observations:
        p, _ = _profiles(o)
        if tmpl is None:
            single.append(np.full(p.shape[2], np.nan))
            continue
        t, s = tmpl
        z = (p - t[:, :, None]) / s[:, :, None]
        single.append(_robust_rms(z, (0, 1)))
    if background is None or background.n_scenes < 3:
        return [np.where(o.observed, d, np.nan) for o, d in zip(observations, single, strict=True)]
    empty = [np.nan_to_num(d, nan=np.inf) < THRESHOLD for d in single]
    norm = _normalise(observations, empty) or _normalise(observations, None)
    out = []
    for o, d in zip(observations, single, strict=True):
        tb = background.for_track(o.track.track_id, o.frame)
        if tb is None or norm is None:
            out.append(np.where(o.observed, d, np.nan))
            continue
        p, _ = _profiles(o, gray=True)
        loc, scale = norm
        pn = (p - loc[:, None, None]) / scale[:, None, None]
        z = (pn - tb.profile) / tb.spread
        dbg = _robust_rms(z, (0, 1))
        # Stations seldom seen empty rely on the scene alone.
        w = np.clip((tb.support - 1) / 3.0, 0.0, 1.0)
        comb = w * dbg + (1 - w) * np.nan_to_num(d, nan=0.0)
        out.append(np.where(o.observed, comb, np.nan))
    return out


# --------------------------------------------------------------------------- splitting


def _log_prior_table(priors: VehiclePriors, step: float, coarse: bool) -> tuple[np.ndarray, int]:
    """Log p(length) on the station lattice, for segment lengths 0..max (in stations)."""
    n_max = int(math.ceil(priors.max_length_m / step)) + 1
    lengths = np.arange(n_max + 1) * step
    sigma = (0.7 if not coarse else 2.0) + step
    dens = np.zeros_like(lengths)
    types = list(priors.lengths_m.values())
    for mu in types:
        dens += np.exp(-0.5 * ((lengths - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    dens /= len(types)
    span = priors.max_length_m - priors.min_length_m
    dens = 0.9 * dens + 0.1 / span
    logp = np.log(dens * step)
    logp[lengths < priors.min_length_m] = -np.inf
    logp[lengths > priors.max_length_m] = -np.inf
    return logp, n_max


def split_run(
    cut_evidence: np.ndarray,
    *,
    step_m: float,
    priors: VehiclePriors,
    open_start: bool = False,
    open_end: bool = False,
    coarse: bool = False,
    cut_weight: float = 4.0,
) -> tuple[list[int], np.ndarray]:
    """Split one occupied run into vehicles.

    Parameters
    ----------
    cut_evidence : numpy.ndarray
        (n + 1,) evidence in [0, 1] for a coupling gap at each station boundary of the run
        (index 0 and n are the run ends).
    step_m : float
        Station spacing, metres.
    priors : VehiclePriors
    open_start, open_end : bool
        The run is cut off there by the edge of the observed area, so the vehicle at that
        end may be seen only in part (its visible length is not judged by the priors).
    coarse : bool
        Cars are not resolved: ignore the cut evidence and widen the length priors.
    cut_weight : float
        Log-odds weight of full cut evidence.

    Returns
    -------
    cuts : list of int
        Boundary indices of the most probable segmentation, starting with 0 and ending
        with n.
    p_count : numpy.ndarray
        Posterior probability of the number of segments (index = number).

    Notes
    -----
    A segmentation's log-probability is the sum of ``log p(length)`` of its segments
    (the run's two ends carry half a gap more) plus, at each cut,
    ``cut_weight * (evidence - 0.5)``. Viterbi gives the best cuts; the forward sum per
    number of segments gives ``p_count``.
    """
    n = len(cut_evidence) - 1
    gap = priors.gap_m
    logp, n_max = _log_prior_table(priors, step_m, coarse)
    w = 0.0 if coarse else cut_weight
    cut_score = w * (np.clip(cut_evidence, 0, 1) - 0.5)
    half_gap = int(round(0.5 * gap / step_m))
    open_lp = math.log(1.0 / max(1, n_max))

    def seg_lp(a: int, b: int) -> float:
        length = b - a
        if (a == 0 and open_start) or (b == n and open_end):
            return open_lp if 1 <= length <= n_max else -np.inf
        length += half_gap * ((a == 0) + (b == n))
        return float(logp[length]) if length <= n_max else -np.inf

    k_max = max(1, int(n * step_m / priors.min_length_m) + 2)
    # Viterbi (best) and forward (sum per count).
    best = np.full(n + 1, -np.inf)
    back = np.zeros(n + 1, int)
    fwd = np.full((n + 1, k_max + 1), -np.inf)
    best[0] = 0.0
    fwd[0, 0] = 0.0
    for b in range(1, n + 1):
        a_lo = max(0, b - n_max)
        cands = np.arange(a_lo, b)
        lps = np.array([seg_lp(a, b) for a in cands])
        ok = np.isfinite(lps)
        if not ok.any():
            continue
        cands, lps = cands[ok], lps[ok]
        extra = cut_score[b] if b < n else 0.0
        tot = best[cands] + lps + extra
        i = int(np.argmax(tot))
        best[b], back[b] = tot[i], cands[i]
        prev = fwd[cands, :-1] + (lps + extra)[:, None]
        fwd[b, 1:] = logsumexp(prev, axis=0)
    if not np.isfinite(best[n]):
        # Too short or too long for the priors: one vehicle, or even pieces.
        k = max(1, int(round(n * step_m / priors.mean_length_m)))
        cuts = [int(round(i * n / k)) for i in range(k + 1)]
        p = np.zeros(k + 2)
        p[k] = 1.0
        return cuts, p
    cuts = [n]
    while cuts[-1] > 0:
        cuts.append(int(back[cuts[-1]]))
    cuts = cuts[::-1]
    lz = fwd[n]
    p = np.exp(lz - logsumexp(lz))
    return cuts, p


def count_interval(
    distributions: Sequence[np.ndarray], *, coverage: float = 0.9
) -> tuple[int, int]:
    """Central interval of a sum of independent counts.

    Parameters
    ----------
    distributions : sequence of numpy.ndarray
        Probability of each count (index = count), one per occupied run.
    coverage : float
        Probability mass inside the interval.

    Returns
    -------
    (low, high) : tuple of int

    Examples
    --------
    >>> count_interval([np.array([0, 0.5, 0.5]), np.array([0, 1.0])])
    (2, 3)
    """
    total = np.array([1.0])
    for p in distributions:
        total = np.convolve(total, p)
    cdf = np.cumsum(total)
    cdf /= cdf[-1]
    tail = 0.5 * (1 - coverage)
    low = int(np.searchsorted(cdf, tail - 1e-12))
    high = int(np.searchsorted(cdf, 1 - tail - 1e-12))
    return low, high


# --------------------------------------------------------------------------- vehicles


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(d[::2].tolist(), d[1::2].tolist(), strict=True))


def _occupied_runs(score: np.ndarray, step: float, threshold: float, priors: VehiclePriors):
    """Hysteresis runs of occupied stations, bridging coupling gaps."""
    s = np.nan_to_num(score, nan=0.0)
    hi = s > threshold
    lo = s > 0.6 * threshold
    lab, n = ndi.label(lo)
    keep = np.unique(lab[hi])
    occ = np.isin(lab, keep[keep > 0])
    # Bridge short dips (coupling gaps, a mast shadow on a bright roof).
    bridge = max(1, int(round(max(2.5, 2.5 * priors.gap_m) / step)))
    occ = ndi.binary_closing(np.pad(occ, bridge), structure=np.ones(bridge + 1))[bridge:-bridge]
    observed = np.isfinite(score)
    occ &= observed
    runs = [(a, b) for a, b in _runs(occ) if (b - a) * step >= 0.5 * priors.min_length_m]
    return runs


def _cut_evidence(
    score: np.ndarray, body: np.ndarray, a: int, b: int, step: float, threshold: float
) -> np.ndarray:
    """Evidence in [0, 1] for a coupling gap at each boundary a..b of a run."""
    seg = np.nan_to_num(score[a:b], nan=0.0)
    n = b - a
    # Dip: the score falls towards the empty level between two bodies.
    w = max(2, int(round(3.0 / step)))
    local = ndi.maximum_filter1d(seg, size=2 * w + 1, mode="nearest")
    low = ndi.minimum_filter1d(seg, size=max(1, int(round(1.0 / step))), mode="nearest")
    dip = np.clip((local - low) / np.maximum(local - 1.0, 1e-6), 0, 1)
    dip *= np.clip((local - threshold) / threshold, 0, 1)
    # Colour change between the bodies either side.
    col = body[:, a:b]  # (bands, n)
    k = max(2, int(round(4.0 / step)))
    csum = np.concatenate([np.zeros((col.shape[0], 1)), np.cumsum(col, axis=1)], axis=1)
    idx = np.arange(n + 1)
    l0 = np.clip(idx - k, 0, n)
    r1 = np.clip(idx + k, 0, n)
    g = max(1, int(round(0.5 / step)))
    l1 = np.clip(idx - g, 0, n)
    r0 = np.clip(idx + g, 0, n)
    left = (csum[:, l1] - csum[:, l0]) / np.maximum(l1 - l0, 1)
    right = (csum[:, r1] - csum[:, r0]) / np.maximum(r1 - r0, 1)
    change = np.sqrt(((left - right) ** 2).mean(axis=0))
    colour = 1.0 - np.exp(-((change / 0.08) ** 2))
    colour[(l1 - l0 < k // 2) | (r1 - r0 < k // 2)] = 0.0
    dip_b = np.concatenate([[0.0], np.maximum(dip[:-1], dip[1:]), [0.0]])
    return np.clip(np.maximum(dip_b, 0.8 * colour), 0, 1)


def _classify(
    profile: np.ndarray,
    offsets: np.ndarray,
    gidx: list[int],
    length_m: float,
    empty: np.ndarray | None,
    at_end: bool,
    priors: VehiclePriors,
) -> tuple[str, float]:
    """Vehicle type from length and across-track appearance; returns (type, fit 0-1)."""
    gray = profile[gidx].mean(axis=0)  # (m, n)
    centre = np.nanmedian(gray[np.abs(offsets) <= 0.45])
    sides = np.nanmedian(gray[(np.abs(offsets) > 0.8) & (np.abs(offsets) <= 1.3)])
    body = np.nanmedian(gray[np.abs(offsets) <= 1.3])
    along_std = float(np.nanstd(np.nanmedian(gray[np.abs(offsets) <= 1.2], axis=0)))
    ridge = centre - sides
    lengths = priors.lengths_m
    sigma = 1.0
    scores: dict[str, float] = {}
    for t, mu in lengths.items():
        scores[t] = -0.5 * ((length_m - mu) / sigma) ** 2
    if "tank" in scores:
        scores["tank"] += 3.0 * np.clip(ridge / 0.05, -1, 2)
    if "open" in scores:
        scores["open"] += 2.0 * np.clip((0.18 - body) / 0.06, -1, 2) + 2.0 * np.clip(
            -ridge / 0.04, -1, 1
        )
    if "flat" in scores and empty is not None:
        similar = float(np.nanmean(np.abs(gray - empty[gidx].mean(axis=0)[:, None])))
        scores["flat"] += 2.0 * np.clip((0.06 - similar) / 0.03, -1, 1)
    if "covered" in scores:
        scores["covered"] += 1.0 * np.clip(1 - abs(ridge) / 0.03, -1, 1) - along_std / 0.05
    if "locomotive" in scores:
        scores["locomotive"] += 1.0 if at_end else -2.0
    best = max(scores, key=scores.get)
    vals = np.array(list(scores.values()))
    p = np.exp(vals - vals.max())
    fit = float(p.max() / p.sum())
    return best, fit


def _vehicle_polygon(line, s0: float, s1: float, width_m: float) -> Polygon:
    piece = substring(line, max(0.0, s0), min(line.length, s1))
    if piece.geom_type != "LineString" or piece.length == 0:
        piece = substring(line, max(0.0, s0 - 0.5), min(line.length, s1 + 0.5))
    return piece.buffer(width_m / 2, cap_style="flat")


def _track_vehicles(
    obs: TrackObservation,
    score: np.ndarray,
    *,
    site: Site,
    gidx: list[int],
    threshold: float,
    coarse: bool,
    template: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[list[Vehicle], list[np.ndarray]]:
    empty_profile = None if template is None else template[0]
    priors = site.vehicles
    frame = obs.frame
    step = frame.step_m
    n_st = len(score)
    runs = _occupied_runs(score, step, threshold, priors)
    p, offs = _profiles(obs)
    inner = np.abs(offs) <= 1.2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        body_cols = np.nan_to_num(np.nanmean(p[:, inner, :], axis=1), nan=0.0)  # (bands, n)
    if template is not None:
        # Body-only change: where ballast shows between two bodies it falls to ~1.
        t, sp = template
        z = (p[:, inner, :] - t[:, inner, None]) / sp[:, inner, None]
        body_score = np.where(np.isfinite(score), _robust_rms(z, (0, 1)), np.nan)
    else:
        body_score = score
    observed = np.isfinite(score)
    vehicles: list[Vehicle] = []
    dists: list[np.ndarray] = []
    s_start = frame.s_m[0] - step / 2
    for a, b in runs:
        open_start = a == 0 or not observed[a - 1]
        open_end = b == n_st or not observed[b]
        ev = _cut_evidence(body_score, body_cols, a, b, step, threshold)
        cuts, p_count = split_run(
            ev,
            step_m=step,
            priors=priors,
            open_start=open_start,
            open_end=open_end,
            coarse=coarse,
        )
        run_score = float(np.nanmedian(score[a:b]))
        segs = list(zip(cuts[:-1], cuts[1:], strict=True))
        confs = []
        n_counted_partial = 0
        for j, (c0, c1) in enumerate(segs):
            i0, i1 = a + c0, a + c1
            length = (i1 - i0) * step
            ends = (c0 == 0) + (c1 == b - a)
            length_oc = length + 0.5 * priors.gap_m * ends
            is_open = (c0 == 0 and open_start) or (c1 == b - a and open_end)
            seg_score = float(np.nanmedian(score[i0:i1]))
            occ_conf = 1.0 / (1.0 + math.exp(-(seg_score - 1.5 * threshold) / (0.4 * threshold)))
            cut_conf = 0.5 * ((1.0 if c0 == 0 else ev[c0]) + (1.0 if c1 == b - a else ev[c1]))
            in_range = priors.min_length_m - 1.0 <= length_oc <= priors.max_length_m + 1.0
            len_conf = 1.0 if (in_range or is_open) else 0.4
            vtype, fit = _classify(
                p[:, :, i0:i1],
                offs,
                gidx,
                length_oc,
                empty_profile,
                at_end=j in (0, len(segs) - 1),
                priors=priors,
            )
            if coarse:
                vtype = "unknown"
                conf = 0.5 * occ_conf
            else:
                conf = occ_conf * (0.55 + 0.45 * cut_conf) * len_conf
            share = 1.0
            if is_open:
                share = min(1.0, length_oc / priors.mean_length_m)
                n_counted_partial += share <= 0.5
            s0 = s_start + i0 * step + (0.0 if c0 == 0 else 0.5 * priors.gap_m)
            s1 = s_start + i1 * step - (0.0 if c1 == b - a else 0.5 * priors.gap_m)
            poly = _vehicle_polygon(obs.track.line, s0, s1, priors.width_m)
            counted = conf >= site.detection.min_confidence and share > 0.5
            confs.append(conf)
            vehicles.append(
                Vehicle(
                    obs.track.track_id,
                    poly,
                    round(float(length_oc), 2),
                    vtype,
                    round(float(conf), 3),
                    round(float(share), 3),
                    bool(counted),
                )
            )
        # Run-level count distribution: the split posterior, shifted for partly seen end
        # vehicles that are not counted, mixed with "the run is not real" by confidence.
        dist = np.zeros(len(p_count) + 1)
        shift = n_counted_partial
        dist[: len(p_count) - shift] = p_count[shift:] if shift else p_count
        q = float(np.clip(max(confs) if confs else 0.0, 0.0, 1.0)) if run_score > threshold else 0.0
        q = min(1.0, q / 0.6)  # confidences above 0.6 mean the run itself is certain
        mixed = q * dist
        mixed[0] += 1 - q
        dists.append(mixed)
    return vehicles, dists


def _unobserved(observations: Sequence[TrackObservation], width_m: float) -> BaseGeometry:
    parts = []
    for o in observations:
        miss = o.inside & ~(o.valid & ~o.cloud)
        step = o.frame.step_m
        s0 = o.frame.s_m[0] - step / 2
        for a, b in _runs(miss):
            parts.append(_vehicle_polygon(o.track.line, s0 + a * step, s0 + b * step, width_m))
    if not parts:
        return Polygon()
    return union_all(parts)


def analyse_scene(
    data: np.ndarray,
    bands: tuple[str, ...],
    valid: np.ndarray,
    grid: SiteGrid,
    tracks: Sequence[Track],
    aoi: BaseGeometry,
    site: Site,
    *,
    background: Background | None = None,
) -> SceneAnalysis:
    """Detect, classify and count the rail vehicles of one aligned acquisition.

    Parameters
    ----------
    data : numpy.ndarray
        (bands, H, W) float32 scaled about 0-1 on ``grid`` (aligned to the reference).
    bands : tuple of str
    valid : numpy.ndarray
        (H, W) bool.
    grid : SiteGrid
    tracks : sequence of Track
        Centre lines in the grid CRS.
    aoi : shapely geometry
        AOI in the grid CRS.
    site : Site
        Vehicle priors, detection and quality settings.
    background : Background, optional
        Empty-track model from :func:`learn_background`; without it the scene is judged
        on its own.

    Returns
    -------
    SceneAnalysis

    Notes
    -----
    ``railcars`` counts vehicles with confidence >= ``site.detection.min_confidence``
    whose observed share is above one half. ``obscured`` and ``no_coverage`` scenes
    report None, never 0; ``partial`` scenes count the observed part only.

    The interval: every occupied run has a posterior over its number of vehicles from
    :func:`split_run` (how well 1, 2, ... vehicles of the prior lengths fill the run,
    given the visible coupling gaps). It is mixed with "no vehicle at all" by the run's
    confidence, and the runs are convolved into the distribution of the total;
    ``railcars_low``/``railcars_high`` are its 5 % and 95 % quantiles, widened where
    needed to include ``railcars``, and by one vehicle per 25 counted for cars that
    look like empty track (missed entirely).
    """
    gidx = gray_bands(bands)
    obs = observe_tracks(data, bands, valid, grid, tracks, aoi, background=background)
    quality = quality_from_observations(obs, site.quality)
    unobserved = _unobserved(obs, site.vehicles.width_m)
    types = [t for t in ("tank", "open", "flat", "covered", "locomotive", "unknown")]
    if quality.status in ("obscured", "no_coverage") or not obs:
        return SceneAnalysis((), quality, None, None, None, {t: 0 for t in types}, unobserved)
    scores = occupancy_scores(obs, background=background)
    threshold = site.detection.occupancy_threshold or THRESHOLD
    coarse = grid.resolution_m >= COARSE_GSD_M
    tmpl = _empty_template(obs)
    vehicles: list[Vehicle] = []
    dists: list[np.ndarray] = []
    for o, sc in zip(obs, scores, strict=True):
        v, d = _track_vehicles(
            o,
            sc,
            site=site,
            gidx=gidx,
            threshold=threshold,
            coarse=coarse,
            template=tmpl,
        )
        vehicles.extend(v)
        dists.extend(d)
    counted = [v for v in vehicles if v.counted]
    railcars = len(counted)
    low, high = count_interval(dists) if dists else (0, 0)
    missed = int(math.ceil(railcars / 25.0)) if not coarse else int(math.ceil(railcars / 8.0))
    low, high = min(low, railcars), max(high, railcars) + missed
    if coarse:
        low = min(low, int(math.floor(0.8 * railcars)))
        high = max(high, int(math.ceil(1.25 * railcars)))
    by_type = {t: sum(1 for v in counted if v.type == t) for t in types}
    logger.debug("%d vehicles (%d counted), status %s", len(vehicles), railcars, quality.status)
    return SceneAnalysis(tuple(vehicles), quality, railcars, low, high, by_type, unobserved)


# --------------------------------------------------------------------------- background


def learn_background(
    scenes: Sequence[tuple[np.ndarray, tuple[str, ...], np.ndarray]],
    grid: SiteGrid,
    tracks: Sequence[Track],
) -> Background | None:
    """Learn the empty-track appearance per track and station over an aligned stack.

    Parameters
    ----------
    scenes : sequence of (data, bands, valid)
        Aligned acquisitions on ``grid``.
    grid : SiteGrid
    tracks : sequence of Track

    Returns
    -------
    Background or None
        None with fewer than two scenes (a single scene is judged on its own).

    Notes
    -----
    Each scene is judged on its own first (:func:`occupancy_scores` without background);
    stations it shows empty contribute their profile, normalised by the scene's own
    per-band median and spread of empty track. The per-station model is the median of
    those profiles and their spread between dates (at least the scene noise); stations
    never seen empty keep the track-wide median.
    """
    if len(scenes) < 2 or not tracks:
        return None
    from shapely.geometry import box

    aoi = box(*grid.bounds)
    per_track: dict[str, list[np.ndarray]] = {t.track_id: [] for t in tracks}
    textures: dict[str, list[np.ndarray]] = {t.track_id: [] for t in tracks}
    step = None
    used = 0
    for data, bands, valid in scenes:
        obs = observe_tracks(data, bands, valid, grid, tracks, aoi)
        if not obs:
            continue
        step = obs[0].frame.step_m
        q = quality_from_observations(obs, QualityConfig())
        if q.status in ("obscured", "no_coverage"):
            continue
        scores = occupancy_scores(obs)
        empty = [np.nan_to_num(s, nan=np.inf) < THRESHOLD * 0.8 for s in scores]
        norm = _normalise(obs, empty)
        if norm is None:
            continue
        loc, scale = norm
        used += 1
        for o, e in zip(obs, empty, strict=True):
            p, _ = _profiles(o, gray=True)
            pn = (p - loc[:, None, None]) / scale[:, None, None]
            pn[:, :, ~(e & o.observed)] = np.nan
            per_track[o.track.track_id].append(pn.astype(np.float32))
            tex = np.where(o.observed & ~o.snow, o.texture, np.nan)
            textures[o.track.track_id].append(tex)
    if used < 2:
        return None
    models = {}
    for tid, stack_list in per_track.items():
        if not stack_list:
            continue
        stack = np.stack(stack_list)  # (S, b, m, n)
        support = np.isfinite(stack[:, 0, 0, :]).sum(axis=0)
        with np.errstate(all="ignore"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                prof = np.nanmedian(stack, axis=0)
                spread = 1.4826 * np.nanmedian(np.abs(stack - prof[None]), axis=0)
                track_prof = np.nanmedian(prof, axis=2)
                track_spread = np.nanmedian(spread, axis=2)
                tex = np.nanmedian(np.stack(textures[tid]), axis=0)
        prof = np.where(np.isfinite(prof), prof, track_prof[:, :, None])
        # Spread between dates: at least the track-wide level (few dates underestimate it).
        floor = np.nan_to_num(track_spread, nan=1.0)[:, :, None]
        spread = np.where(support >= 3, np.maximum(np.nan_to_num(spread, nan=1.0), floor), 1.0)
        spread = np.maximum(spread, 0.35)
        models[tid] = _TrackBackground(
            prof.astype(np.float32), spread.astype(np.float32), support, tex
        )
    return Background(models, used, float(step or 0.5))

"""Site files: YAML -> validated :class:`Site`, and the site grid every scene is warped onto.

A site file names the yard, its AOI, optional track centre lines, the working grid,
vehicle priors, detection and quality thresholds, the baseline model and events to
annotate. Everything has a default except ``aoi``; ``--aoi`` alone makes a valid site.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import yaml
from affine import Affine
from pyproj import CRS, Transformer
from shapely import make_valid
from shapely.geometry import LineString, MultiPolygon, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry

from railwatch.errors import (
    GeometryRepairedWarning,
    RailwatchWarning,
    SiteConfigError,
    VectorReadError,
)

__all__ = [
    "VehiclePriors",
    "DetectionConfig",
    "QualityConfig",
    "BaselineConfig",
    "Event",
    "Site",
    "SiteGrid",
    "load_site",
    "site_from_aoi",
    "read_vector",
    "utm_crs_for",
    "make_grid",
    "to_crs",
]

logger = logging.getLogger(__name__)

WGS84 = CRS.from_epsg(4326)


@dataclass(frozen=True, slots=True)
class VehiclePriors:
    """Physical priors on rail vehicles (DOMAIN.md; Russian 1520 mm fleet).

    Change these when a yard is dominated by a fleet with other lengths, e.g. 8-axle
    tank cars (~19-21 m) or long container flats.
    """

    lengths_m: dict[str, float] = field(
        default_factory=lambda: {
            "tank": 12.02,
            "open": 13.92,
            "covered": 15.35,
            "flat": 14.6,
            "locomotive": 18.0,
        }
    )
    """Length over couplers per vehicle type, metres."""
    width_m: float = 3.2
    """Body width, metres."""
    gap_m: float = 1.0
    """Typical visible gap between coupled bodies, metres."""
    min_length_m: float = 8.0
    """Shorter occupied runs are not counted as vehicles."""
    max_length_m: float = 24.0
    """Longest single vehicle; longer runs are split."""

    @property
    def mean_length_m(self) -> float:
        """Mean length over the types, used when cars cannot be resolved."""
        return float(np.mean(list(self.lengths_m.values())))


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    """Detection thresholds. The defaults are physical, not fitted to one rendering."""

    min_confidence: float = 0.3
    """Vehicles below this confidence are kept in the GeoPackage but not counted."""
    occupancy_threshold: float | None = None
    """Change score above which a track sample is occupied; None chooses it per scene."""
    track_spacing_m: float = 4.5
    """Minimum centre-to-centre distance of parallel tracks."""
    band_mapping: dict[str, int] | None = None
    """1-based band index per colour (``red``, ``green``, ``blue``, ``nir``, ``pan``);
    None reads the colour interpretation from the file."""
    overpass_local_time: str | None = None
    """The imagery provider's usual overpass, local solar time: ``"10:30"`` or a window
    ``"10:15-11:15"``. Used only for products that give a date without a time of day, to
    know where the sun stood (which side of a track shadows fall); None: those products
    learn the side from the scene. See :func:`overpass_hours`."""

    def overpass_hours(self) -> tuple[float, float] | None:
        """:attr:`overpass_local_time` as (first, last) hour of local solar time."""
        if self.overpass_local_time is None:
            return None
        return parse_time_window(self.overpass_local_time)


def parse_time_window(text: str) -> tuple[float, float]:
    """``"HH:MM"`` or ``"HH:MM-HH:MM"`` as (first, last) hours of the day.

    Raises
    ------
    ValueError
        Not such a time or window, or a window that ends before it starts.

    Examples
    --------
    >>> parse_time_window("10:15-11:45")
    (10.25, 11.75)
    >>> parse_time_window("10:30")
    (10.5, 10.5)
    """
    hours = []
    for part in text.split("-"):
        m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", part)
        if m is None or int(m[1]) > 23 or int(m[2]) > 59:
            raise ValueError(f"{text!r} is not a time HH:MM or a window HH:MM-HH:MM")
        hours.append(int(m[1]) + int(m[2]) / 60)
    if len(hours) > 2:
        raise ValueError(f"{text!r} is not a time HH:MM or a window HH:MM-HH:MM")
    first, last = hours[0], hours[-1]
    if last < first:
        raise ValueError(f"the window {text!r} ends before it starts")
    return first, last


@dataclass(frozen=True, slots=True)
class QualityConfig:
    """Rules that turn coverage and cloud into a status."""

    full_coverage: float = 0.98
    """Observed share of track length at or above which a scene is complete."""
    min_coverage: float = 0.02
    """Below this the yard is not covered (``no_coverage``)."""
    max_cloud: float = 0.5
    """Above this share of observed track under cloud or haze the yard is ``obscured``."""


@dataclass(frozen=True, slots=True)
class BaselineConfig:
    """Baseline model and its parameters; see docs/baseline.md for the formulas."""

    model: str = "none"
    """``none``, ``constant``, ``reference`` or ``demand``."""
    value: float | None = None
    """``constant``: the analyst's number of vehicles."""
    reference_start: dt.date | None = None
    reference_end: dt.date | None = None
    statistic: str = "p90"
    """``reference``: ``mean``, ``p90`` (90th percentile) or ``robust_z``."""
    z_threshold: float = 3.5
    """``reference`` with ``robust_z``: anomaly above median + z * 1.4826 * MAD."""
    towns: tuple[tuple[str, float], ...] = ()
    """``demand``: (name, population) of the towns the yard serves."""
    freight_t_per_capita_year: float = 1.0
    """``demand``: rail freight per inhabitant and year, tonnes."""
    wagon_payload_t: float = 60.0
    """``demand``: mean payload of a wagon, tonnes."""
    dwell_days: float = 2.0
    """``demand``: mean time a wagon stands in the yard, days."""
    factor: float = 1.0
    """Anomaly when the count's low bound exceeds ``factor`` times the baseline."""


@dataclass(frozen=True, slots=True)
class Event:
    """A dated event annotated on figures."""

    date: dt.date
    label: str


@dataclass(frozen=True, slots=True)
class Site:
    """A validated site: where to look and how to judge what is seen.

    Geometries are stored in WGS84 (lon, lat); :func:`make_grid` projects them.
    """

    name: str
    aoi: BaseGeometry
    tracks: tuple[tuple[str, LineString], ...] | None = None
    crs: str | None = None
    resolution_m: float | None = None
    margin_m: float = 30.0
    vehicles: VehiclePriors = field(default_factory=VehiclePriors)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    baseline: BaselineConfig = field(default_factory=BaselineConfig)
    events: tuple[Event, ...] = ()
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Resolved configuration as plain JSON-able data (for run.json)."""
        return {
            "name": self.name,
            "path": self.path,
            "aoi": mapping(self.aoi),
            "tracks": None
            if self.tracks is None
            else {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": {"track_id": t}, "geometry": mapping(g)}
                    for t, g in self.tracks
                ],
            },
            "crs": self.crs,
            "resolution_m": self.resolution_m,
            "margin_m": self.margin_m,
            "vehicles": _plain(self.vehicles),
            "detection": _plain(self.detection),
            "quality": _plain(self.quality),
            "baseline": _plain(self.baseline),
            "events": [{"date": e.date.isoformat(), "label": e.label} for e in self.events],
        }

    def with_overrides(self, **changes: Any) -> Site:
        """Return a copy with CLI overrides applied (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _plain(obj: Any) -> Any:
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, dt.date):
        return obj.isoformat()
    return obj


# --------------------------------------------------------------------------- vectors


def read_vector(
    path: str | Path, *, geom_kind: str = "any"
) -> tuple[list[BaseGeometry], list[dict], CRS]:
    """Read every feature of a vector file in its own CRS.

    Parameters
    ----------
    path : str or Path
        Any file OGR reads (GeoJSON, GeoPackage, Shapefile, ...).
    geom_kind : {"any", "polygon", "line"}
        Reject files whose geometries are of another kind.

    Returns
    -------
    geoms : list of shapely geometries
    properties : list of dict
        One attribute mapping per feature.
    crs : pyproj.CRS
        The file's CRS (EPSG:4326 when the file declares none, as GeoJSON allows).

    Raises
    ------
    VectorReadError
        The file is missing, unreadable, empty, or holds geometries of the wrong kind.
    """
    import pyogrio

    p = Path(path)
    try:
        if not p.exists():
            raise VectorReadError(p, "file not found")
        if p.is_file() and p.stat().st_size == 0:
            raise VectorReadError(p, "file is empty")
    except (OSError, ValueError) as exc:  # e.g. permission denied, a NUL in the name
        raise VectorReadError(p, f"cannot open ({_first_line(exc)})") from None
    try:
        import geopandas as gpd

        gdf = gpd.read_file(p, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as exc:
        raise VectorReadError(p, f"not a readable vector file ({_first_line(exc)})") from None
    except Exception as exc:  # GDAL raises a zoo of types for corrupt files
        raise VectorReadError(p, f"cannot read ({_first_line(exc)})") from None
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    if len(gdf) == 0:
        raise VectorReadError(p, "holds no geometry")
    crs = CRS.from_user_input(gdf.crs) if gdf.crs is not None else WGS84
    geoms = list(gdf.geometry)
    kinds = {g.geom_type for g in geoms}
    if geom_kind == "polygon" and not kinds <= {"Polygon", "MultiPolygon"}:
        raise VectorReadError(p, f"expected polygons, found {', '.join(sorted(kinds))}")
    if geom_kind == "line" and not kinds <= {"LineString", "MultiLineString"}:
        raise VectorReadError(p, f"expected lines, found {', '.join(sorted(kinds))}")
    props = gdf.drop(columns=gdf.geometry.name).to_dict("records")
    return geoms, props, crs


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def to_crs(geom: BaseGeometry, src: CRS | str, dst: CRS | str) -> BaseGeometry:
    """Reproject a shapely geometry (always x=easting/longitude, y=northing/latitude)."""
    src_crs, dst_crs = CRS.from_user_input(src), CRS.from_user_input(dst)
    if src_crs == dst_crs:
        return geom
    tr = Transformer.from_crs(src_crs, dst_crs, always_xy=True)
    return shapely.transform(geom, tr.transform, interleaved=False)


def _repair_polygon(geom: BaseGeometry, where: str) -> BaseGeometry:
    if geom.is_valid:
        return geom
    fixed = make_valid(geom)
    if fixed.geom_type == "GeometryCollection":
        polys = [g for g in fixed.geoms if g.geom_type in ("Polygon", "MultiPolygon")]
        fixed = MultiPolygon(
            [p for g in polys for p in (g.geoms if g.geom_type == "MultiPolygon" else [g])]
        )
    warnings.warn(
        f"{where}: AOI polygon was invalid (e.g. self-intersecting) and has been repaired",
        GeometryRepairedWarning,
        stacklevel=3,
    )
    return fixed


def load_aoi(path: str | Path) -> BaseGeometry:
    """Read an AOI vector file as one (multi)polygon in WGS84, repairing invalid rings."""
    geoms, _, crs = read_vector(path, geom_kind="polygon")
    from shapely import union_all

    geom = union_all([_repair_polygon(g, str(path)) for g in geoms])
    return to_crs(geom, crs, WGS84)


def load_tracks(path: str | Path) -> tuple[tuple[str, LineString], ...]:
    """Read track centre lines as (track_id, LineString in WGS84) pairs."""
    geoms, props, crs = read_vector(path, geom_kind="line")
    out: list[tuple[str, LineString]] = []
    for i, (g, pr) in enumerate(zip(geoms, props, strict=True)):
        tid = str(pr.get("track_id") or pr.get("id") or f"T{i + 1}")
        parts = g.geoms if g.geom_type == "MultiLineString" else [g]
        for j, part in enumerate(parts):
            out.append((tid if len(parts) == 1 else f"{tid}.{j + 1}", to_crs(part, crs, WGS84)))
    return tuple(out)


# --------------------------------------------------------------------------- site files


def site_from_aoi(aoi: str | Path | BaseGeometry, *, name: str | None = None) -> Site:
    """Build a default site from an AOI alone (a vector file or a WGS84 geometry)."""
    if isinstance(aoi, BaseGeometry):
        geom = aoi
        label = name or "site"
    else:
        geom = load_aoi(aoi)
        label = name or Path(aoi).stem
    return Site(name=label, aoi=geom, path=None)


_TOP_KEYS = {
    "name",
    "aoi",
    "tracks",
    "crs",
    "resolution_m",
    "margin_m",
    "vehicles",
    "detection",
    "quality",
    "baseline",
    "events",
    "description",
}


def load_site(path: str | Path) -> Site:
    """Load and validate a site file.

    Parameters
    ----------
    path : str or Path
        YAML file. Relative paths inside it (``aoi: aoi.geojson``) are resolved against
        the file's folder.

    Returns
    -------
    Site

    Raises
    ------
    SiteConfigError
        With the file, the dotted key and the problem, for any invalid content.
    """
    p = Path(path)
    if not p.is_file():
        raise SiteConfigError(p, None, "site file not found")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        raise SiteConfigError(
            p, where, f"malformed YAML ({getattr(exc, 'problem', exc)})"
        ) from None
    except UnicodeDecodeError:
        raise SiteConfigError(p, None, "not a text file") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # PyYAML builds dates and tagged scalars after parsing, with builtin errors
        # ("2023-02-30", "!!int abc").
        raise SiteConfigError(p, None, f"malformed YAML value ({_first_line(exc)})") from None
    except OSError as exc:
        raise SiteConfigError(p, None, f"cannot read ({exc.strerror or exc})") from None
    if raw is None:
        raise SiteConfigError(p, None, "file is empty")
    if not isinstance(raw, dict):
        raise SiteConfigError(p, None, "expected a mapping of keys at the top level")
    return _site_from_mapping(raw, p)


def _site_from_mapping(raw: dict[str, Any], p: Path) -> Site:
    unknown = sorted(set(map(str, raw)) - _TOP_KEYS)
    if unknown:
        raise SiteConfigError(
            p, unknown[0], f"unknown key (allowed: {', '.join(sorted(_TOP_KEYS))})"
        )
    if "aoi" not in raw or raw["aoi"] is None:
        raise SiteConfigError(p, "aoi", "required key is missing")
    name = raw.get("name", p.stem)
    if not isinstance(name, str) or not name.strip():
        raise SiteConfigError(p, "name", "must be a non-empty string")
    aoi = _parse_aoi(raw["aoi"], p)
    tracks = None if raw.get("tracks") is None else _parse_tracks(raw["tracks"], p)
    if tracks is not None:
        tracks = _tracks_over_aoi(tracks, aoi, p, lambda msg: SiteConfigError(p, "tracks", msg))
    crs = raw.get("crs")
    if crs is not None:
        try:
            c = CRS.from_user_input(crs)
        except Exception:
            raise SiteConfigError(p, "crs", f"not a CRS: {crs!r}") from None
        if not c.is_projected:
            raise SiteConfigError(p, "crs", "must be a projected (metric) CRS, e.g. EPSG:32652")
        crs = c.to_string()
    resolution = _number(raw, "resolution_m", p, default=None, lo=0.05, hi=30.0)
    margin = _number(raw, "margin_m", p, default=30.0, lo=0.0, hi=5000.0)
    return Site(
        name=name.strip(),
        aoi=aoi,
        tracks=tracks,
        crs=crs,
        resolution_m=resolution,
        margin_m=float(margin),
        vehicles=_parse_vehicles(raw.get("vehicles"), p),
        detection=_parse_detection(raw.get("detection"), p),
        quality=_parse_section(raw.get("quality"), p, "quality", QualityConfig),
        baseline=_parse_baseline(raw.get("baseline"), p),
        events=_parse_events(raw.get("events"), p),
        path=str(p),
    )


def _number(
    d: dict[str, Any],
    key: str,
    p: Path,
    *,
    default: float | None,
    lo: float | None = None,
    hi: float | None = None,
    prefix: str = "",
) -> float | None:
    v = d.get(key)
    if v is None:  # absent or an explicit null: the default
        v = default
    full = f"{prefix}{key}"
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not _finite(v):
        raise SiteConfigError(p, full, f"must be a number, got {_show(v)}")
    if lo is not None and v < lo or hi is not None and v > hi:
        raise SiteConfigError(p, full, f"must be between {lo} and {hi}, got {v}")
    return float(v)


def _finite(v: int | float) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an int too large for a float
        return False


def _show(v: Any) -> str:
    """Short repr of a user value for an error message."""
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _mapping(v: Any, p: Path, key: str) -> dict[str, Any]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise SiteConfigError(p, key, f"must be a mapping, got {type(v).__name__}")
    return v


def _geojson_geoms(obj: Any, p: Path, key: str) -> list[tuple[dict[str, Any], BaseGeometry]]:
    if not isinstance(obj, dict) or "type" not in obj:
        raise SiteConfigError(p, key, "must be a GeoJSON object or a path to a vector file")
    try:
        if obj["type"] == "FeatureCollection":
            feats = obj.get("features") or []
            return [(f.get("properties") or {}, shape(f["geometry"])) for f in feats]
        if obj["type"] == "Feature":
            return [(obj.get("properties") or {}, shape(obj["geometry"]))]
        return [({}, shape(obj))]
    except Exception as exc:
        raise SiteConfigError(p, key, f"invalid GeoJSON ({_first_line(exc)})") from None


def _resolve(p: Path, v: str) -> Path:
    try:
        q = Path(v).expanduser()
    except RuntimeError:  # "~someone" who does not exist
        q = Path(v)
    return q if q.is_absolute() else (p.parent / q)


def _parse_aoi(v: Any, p: Path) -> BaseGeometry:
    if isinstance(v, str):
        try:
            return load_aoi(_resolve(p, v))
        except VectorReadError as exc:
            raise SiteConfigError(p, "aoi", str(exc)) from None
    from shapely import union_all

    geoms = [g for _, g in _geojson_geoms(v, p, "aoi")]
    if not geoms or any(g.geom_type not in ("Polygon", "MultiPolygon") for g in geoms):
        raise SiteConfigError(p, "aoi", "must hold Polygon or MultiPolygon geometries")
    geom = union_all([_repair_polygon(g, f"{p}: aoi") for g in geoms])
    if geom.is_empty or geom.area == 0:
        raise SiteConfigError(p, "aoi", "polygon has no area")
    minx, miny, maxx, maxy = geom.bounds
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise SiteConfigError(p, "aoi", "inline GeoJSON must be in WGS84 longitude/latitude")
    return geom


def _parse_tracks(v: Any, p: Path) -> tuple[tuple[str, LineString], ...]:
    if isinstance(v, str):
        try:
            return load_tracks(_resolve(p, v))
        except VectorReadError as exc:
            raise SiteConfigError(p, "tracks", str(exc)) from None
    out: list[tuple[str, LineString]] = []
    for i, (props, g) in enumerate(_geojson_geoms(v, p, "tracks")):
        if g.geom_type != "LineString":
            raise SiteConfigError(p, f"tracks[{i}]", f"must be a LineString, got {g.geom_type}")
        out.append((str(props.get("track_id") or props.get("id") or f"T{i + 1}"), g))
    return tuple(out)


def _tracks_over_aoi(
    tracks: tuple[tuple[str, LineString], ...],
    aoi: BaseGeometry,
    source: str | Path | None,
    error: Any,
) -> tuple[tuple[str, LineString], ...]:
    """Tracks that cross ``aoi`` (both WGS84); warn about the others, fail if none is left.

    ``error(message)`` builds the exception raised when no track crosses the AOI.
    """
    inside = tuple((tid, line) for tid, line in tracks if line.intersects(aoi))
    outside = [tid for tid, line in tracks if not line.intersects(aoi)]
    if not inside:
        raise error(
            f"none of the {len(tracks)} track(s) crosses the AOI; are the tracks and the AOI "
            "in the CRS they declare?"
        )
    if outside:
        shown = ", ".join(outside[:5]) + (" ..." if len(outside) > 5 else "")
        warnings.warn(
            f"{source}: {len(outside)} track(s) entirely outside the AOI ignored: {shown}",
            RailwatchWarning,
            stacklevel=3,
        )
    return inside


def _parse_section(v: Any, p: Path, key: str, cls: type) -> Any:
    d = _mapping(v, p, key)
    allowed = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for k, _val in d.items():
        if not isinstance(k, str) or k not in allowed:
            raise SiteConfigError(p, f"{key}.{k}", f"unknown key (allowed: {', '.join(allowed)})")
        lo, hi = _BOUNDS.get(f"{key}.{k}", (0.0, None))
        kwargs[k] = _number(d, k, p, default=None, lo=lo, hi=hi, prefix=f"{key}.")
    return cls(**kwargs)


_BOUNDS: dict[str, tuple[float, float | None]] = {
    "quality.full_coverage": (0.0, 1.0),
    "quality.min_coverage": (0.0, 1.0),
    "quality.max_cloud": (0.0, 1.0),
    "detection.min_confidence": (0.0, 1.0),
    "vehicles.width_m": (0.5, 10.0),
    "vehicles.min_length_m": (1.0, 100.0),
    "vehicles.max_length_m": (1.0, 100.0),
    "vehicles.gap_m": (0.0, 20.0),
    "detection.track_spacing_m": (1.0, 50.0),
}
"""Allowed ranges of numeric keys (others: >= 0)."""


def _parse_vehicles(v: Any, p: Path) -> VehiclePriors:
    d = dict(_mapping(v, p, "vehicles"))
    lengths = d.pop("lengths_m", None)
    base = _parse_section(d, p, "vehicles", VehiclePriors)
    if lengths is None:
        return base
    lengths = _mapping(lengths, p, "vehicles.lengths_m")
    from railwatch.types import VEHICLE_TYPES

    parsed: dict[str, float] = {}
    for k in lengths:
        if k not in VEHICLE_TYPES or k == "unknown":
            raise SiteConfigError(p, f"vehicles.lengths_m.{k}", "unknown vehicle type")
        parsed[k] = _number(
            lengths, k, p, default=None, lo=3.0, hi=40.0, prefix="vehicles.lengths_m."
        )
    if not parsed:
        raise SiteConfigError(p, "vehicles.lengths_m", "needs at least one vehicle type")
    return replace(base, lengths_m=parsed)


def _parse_detection(v: Any, p: Path) -> DetectionConfig:
    d = dict(_mapping(v, p, "detection"))
    bands = d.pop("band_mapping", None)
    overpass = d.pop("overpass_local_time", None)
    base = _parse_section(d, p, "detection", DetectionConfig)
    if overpass is not None:
        key = "detection.overpass_local_time"
        if not isinstance(overpass, str):
            # YAML reads an unquoted 10:30 as the number 630 (base 60).
            raise SiteConfigError(
                p, key, f"must be quoted, e.g. '10:30' or '10:15-11:15'; got {overpass!r}"
            )
        try:
            parse_time_window(overpass)
        except ValueError as exc:
            raise SiteConfigError(p, key, str(exc)) from None
        base = replace(base, overpass_local_time=overpass.strip())
    if bands is None:
        return base
    bands = _mapping(bands, p, "detection.band_mapping")
    parsed: dict[str, int] = {}
    for k, val in bands.items():
        if k not in ("red", "green", "blue", "nir", "pan"):
            raise SiteConfigError(
                p, f"detection.band_mapping.{k}", "must be red, green, blue, nir or pan"
            )
        if isinstance(val, bool) or not isinstance(val, int) or val < 1:
            raise SiteConfigError(
                p, f"detection.band_mapping.{k}", f"must be a band number >= 1, got {val!r}"
            )
        parsed[k] = val
    return replace(base, band_mapping=parsed)


def _date(v: Any, p: Path, key: str) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            pass
    raise SiteConfigError(p, key, f"must be a date YYYY-MM-DD, got {v!r}")


def _parse_baseline(v: Any, p: Path) -> BaselineConfig:
    d = dict(_mapping(v, p, "baseline"))
    allowed = {f.name for f in fields(BaselineConfig)}
    for k in d:
        if k not in allowed:
            raise SiteConfigError(
                p, f"baseline.{k}", f"unknown key (allowed: {', '.join(sorted(allowed))})"
            )
    model = d.pop("model", "none")
    if model not in ("none", "constant", "reference", "demand"):
        raise SiteConfigError(
            p, "baseline.model", f"must be none, constant, reference or demand, got {model!r}"
        )
    kw: dict[str, Any] = {"model": model}
    for k in ("reference_start", "reference_end"):
        if d.get(k) is not None:
            kw[k] = _date(d.pop(k), p, f"baseline.{k}")
        d.pop(k, None)
    stat = d.pop("statistic", "p90")
    if stat not in ("mean", "p90", "robust_z"):
        raise SiteConfigError(
            p, "baseline.statistic", f"must be mean, p90 or robust_z, got {stat!r}"
        )
    kw["statistic"] = stat
    towns = d.pop("towns", None)
    if towns is not None:
        if not isinstance(towns, list):
            raise SiteConfigError(p, "baseline.towns", "must be a list of {name, population}")
        parsed = []
        for i, t in enumerate(towns):
            if not isinstance(t, dict) or "population" not in t:
                raise SiteConfigError(p, f"baseline.towns[{i}]", "needs name and population")
            pop = _number(t, "population", p, default=None, lo=0, prefix=f"baseline.towns[{i}].")
            parsed.append((str(t.get("name", f"town {i + 1}")), float(pop)))
        kw["towns"] = tuple(parsed)
    for k in list(d):
        kw[k] = _number(d, k, p, default=None, lo=0.0, prefix="baseline.")
    cfg = BaselineConfig(**kw)
    if model == "constant" and cfg.value is None:
        raise SiteConfigError(p, "baseline.value", "required by the constant model")
    if model == "reference" and (cfg.reference_start is None or cfg.reference_end is None):
        raise SiteConfigError(
            p, "baseline.reference_start", "reference model needs reference_start and reference_end"
        )
    if model == "demand" and not cfg.towns:
        raise SiteConfigError(p, "baseline.towns", "demand model needs at least one town")
    return cfg


def _parse_events(v: Any, p: Path) -> tuple[Event, ...]:
    if v is None:
        return ()
    if not isinstance(v, list):
        raise SiteConfigError(p, "events", "must be a list of {date, label}")
    out = []
    for i, e in enumerate(v):
        if not isinstance(e, dict) or "date" not in e:
            raise SiteConfigError(p, f"events[{i}]", "needs date and label")
        out.append(Event(_date(e["date"], p, f"events[{i}].date"), str(e.get("label", ""))))
    return tuple(sorted(out, key=lambda e: e.date))


# --------------------------------------------------------------------------- grid


@dataclass(frozen=True, slots=True)
class SiteGrid:
    """The metric raster grid every acquisition is warped onto.

    Attributes
    ----------
    crs : str
        Projected CRS as an authority string or WKT.
    transform : affine.Affine
        North-up pixel-to-map transform.
    width, height : int
        Size in pixels.
    """

    crs: str
    transform: Affine
    width: int
    height: int

    @property
    def resolution_m(self) -> float:
        """Pixel size, metres."""
        return float(self.transform.a)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(minx, miny, maxx, maxy) in the grid CRS."""
        t = self.transform
        return (t.c, t.f + t.e * self.height, t.c + t.a * self.width, t.f)

    def rasterize(self, geom: BaseGeometry) -> np.ndarray:
        """Boolean mask of the pixels whose centre lies inside ``geom`` (grid CRS)."""
        from rasterio.features import geometry_mask

        if geom.is_empty:
            return np.zeros(self.shape, dtype=bool)
        return geometry_mask([geom], out_shape=self.shape, transform=self.transform, invert=True)

    def to_dict(self) -> dict[str, Any]:
        """Plain representation for run.json."""
        return {
            "crs": self.crs,
            "transform": list(self.transform)[:6],
            "width": self.width,
            "height": self.height,
        }


def utm_crs_for(geom: BaseGeometry) -> CRS:
    """UTM zone (WGS84 datum) of the centroid of a WGS84 geometry.

    Examples
    --------
    >>> from shapely.geometry import Point
    >>> utm_crs_for(Point(130.61, 42.42)).to_epsg()
    32652
    """
    c = geom.centroid
    zone = int(math.floor((c.x + 180.0) / 6.0)) % 60 + 1
    return CRS.from_epsg((32600 if c.y >= 0 else 32700) + zone)


def make_grid(site: Site, resolution_m: float) -> SiteGrid:
    """Grid covering the site's AOI plus its margin, snapped to whole pixels.

    Parameters
    ----------
    site : Site
    resolution_m : float
        Pixel size in metres.

    Returns
    -------
    SiteGrid
    """
    crs = CRS.from_user_input(site.crs) if site.crs else utm_crs_for(site.aoi)
    aoi = to_crs(site.aoi, WGS84, crs)
    minx, miny, maxx, maxy = aoi.buffer(site.margin_m).bounds
    r = float(resolution_m)
    minx, miny = math.floor(minx / r) * r, math.floor(miny / r) * r
    maxx, maxy = math.ceil(maxx / r) * r, math.ceil(maxy / r) * r
    width, height = int(round((maxx - minx) / r)), int(round((maxy - miny) / r))
    epsg = crs.to_epsg()
    return SiteGrid(
        crs=f"EPSG:{epsg}" if epsg else crs.to_wkt(),
        transform=Affine(r, 0.0, minx, 0.0, -r, maxy),
        width=width,
        height=height,
    )


def aoi_in_grid(site: Site, grid: SiteGrid) -> BaseGeometry:
    """The AOI in the grid's CRS."""
    return to_crs(site.aoi, WGS84, grid.crs)


def tracks_in_grid(site: Site, grid: SiteGrid) -> list[tuple[str, LineString]] | None:
    """The site's tracks in the grid's CRS, or None when the site has none."""
    if site.tracks is None:
        return None
    return [(tid, to_crs(line, WGS84, grid.crs)) for tid, line in site.tracks]


def polygon_from_bounds(bounds: tuple[float, float, float, float]) -> Polygon:
    """Rectangle polygon from (minx, miny, maxx, maxy)."""
    minx, miny, maxx, maxy = bounds
    return Polygon([(minx, miny), (maxx, miny), (maxx, maxy), (minx, maxy)])


def resolve_site(
    site: Site | str | Path | None,
    *,
    aoi: str | Path | None = None,
    tracks: str | Path | None = None,
) -> Site:
    """Site from a site file or :class:`Site`, with ``aoi`` / ``tracks`` files overriding it.

    Settings apply in order: defaults, then the site file, then these overrides.

    Raises
    ------
    SiteConfigError
        When neither a site nor an AOI is given, or the site file is invalid.
    VectorReadError
        When an override file cannot be read.
    """
    if site is None:
        if aoi is None:
            raise SiteConfigError(None, None, "give a site file (--site) or an AOI (--aoi)")
        return _check_override_tracks(
            site_from_aoi(aoi).with_overrides(
                tracks=None if tracks is None else load_tracks(tracks)
            ),
            aoi,
            tracks,
        )
    the_site = site if isinstance(site, Site) else load_site(site)
    resolved = the_site.with_overrides(
        aoi=None if aoi is None else load_aoi(aoi),
        tracks=None if tracks is None else load_tracks(tracks),
    )
    return _check_override_tracks(resolved, aoi, tracks)


def _check_override_tracks(site: Site, aoi: str | Path | None, tracks: str | Path | None) -> Site:
    """Re-check the tracks against the AOI when either came from an override file."""
    if site.tracks is None or (aoi is None and tracks is None):
        return site
    if tracks is not None:
        source: str | Path | None = tracks

        def error(msg: str) -> Exception:
            return VectorReadError(tracks, msg)
    else:
        source = site.path

        def error(msg: str) -> Exception:
            return SiteConfigError(site.path, "tracks", f"{msg} (AOI from {aoi})")

    return replace(site, tracks=_tracks_over_aoi(site.tracks, site.aoi, source, error))

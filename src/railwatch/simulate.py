"""Synthetic rail-yard scenes with exact truth, for tests, demos and evaluation.

The simulator renders a freight yard (parallel tracks on ballast, ladders, a curved spur,
roads and buildings around it) at the site of the Tumangang yard, fills it with coupled
rakes of rail vehicles whose number follows the public story of the crossing (DOMAIN.md),
and images it the way commercial very-high-resolution products arrive: seasonal ground
and snow, sun-dependent shadows, clouds and their shadows, haze, blur, noise, swath edges
with nodata, tiles, georeferencing errors, 8-bit RGB and 11-bit 4-band products, UTM and
geographic CRSs, and acquisition times carried in file names or in GDAL metadata.

Everything random comes from the ``numpy.random.Generator`` passed in, so a seed gives
byte-identical files. The rendering core is pure (arrays and shapely geometries); only
:func:`simulate_yard` writes files.

Conventions
-----------
- Yard frame: ``u`` runs along the tracks (towards the yard's heading), ``v`` across.
- A georeferencing shift ``(shift_x_m, shift_y_m)`` means that a ground feature at true
  position P appears in the file at P + shift. Truth geometries are in true ground
  coordinates; the image is what is shifted.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from affine import Affine
from pyproj import CRS, Geod, Transformer
from scipy import ndimage
from shapely import affinity
from shapely.geometry import LineString, MultiPoint, Point, Polygon, box, mapping
from shapely.geometry.base import BaseGeometry
from shapely.ops import substring

from railwatch.errors import SiteConfigError
from railwatch.sun import sun_position

__all__ = [
    "DEFAULT_DATES",
    "VEHICLE_SPECS",
    "Track",
    "YardLayout",
    "Vehicle",
    "AcquisitionPlan",
    "AcquisitionTruth",
    "SimulationResult",
    "builtin_aoi",
    "catenary",
    "yard_layout",
    "sun_position",
    "traffic_level",
    "plan_acquisitions",
    "place_vehicles",
    "simulate_yard",
]

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- constants

YARD_CENTRE_LONLAT = (130.6112, 42.4262)
"""Centre of the synthetic yard: north-east of Tumangang station, on the line to the bridge."""
YARD_HEADING_DEG = 18.0
"""Direction of the tracks, degrees clockwise from grid north."""
YARD_CRS = "EPSG:32652"
TRACK_SPACING_M = 5.3
RAIL_OFFSET_M = 0.76
"""Half the distance between the rail heads (1520 mm gauge)."""
BALLAST_HALF_WIDTH_M = 1.75
CANVAS_RES_M = 0.25
"""Ground truth is drawn at this resolution and then imaged by the sensor model."""
DEFAULT_DATES = 16
"""Number of acquisitions of the fixed sample story."""

# Built-in yard: 9 tracks over 560 m plus a curved spur.
_BUILTIN_LENGTH_M = 560.0
_BUILTIN_TRACKS = 9
_SIDE_CLEAR_M = 6.0
_END_CLEAR_M = 4.0
_SPUR_OFFSET_M = 11.0

VEHICLE_SPECS: dict[str, dict[str, float]] = {
    "tank": {"length_m": 12.02, "jitter_m": 0.05, "width_m": 3.2, "height_m": 4.6},
    "open": {"length_m": 13.92, "jitter_m": 0.05, "width_m": 3.16, "height_m": 3.5},
    "covered": {"length_m": 15.35, "jitter_m": 0.05, "width_m": 3.16, "height_m": 4.7},
    "flat": {"length_m": 13.6, "jitter_m": 0.9, "width_m": 2.9, "height_m": 1.3},
    "locomotive": {"length_m": 18.0, "jitter_m": 0.9, "width_m": 3.2, "height_m": 5.0},
}
"""Vehicle types (DOMAIN.md): mean length over couplers, jitter, body width and height."""

# Reflectances (red, green, blue, nir), roughly top-of-atmosphere 0-1.
_SNOW = np.array([0.82, 0.84, 0.88, 0.70], np.float32)
_SHADOW = np.array([0.30, 0.33, 0.43, 0.26], np.float32)
_SNOW_SHADOW_TINT = np.array([0.40, 0.47, 0.62, 0.38], np.float32)
_HAZE = np.array([0.55, 0.60, 0.70, 0.45], np.float32)
_CLOUD = np.array([0.86, 0.87, 0.89, 0.80], np.float32)
_SEASON_GROUND = {
    # vegetation, bare soil
    "winter": ([0.20, 0.17, 0.13, 0.24], [0.24, 0.20, 0.16, 0.27]),
    "spring": ([0.11, 0.13, 0.07, 0.30], [0.26, 0.22, 0.17, 0.29]),
    "summer": ([0.06, 0.10, 0.045, 0.40], [0.25, 0.21, 0.16, 0.29]),
    "autumn": ([0.21, 0.17, 0.10, 0.27], [0.25, 0.21, 0.16, 0.28]),
}
_GRAVEL = [0.24, 0.22, 0.19, 0.26]
_BALLAST = [0.37, 0.36, 0.34, 0.36]
_RAIL = [0.12, 0.11, 0.10, 0.12]
_STEEL = [0.21, 0.21, 0.22, 0.23]
PORTAL_SPACING_M = 60.0
"""Along-track distance between catenary portals (two masts and a beam across the tracks)."""
MAST_HEIGHT_M = 10.0
"""Height of a catenary mast."""
BEAM_HEIGHT_M = 9.0
"""Height of a portal beam above the rails."""
_ASPHALT = [0.14, 0.14, 0.15, 0.16]
_ROOFS = [
    [0.46, 0.47, 0.49, 0.44],
    [0.18, 0.28, 0.45, 0.30],
    [0.45, 0.17, 0.12, 0.38],
    [0.20, 0.34, 0.28, 0.30],
    [0.30, 0.28, 0.26, 0.30],
]

_PAINT = {
    "tank": ([[0.05, 0.05, 0.05]] * 7 + [[0.13, 0.13, 0.13], [0.12, 0.12, 0.12]])
    + [[0.56, 0.56, 0.55], [0.42, 0.22, 0.10]],
    "open": [
        [0.30, 0.16, 0.10],
        [0.30, 0.16, 0.10],
        [0.22, 0.13, 0.09],
        [0.33, 0.32, 0.30],
        [0.17, 0.23, 0.19],
        [0.14, 0.19, 0.31],
    ],
    "covered": [
        [0.14, 0.22, 0.38],
        [0.15, 0.27, 0.18],
        [0.36, 0.14, 0.10],
        [0.42, 0.42, 0.42],
        [0.55, 0.56, 0.56],
        [0.30, 0.17, 0.11],
    ],
    "flat": [[0.22, 0.19, 0.16], [0.18, 0.17, 0.16], [0.26, 0.20, 0.15]],
    "locomotive": [
        [0.45, 0.10, 0.08],
        [0.15, 0.30, 0.21],
        [0.26, 0.31, 0.39],
        [0.50, 0.40, 0.10],
    ],
}
_CONTAINERS = [
    [0.78, 0.78, 0.76],
    [0.78, 0.78, 0.76],
    [0.12, 0.22, 0.40],
    [0.46, 0.13, 0.10],
    [0.45, 0.45, 0.45],
    [0.17, 0.33, 0.22],
    [0.55, 0.35, 0.12],
]
_LOADS = {
    "coal": [0.045, 0.045, 0.05],
    "ore": [0.29, 0.21, 0.17],
    "tarp_green": [0.17, 0.29, 0.21],
    "tarp_blue": [0.16, 0.24, 0.42],
}

# The November 2022 rake, re-identified by the colour sequence of its cars (DOMAIN.md).
_TRAIN8 = [
    ("covered", [0.14, 0.22, 0.38]),
    ("covered", [0.36, 0.14, 0.10]),
    ("open", [0.30, 0.16, 0.10]),
    ("covered", [0.15, 0.27, 0.18]),
    ("covered", [0.14, 0.22, 0.38]),
    ("tank", [0.05, 0.05, 0.05]),
    ("covered", [0.55, 0.56, 0.56]),
    ("open", [0.14, 0.19, 0.31]),
]

_WGS84 = CRS.from_epsg(4326)


def _reproject(geom: BaseGeometry, src: Any, dst: Any) -> BaseGeometry:
    tr = Transformer.from_crs(src, dst, always_xy=True)
    return shapely.transform(geom, lambda x, y: tr.transform(x, y), interleaved=False)


# ----------------------------------------------------------------------------- geometry


@dataclass(frozen=True, slots=True)
class Track:
    """One true track centre line of the synthetic yard.

    Attributes
    ----------
    track_id : str
        ``T1`` ... ``Tn`` across the yard, ``S1`` for the curved spur, ``L1`` ... for
        ladder tracks.
    line : shapely.geometry.LineString
        Centre line in the yard CRS (UTM), as far as it lies inside the AOI.
    kind : str
        ``yard``, ``through`` (the running line), ``spur`` or ``ladder``.
    stand : shapely.geometry.LineString or None
        The part of ``line`` on which vehicles are parked (clear of turnouts).
    """

    track_id: str
    line: LineString
    kind: str
    stand: LineString | None


@dataclass(frozen=True, slots=True)
class YardLayout:
    """Geometry of a synthetic yard in its metric CRS.

    Attributes
    ----------
    crs : str
        Metric CRS of every geometry here.
    aoi : shapely.geometry.Polygon
        The AOI, in ``crs``.
    centre : tuple of float
        Yard centre (easting, northing).
    heading_deg : float
        Track direction, degrees clockwise from grid north.
    tracks : tuple of Track
    extensions : tuple of LineString
        Track drawn outside the AOI (the running line continues); not part of the truth.
    buildings : tuple of (Polygon, float)
        Footprints with heights in metres.
    roads : tuple of Polygon
    """

    crs: str
    aoi: Polygon
    centre: tuple[float, float]
    heading_deg: float
    tracks: tuple[Track, ...]
    extensions: tuple[LineString, ...] = ()
    buildings: tuple[tuple[Polygon, float], ...] = ()
    roads: tuple[Polygon, ...] = ()

    @property
    def capacity(self) -> int:
        """Vehicles the standing tracks hold when packed (mean length + 1 m gap)."""
        mean = np.mean([s["length_m"] for s in VEHICLE_SPECS.values()])
        total = sum(t.stand.length for t in self.tracks if t.stand is not None)
        return int(total // (mean + 1.0))

    def to_yard(self, u: float, v: float) -> tuple[float, float]:
        """Map yard-frame (u along, v across) metres to (easting, northing)."""
        h = math.radians(self.heading_deg)
        e0, n0 = self.centre
        return (
            e0 + u * math.sin(h) + v * math.cos(h),
            n0 + u * math.cos(h) - v * math.sin(h),
        )


def builtin_aoi() -> Polygon:
    """AOI (WGS84) of the built-in synthetic Tumangang yard: 9 tracks, 560 m, a spur.

    Returns
    -------
    shapely.geometry.Polygon
        Longitude/latitude polygon, tight around the yard.

    Examples
    --------
    >>> aoi = builtin_aoi()
    >>> round(aoi.centroid.x, 2), round(aoi.centroid.y, 2)
    (130.61, 42.43)
    """
    width = 2 * _SIDE_CLEAR_M + (_BUILTIN_TRACKS - 1) * TRACK_SPACING_M + _SPUR_OFFSET_M
    length = _BUILTIN_LENGTH_M
    to_utm = Transformer.from_crs(_WGS84, YARD_CRS, always_xy=True)
    e0, n0 = to_utm.transform(*YARD_CENTRE_LONLAT)
    rect = box(-width / 2, -length / 2, width / 2, length / 2)
    # box x = across (v), y = along (u); rotate clockwise by the heading.
    rect = affinity.rotate(rect, -YARD_HEADING_DEG, origin=(0, 0))
    rect = affinity.translate(rect, e0, n0)
    geom = _reproject(rect, YARD_CRS, _WGS84)
    coords = [(round(x, 7), round(y, 7)) for x, y in geom.exterior.coords]
    return Polygon(coords)


def _line(points: list[tuple[float, float]], layout_to: Any) -> LineString:
    return LineString([layout_to(u, v) for u, v in points])


def yard_layout(
    aoi: BaseGeometry,
    *,
    max_tracks: int = _BUILTIN_TRACKS,
    spacing_m: float = TRACK_SPACING_M,
    rng: np.random.Generator | None = None,
) -> YardLayout:
    """Fit a yard into an AOI: parallel tracks along the AOI's long axis, ladders, a spur.

    Parameters
    ----------
    aoi : shapely geometry
        AOI polygon in WGS84 (longitude, latitude).
    max_tracks : int
        Most parallel tracks to lay.
    spacing_m : float
        Centre-to-centre track distance.
    rng : numpy.random.Generator, optional
        Places the buildings around the yard; None gives a fixed arrangement.

    Returns
    -------
    YardLayout
        In the UTM zone of the AOI; every track lies inside the AOI.

    Raises
    ------
    SiteConfigError
        The AOI is too small to hold two tracks of 60 m.
    """
    from railwatch.site import utm_crs_for

    crs = utm_crs_for(aoi)
    crs_s = f"EPSG:{crs.to_epsg()}"
    aoi_m = _reproject(aoi, _WGS84, crs)
    rect = aoi_m.minimum_rotated_rectangle
    pts = np.asarray(rect.exterior.coords)[:4]
    edges = [pts[(i + 1) % 4] - pts[i] for i in range(4)]
    lengths = [float(np.hypot(*e)) for e in edges]
    k = int(np.argmax(lengths))
    along = edges[k] / lengths[k]
    if along[1] < 0 or (abs(along[1]) < 1e-9 and along[0] < 0):
        along = -along
    heading = math.degrees(math.atan2(along[0], along[1]))
    length, width = max(lengths), min(lengths)
    centre = (float(rect.centroid.x), float(rect.centroid.y))

    for scale in (1.0, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6):
        layout = _layout_in_rect(
            crs_s, aoi_m, centre, heading, length * scale, width * scale, max_tracks, spacing_m
        )
        if layout is not None and all(aoi_m.buffer(0.01).contains(t.line) for t in layout.tracks):
            return _with_surroundings(layout, rng)
    raise SiteConfigError(None, "aoi", "too small for a simulated yard (needs about 80 m x 16 m)")


def _layout_in_rect(
    crs: str,
    aoi_m: BaseGeometry,
    centre: tuple[float, float],
    heading: float,
    length: float,
    width: float,
    max_tracks: int,
    spacing: float,
) -> YardLayout | None:
    avail = width - 2 * _SIDE_CLEAR_M
    spur = avail - _SPUR_OFFSET_M >= 2 * spacing and length >= 200
    n = int((avail - (_SPUR_OFFSET_M if spur else 0.0)) // spacing) + 1
    n = min(n, max_tracks)
    if n < 2 or length < 80:
        return None
    block = (n - 1) * spacing + (_SPUR_OFFSET_M if spur else 0.0)
    v0 = -block / 2
    vs = [v0 + i * spacing for i in range(n)]
    ua, ub = -length / 2 + _END_CLEAR_M, length / 2 - _END_CLEAR_M
    span = ub - ua
    m = n // 2
    lead = 0.03 * span
    tan_t = max(0.25, (max(m, n - 1 - m) * spacing) / (0.3 * span))
    h = math.radians(heading)
    e0, n0 = centre

    def to(u: float, v: float) -> tuple[float, float]:
        return (e0 + u * math.sin(h) + v * math.cos(h), n0 + u * math.cos(h) - v * math.sin(h))

    tracks: list[Track] = []
    foul = 7.0  # clearance from the turnout to the first parked vehicle
    for i, v in enumerate(vs):
        dv = abs(v - vs[m])
        if i == m:
            line = _line([(ua, v), (ub, v)], to)
            s0, s1 = ua + lead + foul, ub - lead - foul
            kind = "through"
        else:
            s0, s1 = ua + lead + dv / tan_t, ub - lead - dv / tan_t
            line = _line([(s0, v), (s1, v)], to)
            s0, s1 = s0 + foul, s1 - foul
            kind = "yard"
        if s1 - s0 < 20:
            return None
        stand = _line([(s0, v), (s1, v)], to)
        tracks.append(Track(f"T{i + 1}", line, kind, stand))
    ladders = []
    for end, sign in ((ua + lead, 1.0), (ub - lead, -1.0)):
        for j in (0, n - 1):
            if j == m:
                continue
            dv = abs(vs[j] - vs[m])
            ladders.append(_line([(end, vs[m]), (end + sign * dv / tan_t, vs[j])], to))
    for j, lad in enumerate(ladders):
        tracks.append(Track(f"L{j + 1}", lad, "ladder", None))
    if spur:
        # The spur leaves the outermost track (+v side) through a curve of radius 220 m
        # and runs on beside it to a buffer stop at a loading shed.
        vn = vs[-1]
        radius = 220.0
        phi = math.acos(1 - _SPUR_OFFSET_M / radius)
        u_branch = ua + lead + abs(vn - vs[m]) / tan_t + 0.08 * span
        arc = [
            (u_branch + radius * math.sin(t), vn + radius * (1 - math.cos(t)))
            for t in np.linspace(0.0, phi, 24)
        ]
        u_end = min(ub - lead - 20.0, arc[-1][0] + 0.45 * span)
        pts = [*arc, (u_end, vn + _SPUR_OFFSET_M)]
        line = _line(pts, to)
        stand = substring(line, 9.0, line.length - 3.0)
        tracks.append(Track("S1", line, "spur", stand))
    ext = [
        _line([(-length / 2 - 200, vs[m]), (ua + 0.01, vs[m])], to),
        _line([(ub - 0.01, vs[m]), (length / 2 + 200, vs[m])], to),
    ]
    return YardLayout(
        crs=crs,
        aoi=aoi_m,
        centre=centre,
        heading_deg=heading,
        tracks=tuple(tracks),
        extensions=tuple(ext),
    )


def _with_surroundings(layout: YardLayout, rng: np.random.Generator | None) -> YardLayout:
    """Add a road along the yard and buildings beside it (outside the track area)."""
    rng = rng if rng is not None else np.random.default_rng(7)
    h = math.radians(layout.heading_deg)
    e0, n0 = layout.centre
    vs = [_across(layout, t.line) for t in layout.tracks if t.kind in ("yard", "through")]
    spur = [t for t in layout.tracks if t.kind == "spur"]
    vmin = min(vs)
    vmax = _across(layout, spur[0].line.interpolate(1.0, normalized=True)) if spur else max(vs)
    us = [_along(layout, Point(c)) for t in layout.tracks for c in t.line.coords]
    ua, ub = min(us), max(us)

    def rect(u0: float, u1: float, v0: float, v1: float) -> Polygon:
        corners = [(u0, v0), (u1, v0), (u1, v1), (u0, v1)]
        return Polygon(
            [
                (e0 + u * math.sin(h) + v * math.cos(h), n0 + u * math.cos(h) - v * math.sin(h))
                for u, v in corners
            ]
        )

    roads = [rect(ua - 200, ub + 200, vmin - 17.0, vmin - 11.0)]
    buildings: list[tuple[Polygon, float]] = []
    if spur:
        s_along = [_along(layout, Point(c)) for c in spur[0].line.coords]
        mid = 0.5 * (s_along[-1] + s_along[len(s_along) // 2])
        buildings.append((rect(mid - 30, mid + 30, vmax + 3.2, vmax + 15.0), 7.0))
    u = ua + 10.0
    while u < ub - 20:
        w = float(rng.uniform(8, 16))
        d = float(rng.uniform(7, 12))
        off = float(rng.uniform(3, 9))
        buildings.append(
            (rect(u, u + w, vmin - 19.0 - off - d, vmin - 19.0 - off), 4.0 + 3 * rng.random())
        )
        u += w + float(rng.uniform(15, 70))
    return YardLayout(
        crs=layout.crs,
        aoi=layout.aoi,
        centre=layout.centre,
        heading_deg=layout.heading_deg,
        tracks=layout.tracks,
        extensions=layout.extensions,
        buildings=tuple(buildings),
        roads=tuple(roads),
    )


def _along(layout: YardLayout, p: Point) -> float:
    h = math.radians(layout.heading_deg)
    return (p.x - layout.centre[0]) * math.sin(h) + (p.y - layout.centre[1]) * math.cos(h)


def _across(layout: YardLayout, geom: BaseGeometry) -> float:
    p = geom.centroid if not isinstance(geom, Point) else geom
    h = math.radians(layout.heading_deg)
    return (p.x - layout.centre[0]) * math.cos(h) - (p.y - layout.centre[1]) * math.sin(h)


# ----------------------------------------------------------------------------- story

_CLOSED = dt.date(2020, 1, 31)
_REOPEN = dt.date(2022, 9, 1)
_SUMMIT = dt.date(2023, 9, 13)


def traffic_level(day: dt.date) -> float:
    """Expected number of vehicles in the yard on ``day`` (the public story, DOMAIN.md).

    Modest before the COVID closure (at most about 20), near zero while the border was
    closed, slowly rising from autumn 2022, then a surge after the September 2023 summit
    to about 73 on 5 October 2023 and well over 150 through 2024.

    Examples
    --------
    >>> traffic_level(dt.date(2021, 5, 1))
    1.5
    >>> round(traffic_level(dt.date(2023, 10, 5)))
    73
    >>> traffic_level(dt.date(2024, 6, 17)) > 150
    True
    """
    if day < _CLOSED:
        return 14.0
    if day < _REOPEN:
        return 1.5
    if day < _SUMMIT:
        frac = (day - _REOPEN).days / (_SUMMIT - _REOPEN).days
        return 12.0 + 18.0 * frac
    t = (day - _SUMMIT).days
    if t <= 22:
        return 30.0 + 43.0 * t / 22
    if t <= 262:
        return 73.0 + (215.0 - 73.0) * (t - 22) / 240
    return 205.0


_MIX = {
    "before": {"open": 0.38, "covered": 0.27, "tank": 0.17, "flat": 0.13, "locomotive": 0.05},
    "closed": {"open": 0.2, "covered": 0.3, "tank": 0.1, "flat": 0.1, "locomotive": 0.3},
    "after": {"open": 0.64, "tank": 0.24, "covered": 0.06, "flat": 0.03, "locomotive": 0.03},
}


def _mix(day: dt.date) -> dict[str, float]:
    if day < _CLOSED:
        return _MIX["before"]
    if day < _REOPEN:
        return _MIX["closed"]
    if day < _SUMMIT:
        return _MIX["before"]
    return _MIX["after"]


# ----------------------------------------------------------------------------- vehicles


@dataclass(frozen=True, slots=True)
class Vehicle:
    """One parked rail vehicle: truth geometry plus how it looks.

    Attributes
    ----------
    track_id : str
    type : str
        ``tank``, ``open``, ``covered``, ``flat`` or ``locomotive``.
    length_m : float
        Length over the body (the polygon's length), metres.
    polygon : shapely.geometry.Polygon
        Footprint in the yard CRS.
    centre : tuple of float
    axis : tuple of float
        Unit vector along the vehicle.
    width_m, height_m : float
    paint : tuple of float
        Main body colour (red, green, blue reflectance).
    load : str
        ``coal``, ``ore``, ``empty``, ``tarp_green``, ``tarp_blue`` for open wagons,
        ``containers``, ``timber`` or ``none`` for flats, ``none`` otherwise.
    containers : tuple
        (start along the deck in metres, length, colour) per container.
    roof_snow : float
        0-1 share of snow on the roof or load on snowy dates.
    """

    track_id: str
    type: str
    length_m: float
    polygon: Polygon
    centre: tuple[float, float]
    axis: tuple[float, float]
    width_m: float
    height_m: float
    paint: tuple[float, float, float]
    load: str = "none"
    containers: tuple[tuple[float, float, tuple[float, float, float]], ...] = ()
    roof_snow: float = 0.0


def _vehicle_on(
    track_id: str,
    stand: LineString,
    s0: float,
    vtype: str,
    length: float,
    rng: np.random.Generator,
    *,
    snow: bool,
    paint: list[float] | None = None,
    day: dt.date,
) -> Vehicle:
    spec = VEHICLE_SPECS[vtype]
    width = spec["width_m"]
    part = substring(stand, s0, s0 + length)
    poly = part.buffer(width / 2, cap_style="flat", join_style="mitre")
    a, b = np.asarray(part.coords[0]), np.asarray(part.coords[-1])
    axis = (b - a) / np.hypot(*(b - a))
    mid = stand.interpolate(s0 + length / 2)
    if paint is None:
        choices = _PAINT[vtype]
        paint = choices[int(rng.integers(len(choices)))]
    jitter = rng.uniform(0.9, 1.1)
    colour = tuple(float(min(1.0, c * jitter)) for c in paint)
    load, containers, height = "none", (), spec["height_m"]
    if vtype == "open":
        after = day >= _SUMMIT
        loads = ["coal", "ore", "empty", "tarp_green", "tarp_blue"]
        p = [0.55, 0.2, 0.12, 0.08, 0.05] if after else [0.35, 0.15, 0.35, 0.1, 0.05]
        load = loads[int(rng.choice(len(loads), p=p))]
    elif vtype == "flat":
        r = rng.random()
        if r < 0.6:
            load = "containers"
            deck = length - 0.6
            if rng.random() < 0.5:
                sizes = [12.19]
            else:
                sizes = [6.06, 6.06] if rng.random() < 0.7 else [6.06]
            conts = []
            start = 0.3 + rng.uniform(0, max(0.0, deck - sum(sizes) - 0.4 * len(sizes)))
            for s in sizes:
                col = _CONTAINERS[int(rng.integers(len(_CONTAINERS)))]
                conts.append((float(start), s, tuple(float(c) for c in col)))
                start += s + 0.4
            containers = tuple(conts)
            height = 3.9
        elif r < 0.75:
            load = "timber"
            height = 2.8
    roof_snow = float(rng.uniform(0.2, 0.8)) if snow else 0.0
    return Vehicle(
        track_id=track_id,
        type=vtype,
        length_m=round(float(length), 3),
        polygon=poly,
        centre=(float(mid.x), float(mid.y)),
        axis=(float(axis[0]), float(axis[1])),
        width_m=width,
        height_m=height,
        paint=colour,
        load=load,
        containers=containers,
        roof_snow=roof_snow,
    )


def _draw_length(vtype: str, rng: np.random.Generator) -> float:
    spec = VEHICLE_SPECS[vtype]
    if vtype == "flat":
        return float(rng.choice([13.4, 14.6])) + float(rng.uniform(-0.2, 0.2))
    if vtype == "locomotive":
        return float(rng.uniform(17.0, 19.0))
    return spec["length_m"] + float(rng.uniform(-spec["jitter_m"], spec["jitter_m"]))


def place_vehicles(
    layout: YardLayout,
    n_vehicles: int,
    rng: np.random.Generator,
    *,
    day: dt.date,
    snow: bool = False,
    train8: bool = False,
) -> list[Vehicle]:
    """Park ``n_vehicles`` on the standing tracks in coupled rakes and a few loners.

    Coupled vehicles leave gaps of 0.5-1.5 m; rakes and isolated vehicles are at least
    2.5 m apart. When the yard cannot hold ``n_vehicles``, as many as fit are parked.

    Parameters
    ----------
    layout : YardLayout
    n_vehicles : int
    rng : numpy.random.Generator
    day : datetime.date
        Chooses the type mix (DOMAIN.md: ore and tank cars dominate from late 2023).
    snow : bool
        Snow on roofs and loads.
    train8 : bool
        Park the November 2022 eight-car train with its colour sequence and locomotive.

    Returns
    -------
    list of Vehicle
    """
    stands = [(t.track_id, t.stand) for t in layout.tracks if t.stand is not None]
    free: dict[str, list[tuple[float, float]]] = {tid: [(0.0, s.length)] for tid, s in stands}
    lines = dict(stands)
    mix = _mix(day)
    types, probs = list(mix), np.array(list(mix.values()))
    probs = probs / probs.sum()
    fill = n_vehicles / max(1, layout.capacity)
    out: list[Vehicle] = []
    rakes: list[list[tuple[str, list[float] | None]]] = []
    if train8:
        rakes.append([("locomotive", None)] + [(t, c) for t, c in _TRAIN8])
    remaining = n_vehicles - sum(len(r) for r in rakes)
    while remaining > 0:
        if rng.random() < 0.15 or remaining == 1:
            size = 1
        else:
            size = int(min(remaining, rng.integers(3, 31)))
        dominant = types[int(rng.choice(len(types), p=probs))]
        if dominant == "locomotive":
            dominant = "open"
        rake: list[tuple[str, list[float] | None]] = []
        for _ in range(size):
            if size > 1 and rng.random() > 0.8:
                vt = types[int(rng.choice(len(types), p=probs))]
            else:
                vt = dominant if size > 1 else types[int(rng.choice(len(types), p=probs))]
            rake.append((vt, None))
        if size >= 5 and rng.random() < 0.35:
            # a locomotive at one end, in place of a wagon so the total stays as asked
            rake[0 if rng.random() < 0.5 else -1] = ("locomotive", None)
        rakes.append(rake)
        remaining -= len(rake)
    placed_total = 0
    for rake in rakes:
        lengths = [_draw_length(vt, rng) for vt, _ in rake]
        gaps = [float(rng.uniform(0.5, 1.5)) for _ in rake[1:]]
        order = list(stands)
        rng.shuffle(order)
        # try tracks in random order; cut the rake to what the largest free interval holds
        best = None
        for tid, _ in order:
            for iv in free[tid]:
                room = iv[1] - iv[0] - 2.5
                if room <= 0:
                    continue
                k, need = 0, 0.0
                while k < len(rake) and need + lengths[k] + (gaps[k - 1] if k else 0.0) <= room:
                    need += lengths[k] + (gaps[k - 1] if k else 0.0)
                    k += 1
                if k == len(rake):
                    best = (tid, iv, k, need)
                    break
                if k and (best is None or k > best[2]):
                    best = (tid, iv, k, need)
            if best is not None and best[2] == len(rake):
                break
        if best is None:
            break
        tid, iv, k, need = best
        slack = iv[1] - iv[0] - need
        if fill > 0.5:
            offset = float(rng.uniform(2.5, min(8.0, max(2.6, slack))))
            if rng.random() < 0.5:
                offset = slack - offset
        else:
            offset = float(rng.uniform(2.5, max(2.6, slack - 2.5)))
        offset = min(max(offset, 0.0), slack)
        s = iv[0] + offset
        start = s
        for j in range(k):
            if j:
                s += gaps[j - 1]
            vt, paint = rake[j]
            out.append(
                _vehicle_on(
                    tid, lines[tid], s, vt, lengths[j], rng, snow=snow, paint=paint, day=day
                )
            )
            s += lengths[j]
        placed_total += k
        free[tid].remove(iv)
        for a, b in ((iv[0], start - 2.5), (s + 2.5, iv[1])):
            if b - a > 8.0:
                free[tid].append((a, b))
        free[tid].sort()
    if len(out) < n_vehicles:
        logger.info("yard full: parked %d of %d vehicles", len(out), n_vehicles)
    return out


# ----------------------------------------------------------------------------- plans


@dataclass(frozen=True, slots=True)
class AcquisitionPlan:
    """How one synthetic acquisition is imaged and delivered.

    Attributes
    ----------
    when : datetime.datetime
        Acquisition time, UTC.
    gsd_m : float
    crs : str
        ``EPSG:32652`` (the yard's UTM zone) or ``EPSG:4326``.
    product : str
        ``rgb8`` (8-bit RGB visual) or ``ms11`` (11-bit R, G, B, NIR in uint16).
    compression : str
        ``jpeg`` or ``deflate``.
    n_tiles : int
        1, or 2 for an acquisition delivered as two overlapping tiles.
    swath : str
        ``full``, ``partial`` (a swath edge cuts the yard) or ``miss`` (only the margin).
    cloud : str
        ``clear``, ``scattered`` or ``overcast``.
    date_carrier : str
        ``compact`` (``20230114_021500_...``), ``iso_name`` (``TMG_2022-11-03_...``),
        ``tiff_datetime`` or ``acquisition_datetime`` (metadata, undated name).
    haze : float
        Share of path radiance, 0-1.
    n_vehicles : int
    train8 : bool
        The re-identified eight-car train of November 2022 is in the yard.
    """

    when: dt.datetime
    gsd_m: float
    crs: str
    product: str
    compression: str
    n_tiles: int
    swath: str
    cloud: str
    date_carrier: str
    haze: float
    n_vehicles: int
    train8: bool = False

    @property
    def snow(self) -> bool:
        """Snow on the ground: December to March."""
        return self.when.month in (12, 1, 2, 3)


_FIXED: list[tuple[str, dict[str, Any]]] = [
    ("2019-03-08", {"compression": "jpeg"}),
    ("2019-06-21", {"product": "ms11", "date_carrier": "iso_name"}),
    ("2019-10-11", {"date_carrier": "tiff_datetime", "compression": "jpeg"}),
    ("2020-04-17", {"compression": "jpeg", "haze": 0.22}),
    ("2020-09-02", {"cloud": "scattered", "compression": "jpeg"}),
    ("2021-01-19", {"compression": "jpeg"}),
    (
        "2021-08-05",
        {"cloud": "overcast", "date_carrier": "acquisition_datetime", "compression": "jpeg"},
    ),
    ("2022-05-26", {"swath": "partial"}),
    ("2022-11-03", {"date_carrier": "iso_name", "compression": "jpeg", "train8": True}),
    ("2022-12-14", {"crs": "EPSG:4326"}),
    ("2023-03-02", {"compression": "jpeg", "date_carrier": "iso_name"}),
    ("2023-07-19", {"swath": "miss"}),
    ("2023-10-05", {"n_tiles": 2, "compression": "jpeg"}),
    (
        "2024-02-07",
        {
            "product": "ms11",
            "date_carrier": "acquisition_datetime",
            "swath": "partial",
            "gsd_m": 1.0,
        },
    ),
    ("2024-06-17", {"gsd_m": 0.3, "compression": "jpeg"}),
    ("2024-11-20", {"cloud": "scattered", "compression": "jpeg", "haze": 0.16}),
]

_PHASES = [
    (dt.date(2019, 1, 10), dt.date(2020, 1, 30), 3),
    (dt.date(2020, 2, 1), dt.date(2022, 8, 31), 4),
    (dt.date(2022, 9, 1), dt.date(2023, 9, 12), 4),
    (dt.date(2023, 9, 13), dt.date(2024, 12, 20), 5),
]

_FEATURES = (
    "n_tiles",
    "crs",
    "product",
    "swath_partial",
    "cloud_overcast",
    "cloud_scattered",
    "tiff_datetime",
    "acquisition_datetime",
    "iso_name",
    "gsd_fine",
    "gsd_coarse",
    "swath_miss",
)


def _time_of_day(day: dt.date, rng: np.random.Generator) -> dt.datetime:
    minutes = int(rng.integers(95, 146))  # 01:35-02:25 UTC, local late morning
    seconds = int(rng.integers(60))
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(
        minutes=minutes, seconds=seconds
    )


def plan_acquisitions(
    rng: np.random.Generator,
    *,
    dates: int | None = None,
    gsd_m: float | None = None,
    capacity: int | None = None,
) -> list[AcquisitionPlan]:
    """Choose dates, products and conditions of the acquisitions.

    Parameters
    ----------
    rng : numpy.random.Generator
    dates : int, optional
        None or :data:`DEFAULT_DATES` gives the fixed sample story (16 dates 2019-2024,
        each exercising something). Another number draws dates within the phases of the
        story (2019, border closed, reopening, surge) and spreads the special cases
        (tiles, EPSG:4326, 11-bit, swath edges, clouds, metadata dates) over them.
    gsd_m : float, optional
        Ground sample distance of every acquisition. None: 0.5 m with one at 0.3 m and
        one at 1.0 m.
    capacity : int, optional
        Most vehicles the yard holds; counts are capped at 90 % of it.

    Returns
    -------
    list of AcquisitionPlan
        Sorted by time.
    """
    base: dict[str, Any] = {
        "gsd_m": 0.5,
        "crs": YARD_CRS,
        "product": "rgb8",
        "compression": "deflate",
        "n_tiles": 1,
        "swath": "full",
        "cloud": "clear",
        "date_carrier": "compact",
        "train8": False,
    }
    specs: list[tuple[dt.date, dict[str, Any]]] = []
    if dates is None or dates == DEFAULT_DATES:
        specs = [(dt.date.fromisoformat(d), {**base, **kw}) for d, kw in _FIXED]
    else:
        if dates < 1:
            raise ValueError("dates must be at least 1")
        weights = np.array([w for *_, w in _PHASES], float)
        counts = np.floor(weights / weights.sum() * dates).astype(int)
        for i in np.argsort(-weights)[: dates - counts.sum()]:
            counts[i] += 1
        days: set[dt.date] = set()
        for (a, b, _), k in zip(_PHASES, counts, strict=True):
            span = (b - a).days
            while sum(1 for d in days if a <= d <= b) < k:
                days.add(a + dt.timedelta(days=int(rng.integers(span + 1))))
        specs = [(d, dict(base)) for d in sorted(days)]
        order = rng.permutation(len(specs))
        for j, feat in enumerate(_FEATURES):
            kw = specs[int(order[j % len(specs)])][1]
            if feat == "n_tiles":
                kw["n_tiles"] = 2
            elif feat == "crs":
                kw["crs"] = "EPSG:4326"
            elif feat == "product":
                kw["product"] = "ms11"
            elif feat == "swath_partial":
                kw["swath"] = "partial"
            elif feat == "swath_miss" and len(specs) > len(_FEATURES):
                kw["swath"] = "miss"
            elif feat == "cloud_overcast" and len(specs) >= 6:
                kw["cloud"] = "overcast"
            elif feat == "cloud_scattered" and kw["cloud"] == "clear":
                kw["cloud"] = "scattered"
            elif feat in ("tiff_datetime", "acquisition_datetime", "iso_name"):
                kw["date_carrier"] = feat
            elif feat == "gsd_fine":
                kw["gsd_m"] = 0.3
            elif feat == "gsd_coarse" and len(specs) > 2:
                kw["gsd_m"] = 1.0
        for d, kw in specs:
            if kw["product"] == "rgb8" and kw["swath"] == "full" and kw["crs"] == YARD_CRS:
                kw["compression"] = "jpeg" if rng.random() < 0.5 else "deflate"
            if d.year == 2022 and d.month == 11:
                kw["train8"] = True
    plans = []
    for d, kw in specs:
        when = _time_of_day(d, rng)
        haze = kw.pop("haze", None)
        if haze is None:
            haze = float(rng.uniform(0.0, 0.12))
        level = traffic_level(d)
        n = int(rng.poisson(level)) if level < 30 else int(round(level * rng.uniform(0.93, 1.07)))
        if d < _CLOSED:
            n = min(n, 20)
        if capacity is not None:
            n = min(n, int(0.9 * capacity))
        if kw.get("train8"):
            n = max(n, 9)
        if gsd_m is not None:
            kw["gsd_m"] = float(gsd_m)
        plans.append(AcquisitionPlan(when=when, haze=round(haze, 3), n_vehicles=n, **kw))
    return plans


# ----------------------------------------------------------------------------- canvas


@dataclass(frozen=True, slots=True)
class _Canvas:
    """The fine ground grid (yard CRS) that scenes are drawn on."""

    x0: float
    y0: float
    width: int
    height: int
    res: float = CANVAS_RES_M

    @property
    def transform(self) -> Affine:
        return Affine(self.res, 0.0, self.x0, 0.0, -self.res, self.y0)

    def rasterize(self, geoms: list[BaseGeometry], *, all_touched: bool = False) -> np.ndarray:
        from rasterio.features import rasterize

        geoms = [g for g in geoms if not g.is_empty]
        if not geoms:
            return np.zeros((self.height, self.width), bool)
        return rasterize(
            [(g, 1) for g in geoms],
            out_shape=(self.height, self.width),
            transform=self.transform,
            fill=0,
            all_touched=all_touched,
            dtype="uint8",
        ).astype(bool)


def _noise(shape: tuple[int, int], cell: float, rng: np.random.Generator) -> np.ndarray:
    """Smooth random field with correlation length ``cell`` pixels, unit std."""
    ch, cw = max(2, int(shape[0] / cell) + 3), max(2, int(shape[1] / cell) + 3)
    coarse = ndimage.gaussian_filter(rng.standard_normal((ch, cw)).astype(np.float32), 1.0)
    zoom = (shape[0] / (ch - 2), shape[1] / (cw - 2))
    field_ = ndimage.zoom(coarse, zoom, order=1, grid_mode=True, mode="nearest")
    field_ = field_[: shape[0], : shape[1]]
    if field_.shape != shape:
        field_ = np.pad(
            field_, ((0, shape[0] - field_.shape[0]), (0, shape[1] - field_.shape[1])), "edge"
        )
    s = float(field_.std()) or 1.0
    return ((field_ - field_.mean()) / s).astype(np.float32)


@dataclass(frozen=True, slots=True)
class _Static:
    """Per-site masks and noise fields, drawn once per simulation."""

    canvas: _Canvas
    large: np.ndarray
    mid: np.ndarray
    small: np.ndarray
    fine: np.ndarray
    formation: np.ndarray
    ballast: np.ndarray
    stain: np.ndarray
    rails: np.ndarray
    road: np.ndarray
    roofs: list[tuple[np.ndarray, np.ndarray, int]] = field(default_factory=list)


def _static_ground(layout: YardLayout, canvas: _Canvas, rng: np.random.Generator) -> _Static:
    shape = (canvas.height, canvas.width)
    lines = [t.line for t in layout.tracks] + list(layout.extensions)
    stands = [t.line for t in layout.tracks if t.kind != "ladder"]
    formation = canvas.rasterize([ln.buffer(4.5) for ln in stands + list(layout.extensions)])
    ballast = canvas.rasterize([ln.buffer(BALLAST_HALF_WIDTH_M, cap_style="flat") for ln in lines])
    stain = canvas.rasterize([ln.buffer(0.45, cap_style="flat") for ln in lines])
    rail_lines = []
    for ln in lines:
        for side in (-RAIL_OFFSET_M, RAIL_OFFSET_M):
            off = ln.offset_curve(side)
            if not off.is_empty:
                rail_lines.append(off)
    rails = canvas.rasterize(rail_lines, all_touched=True)
    road = canvas.rasterize(list(layout.roads))
    roofs = []
    for i, (poly, _h) in enumerate(layout.buildings):
        mask = canvas.rasterize([poly])
        # gable: which side of the ridge (the long axis through the centroid)
        rect = np.asarray(poly.exterior.coords)[:4]
        e = [rect[(j + 1) % 4] - rect[j] for j in range(4)]
        k = int(np.argmax([np.hypot(*v) for v in e]))
        d = e[k] / np.hypot(*e[k])
        rows, cols = np.nonzero(mask)
        xs = canvas.x0 + (cols + 0.5) * canvas.res - poly.centroid.x
        ys = canvas.y0 - (rows + 0.5) * canvas.res - poly.centroid.y
        side = np.sign(xs * -d[1] + ys * d[0])
        roofs.append((mask, side.astype(np.float32), i % len(_ROOFS)))
    return _Static(
        canvas=canvas,
        large=_noise(shape, 160.0, rng),
        mid=_noise(shape, 24.0, rng),
        small=_noise(shape, 8.0, rng),
        fine=rng.standard_normal(shape).astype(np.float32),
        formation=formation,
        ballast=ballast,
        stain=stain,
        rails=rails,
        road=road,
        roofs=roofs,
    )


def _season(month: int) -> str:
    return {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring",
            6: "summer", 7: "summer", 8: "summer"}.get(month, "autumn")  # fmt: skip


def _ground(st: _Static, plan: AcquisitionPlan, layout: YardLayout, sun: tuple[float, float],
            rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """Reflectance (4, H, W) of the ground, buildings and shadows, without vehicles."""
    veg, soil = (
        np.array(c, np.float32)[:, None, None] for c in _SEASON_GROUND[_season(plan.when.month)]
    )
    w = 1.0 / (1.0 + np.exp(-(1.6 * st.large + 0.8 * st.mid + 0.6 * st.small)))
    img = w[None] * veg + (1 - w[None]) * soil
    img *= 1.0 + 0.05 * st.fine[None] + 0.04 * st.mid[None] + 0.06 * st.small[None]
    if plan.when.month in range(5, 11):
        # shrubs and tree clumps: darker, greener, bright in NIR
        clump = np.clip((st.small + 0.7 * st.large - 1.6) * 2.0, 0, 1)[None]
        autumn = plan.when.month >= 9
        tree = np.array(
            [0.12, 0.10, 0.05, 0.30] if autumn else [0.04, 0.07, 0.035, 0.36], np.float32
        )[:, None, None] * (1 + 0.25 * st.small[None])
        img = img * (1 - clump) + tree * (1 + 0.15 * st.fine[None]) * clump
    grav = (
        np.array(_GRAVEL, np.float32)[:, None, None]
        * (1 + 0.06 * st.fine + 0.05 * st.mid + 0.04 * st.small)[None]
    )
    img = np.where(st.formation[None], grav, img)
    asphalt = np.array(_ASPHALT, np.float32)[:, None, None] * (1 + 0.03 * st.fine)[None]
    img = np.where(st.road[None], asphalt, img)
    bal = np.array(_BALLAST, np.float32)[:, None, None] * (1 + 0.09 * st.fine + 0.04 * st.mid)[None]
    img = np.where(st.ballast[None], bal, img)
    img = np.where(st.stain[None], img * 0.78, img)
    if plan.snow:
        cover = {12: 0.9, 1: 0.97, 2: 0.95, 3: 0.6}[plan.when.month]
        # thin spots where the wind blows the ground bare; March melts into patches
        patch = np.clip((cover - 0.5) * 4 + 0.5 * st.large + 0.35 * st.mid + 0.2 * st.small, 0, 1)
        patch = np.where(st.road, patch * 0.4, patch)
        patch = np.where(st.formation, patch * 0.9, patch)
        patch = np.where(st.ballast, patch * 0.7, patch)
        snow = _SNOW[:, None, None] * (1 + 0.015 * st.fine + 0.02 * st.small)[None]
        img = img * (1 - patch[None]) + snow * patch[None]
    img = np.where(st.rails[None], np.array(_RAIL, np.float32)[:, None, None], img)
    for mask, side, k in st.roofs:
        roof = np.array(_ROOFS[k], np.float32)
        lit = 0.85 + 0.15 * side
        vals = roof[:, None] * lit[None] * (1 + 0.02 * st.fine[mask])[None]
        if plan.snow:
            vals = vals * 0.15 + _SNOW[:, None] * 0.85
        img[:, mask] = vals
    return img


def _shadow_polygons(
    layout: YardLayout, vehicles: list[Vehicle], sun: tuple[float, float]
) -> list[BaseGeometry]:
    items = [(v.polygon, v.height_m) for v in vehicles] + list(layout.buildings)
    return _shadows([(poly, height, False) for poly, height in items], sun)


def catenary(layout: YardLayout) -> list[tuple[Polygon, float, bool]]:
    """Overhead-line portals over the main tracks: (footprint, height m, elevated).

    Every :data:`PORTAL_SPACING_M` along the stretch where all yard tracks run, a mast
    (0.5 m square) stands 2.9 m outside each outer track and a 0.5 m beam spans between
    their tops. Masts stand on the ground (their shadow starts at the foot); a beam is
    elevated (its shadow is its footprint moved away from the sun).
    """
    main = [t for t in layout.tracks if t.kind in ("yard", "through") and t.stand is not None]
    if len(main) < 2:
        return []
    vs = [_across(layout, t.line) for t in main]
    spans = [sorted(_along(layout, Point(t.stand.coords[i])) for i in (0, -1)) for t in main]
    u0, u1 = max(a for a, _ in spans), min(b for _, b in spans)
    v0, v1 = min(vs) - 2.9, max(vs) + 2.9

    def rect(ua: float, ub: float, va: float, vb: float) -> Polygon:
        return Polygon([layout.to_yard(u, v) for u, v in ((ua, va), (ub, va), (ub, vb), (ua, vb))])

    out: list[tuple[Polygon, float, bool]] = []
    for u in np.arange(u0 + 15.0, u1 - 15.0 + 1e-9, PORTAL_SPACING_M):
        u = float(u)
        for v in (v0, v1):
            out.append((rect(u - 0.25, u + 0.25, v - 0.25, v + 0.25), MAST_HEIGHT_M, False))
        out.append((rect(u - 0.25, u + 0.25, v0, v1), BEAM_HEIGHT_M, True))
    return out


def _shadows(
    items: list[tuple[Polygon, float, bool]], sun: tuple[float, float]
) -> list[BaseGeometry]:
    """Shadows on the ground of (footprint, height m, elevated) objects in sunlight ``sun``."""
    az, el = sun
    tan_el = math.tan(math.radians(max(el, 5.0)))
    dx, dy = -math.sin(math.radians(az)), -math.cos(math.radians(az))
    out: list[BaseGeometry] = []
    for poly, height, elevated in items:
        d = height / tan_el
        moved = affinity.translate(poly, dx * d, dy * d)
        if elevated:
            out.append(moved)
        else:  # from the foot to the shadow of the top
            pts = list(poly.exterior.coords) + list(moved.exterior.coords)
            out.append(MultiPoint(pts).convex_hull)
    return out


def _sun_frame(v: Vehicle, sun: tuple[float, float]) -> tuple[float, float, float]:
    """Sun direction in the vehicle frame: (along, across) horizontal parts and elevation."""
    az, el = sun
    sx, sy = math.sin(math.radians(az)), math.cos(math.radians(az))
    ex, ey = v.axis
    nx, ny = ey, -ex
    return sx * ex + sy * ey, sx * nx + sy * ny, math.radians(el)


def _render_vehicle(
    img: np.ndarray, v: Vehicle, canvas: _Canvas, sun: tuple[float, float], fine: np.ndarray
) -> None:
    """Draw one vehicle into ``img`` (4, H, W) in place."""
    minx, miny, maxx, maxy = v.polygon.bounds
    c0 = max(0, int((minx - canvas.x0) / canvas.res) - 1)
    c1 = min(canvas.width, int((maxx - canvas.x0) / canvas.res) + 2)
    r0 = max(0, int((canvas.y0 - maxy) / canvas.res) - 1)
    r1 = min(canvas.height, int((canvas.y0 - miny) / canvas.res) + 2)
    if c1 <= c0 or r1 <= r0:
        return
    xs = canvas.x0 + (np.arange(c0, c1) + 0.5) * canvas.res - v.centre[0]
    ys = canvas.y0 - (np.arange(r0, r1) + 0.5) * canvas.res - v.centre[1]
    ex, ey = v.axis
    a = xs[None, :] * ex + ys[:, None] * ey
    c = xs[None, :] * ey - ys[:, None] * ex
    hl, hw = v.length_m / 2, v.width_m / 2
    s_a, s_c, el = _sun_frame(v, sun)
    tex = fine[r0:r1, c0:c1]
    rgb, mask = _shade(v, a, c, hl, hw, s_a, s_c, el, tex)
    nir = 0.85 * rgb.max(axis=0) + 0.03
    out = np.concatenate([rgb, nir[None]], axis=0).astype(np.float32)
    win = img[:, r0:r1, c0:c1]
    win[:, mask] = out[:, mask]


def _shade(
    v: Vehicle,
    a: np.ndarray,
    c: np.ndarray,
    hl: float,
    hw: float,
    s_a: float,
    s_c: float,
    el: float,
    tex: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """RGB (3, h, w) and coverage mask of one vehicle in its local frame."""
    paint = np.array(v.paint, np.float32)[:, None, None]
    snow = _SNOW[:3, None, None]
    sin_el, cos_el = math.sin(el), math.cos(el)
    inside = (np.abs(a) <= hl) & (np.abs(c) <= hw)
    rgb = np.zeros((3, *a.shape), np.float32)
    if v.type == "tank":
        radius = hw - 0.1
        head = hl - 1.6
        r = np.where(
            np.abs(a) > head,
            radius * np.sqrt(np.clip(1 - ((np.abs(a) - head) / 1.0) ** 2, 0, 1)),
            radius,
        )
        barrel = inside & (np.abs(c) < r) & (np.abs(a) < hl - 0.6)
        cn = np.clip(c / np.maximum(r, 1e-3), -1, 1)
        nz = np.sqrt(1 - cn**2)
        lam = np.clip(nz * sin_el + cn * cos_el * s_c, 0, 1)
        hx, hz = s_c * cos_el, sin_el + 1.0
        spec_c = hx / math.hypot(hx, hz)
        spec = 0.32 * np.exp(-(((cn - spec_c) / 0.11) ** 2))
        body = paint * (0.3 + 0.85 * lam)[None] + spec[None]
        dome = (a**2 + c**2) < 0.6**2
        body = np.where(dome[None], body * 0.8, body)
        if v.roof_snow:
            top = (np.abs(cn) < 0.55)[None] * v.roof_snow
            body = body * (1 - top) + snow * top
        frame = np.full_like(rgb, 0.07)
        rgb = np.where(barrel[None], body, frame)
        mask = barrel | (inside & (np.abs(c) < 1.3))
    elif v.type == "open":
        wall = 0.2
        interior = inside & (np.abs(c) < hw - wall) & (np.abs(a) < hl - wall)
        rim = paint * 1.15
        if v.load == "coal":
            heaps = 1 + 0.35 * np.cos(2 * np.pi * a / 3.3) * np.cos(np.pi * c / (2 * hw))
            load = np.array(_LOADS["coal"], np.float32)[:, None, None] * heaps[None]
            depth = 0.5
        elif v.load == "ore":
            load = np.array(_LOADS["ore"], np.float32)[:, None, None] * (1 + 0.08 * tex)[None]
            depth = 0.5
        elif v.load.startswith("tarp"):
            ribs = 1 - 0.12 * (np.abs(((a + 0.6) % 1.2) - 0.6) < 0.12)
            load = np.array(_LOADS[v.load], np.float32)[:, None, None] * ribs[None]
            depth = 0.15
        else:
            load = paint * 0.7
            depth = 2.0
        if v.roof_snow and v.load != "empty":
            load = load * (1 - v.roof_snow) + snow * v.roof_snow
        elif v.roof_snow:
            load = load * (1 - 0.5 * v.roof_snow) + snow * 0.5 * v.roof_snow
        ds = depth * cos_el / max(sin_el, 0.09)
        big = 1e6
        ia, ic = hl - wall, hw - wall
        t_c = (ic - c * math.copysign(1, s_c)) / abs(s_c) if abs(s_c) > 1e-6 else big
        t_a = (ia - a * math.copysign(1, s_a)) / abs(s_a) if abs(s_a) > 1e-6 else big
        shadowed = np.minimum(t_c, t_a) < ds
        load = np.where(shadowed[None], load * 0.4, load)
        if v.roof_snow:
            rim = rim * (1 - 0.5 * v.roof_snow) + snow * 0.5 * v.roof_snow
        rgb = np.where(interior[None], load, rim)
        mask = inside
    elif v.type == "covered":
        side = np.sign(c)
        lit = 0.9 + 0.12 * side * s_c * cos_el + 0.04
        ribs = 1 - 0.08 * (np.abs(((a + 0.55) % 1.1) - 0.55) < 0.1)
        ridge = 1 + 0.1 * (np.abs(c) < 0.2)
        roof = paint * (lit * ribs * ridge)[None]
        if v.roof_snow:
            roof = roof * (1 - v.roof_snow) + snow * v.roof_snow
        ends = np.abs(a) > hl - 0.25
        rgb = np.where(ends[None], paint * 0.6, roof)
        mask = inside
    elif v.type == "flat":
        deck = paint * (1 + 0.06 * tex)[None]
        if v.load == "timber":
            logs = 1 + 0.15 * np.cos(2 * np.pi * c / 0.35)
            deck = np.where(
                (np.abs(c) < 1.3)[None] & (np.abs(a) < hl - 1.0)[None],
                np.array([0.36, 0.27, 0.18], np.float32)[:, None, None] * logs[None],
                deck,
            )
        rgb = deck
        for start, length, colour in v.containers:
            a0 = -hl + start
            box_ = (a >= a0) & (a <= a0 + length) & (np.abs(c) < 1.22)
            col = np.array(colour, np.float32)[:, None, None]
            corr = 1 - 0.07 * (np.abs(((a - a0) % 0.5) - 0.25) < 0.08)
            edge = ((np.abs(c) > 1.05) | (a < a0 + 0.2) | (a > a0 + length - 0.2)) * 0.1
            top = col * (corr + edge)[None]
            if v.roof_snow:
                top = top * (1 - v.roof_snow) + snow * v.roof_snow
            rgb = np.where(box_[None], top, rgb)
        if v.roof_snow and not v.containers:
            rgb = rgb * (1 - 0.6 * v.roof_snow) + snow * 0.6 * v.roof_snow
        mask = inside
    else:  # locomotive
        body = paint * (1 + 0.03 * tex)[None]
        stripe = np.abs(c) > hw - 0.45
        body = np.where(
            stripe[None], np.array([0.55, 0.55, 0.52], np.float32)[:, None, None] * 0.8, body
        )
        cab = a > hl - 3.4
        body = np.where(cab[None] & ~stripe[None], body * 1.15, body)
        grill = (np.abs(c) < 0.8) & (
            (np.abs(a + hl * 0.45) < 1.2)
            | (np.abs(a + hl * 0.05) < 1.0)
            | (np.abs(a - hl * 0.35) < 0.9)
        )
        body = np.where(grill[None], 0.06, body)
        if v.roof_snow:
            body = body * (1 - 0.6 * v.roof_snow) + snow * 0.6 * v.roof_snow
        rgb = body
        mask = inside
    return rgb.astype(np.float32), mask


# ----------------------------------------------------------------------------- imaging


def _cloud_field(
    canvas: _Canvas,
    plan: AcquisitionPlan,
    sun: tuple[float, float],
    track_pts: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, Any]:
    """Cloud opacity and cloud-shadow opacity on the canvas, and a sampler for points."""
    cell = 4.0
    az, el = sun
    offset = min(450.0 / math.tan(math.radians(max(el, 5.0))), 250.0)
    sx, sy = math.sin(math.radians(az)), math.cos(math.radians(az))
    pad = offset + 20.0
    ext_w = canvas.width * canvas.res + 2 * pad
    ext_h = canvas.height * canvas.res + 2 * pad
    shape = (int(ext_h / cell) + 1, int(ext_w / cell) + 1)
    f = (
        0.75 * _noise(shape, 30.0, rng)
        + 0.45 * _noise(shape, 8.0, rng)
        + 0.15 * _noise(shape, 2.5, rng)
    )
    gx0, gy0 = canvas.x0 - pad, canvas.y0 + pad

    def sample(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return ndimage.map_coordinates(
            f, [(gy0 - y) / cell - 0.5, (x - gx0) / cell - 0.5], order=1, mode="nearest"
        )

    target = 0.93 if plan.cloud == "overcast" else float(rng.uniform(0.18, 0.35))
    soft = 0.5
    ft = sample(track_pts[:, 0], track_pts[:, 1])
    thr = float(np.quantile(ft, 1 - target)) - soft / 2

    def opacity(vals: np.ndarray) -> np.ndarray:
        return (np.clip((vals - thr) / soft, 0, 1) ** 0.8 * 0.97).astype(np.float32)

    cols = canvas.x0 + (np.arange(canvas.width) + 0.5) * canvas.res
    rows = canvas.y0 - (np.arange(canvas.height) + 0.5) * canvas.res
    X, Y = np.meshgrid(cols, rows)
    cloud = opacity(sample(X.ravel(), Y.ravel())).reshape(X.shape)
    # a cloud at q shades the ground at q - offset * sun: the ground at p is shaded by q = p + ...
    shade = opacity(sample(X.ravel() + offset * sx, Y.ravel() + offset * sy)).reshape(X.shape)
    return cloud, shade, lambda x, y: opacity(sample(x, y))


def _track_points(layout: YardLayout, step_m: float = 1.0) -> np.ndarray:
    """Points every ``step_m`` along the truth tracks, clipped to the AOI."""
    pts = []
    for t in layout.tracks:
        inner = t.line.intersection(layout.aoi)
        parts = getattr(inner, "geoms", [inner])
        for p in parts:
            if p.is_empty or p.length == 0:
                continue
            d = np.arange(step_m / 2, p.length, step_m)
            pts.extend((q.x, q.y) for q in (p.interpolate(x) for x in d))
    return np.asarray(pts, float)


def _swath_halfplane(
    layout: YardLayout,
    kind: str,
    bounds: tuple[float, float, float, float],
    rng: np.random.Generator,
) -> tuple[np.ndarray, float] | None:
    """Observed half-plane ``n . p >= d`` (ground coordinates), or None for a full swath."""
    if kind == "full":
        return None
    h = math.radians(layout.heading_deg)
    along = np.array([math.sin(h), math.cos(h)])
    if kind == "partial":
        # a swath edge crossing the tracks at a slant, 45-75 % along the yard
        ang = h + math.radians(float(rng.uniform(55, 125)))
        edge_dir = np.array([math.sin(ang), math.cos(ang)])
        normal = np.array([edge_dir[1], -edge_dir[0]])
        if normal @ along < 0:
            normal = -normal
        u = float(rng.uniform(-0.25, 0.25)) * _yard_length(layout)
        p = np.array(layout.centre) + u * along
        if rng.random() < 0.5:
            normal = -normal
        return normal, float(normal @ p)
    # "miss": only a strip beyond the AOI is observed
    minx, miny, maxx, maxy = layout.aoi.bounds
    normal = np.array([1.0, 0.0]) if rng.random() < 0.5 else np.array([-1.0, 0.0])
    d = maxx + 5.0 if normal[0] > 0 else -(minx - 5.0)
    return normal, float(d)


def _yard_length(layout: YardLayout) -> float:
    us = [_along(layout, Point(c)) for t in layout.tracks for c in t.line.coords]
    return max(us) - min(us)


@dataclass(frozen=True, slots=True)
class _Product:
    crs: str
    transform: Affine
    width: int
    height: int


def _product_grid(
    bounds_m: tuple[float, float, float, float], crs: str, gsd: float, utm: str
) -> _Product:
    minx, miny, maxx, maxy = bounds_m
    if crs == utm:
        x0, y0 = math.floor(minx / gsd) * gsd, math.ceil(maxy / gsd) * gsd
        w = int(math.ceil((maxx - x0) / gsd))
        h = int(math.ceil((y0 - miny) / gsd))
        return _Product(crs, Affine(gsd, 0, x0, 0, -gsd, y0), w, h)
    tr = Transformer.from_crs(utm, crs, always_xy=True)
    lon0, lat0, lon1, lat1 = tr.transform_bounds(minx, miny, maxx, maxy)
    geod = Geod(ellps="WGS84")
    latc, lonc = (lat0 + lat1) / 2, (lon0 + lon1) / 2
    _, _, dist_x = geod.inv(lonc, latc, lonc + 0.001, latc)
    _, _, dist_y = geod.inv(lonc, latc, lonc, latc + 0.001)
    px, py = gsd * 0.001 / dist_x, gsd * 0.001 / dist_y
    w = int(math.ceil((lon1 - lon0) / px))
    h = int(math.ceil((lat1 - lat0) / py))
    return _Product(crs, Affine(px, 0, lon0, 0, -py, lat1), w, h)


def _image(
    scene: np.ndarray,
    canvas: _Canvas,
    prod: _Product,
    utm: str,
    plan: AcquisitionPlan,
    shift: tuple[float, float],
    valid_fn: Any,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sensor model: PSF blur, resampling onto the product grid (shifted), DN, noise."""
    sigma = math.sqrt(max((0.5 * plan.gsd_m) ** 2 - (canvas.res / 2) ** 2, 1e-4)) / canvas.res
    cols = np.arange(prod.width) + 0.5
    rows = np.arange(prod.height) + 0.5
    if prod.crs == utm:
        X = prod.transform.c + cols * prod.transform.a
        Y = prod.transform.f + rows * prod.transform.e
        GX, GY = np.meshgrid(X, Y)
    else:
        lon = prod.transform.c + cols * prod.transform.a
        lat = prod.transform.f + rows * prod.transform.e
        LON, LAT = np.meshgrid(lon, lat)
        GX, GY = Transformer.from_crs(prod.crs, utm, always_xy=True).transform(LON, LAT)
    gx, gy = GX - shift[0], GY - shift[1]  # ground seen by each pixel
    ci = (gx - canvas.x0) / canvas.res - 0.5
    ri = (canvas.y0 - gy) / canvas.res - 0.5
    inside = (ci >= 0) & (ci <= canvas.width - 1) & (ri >= 0) & (ri <= canvas.height - 1)
    valid = inside & valid_fn(gx, gy)
    nb = 4 if plan.product == "ms11" else 3
    out = np.empty((nb, prod.height, prod.width), np.float32)
    for b in range(nb):
        blurred = ndimage.gaussian_filter(scene[b], sigma, mode="nearest")
        out[b] = ndimage.map_coordinates(blurred, [ri, ci], order=1, mode="nearest")
    out = np.clip(out, 0, None)
    noise = rng.standard_normal(out.shape).astype(np.float32)
    # shot + read noise; 11-bit products are quieter (a 4-band product with a larger pixel well)
    scale = 0.5 if plan.product == "ms11" else 1.0
    out += noise * scale * (0.003 + 0.006 * np.sqrt(out))
    if plan.product == "ms11":
        gain = float(rng.uniform(0.9, 1.0)) * 2047.0
        dn = np.clip(np.round(out * gain), 1, 2047).astype(np.uint16)
    else:
        gain = float(rng.uniform(0.92, 1.06))
        v = np.clip(out * gain / 0.95, 0, 1) ** (1 / 1.6)
        dn = np.clip(np.round(v * 255), 1, 255).astype(np.uint8)
    dn[:, ~valid] = 0
    return dn


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class AcquisitionTruth:
    """Truth of one rendered acquisition (one row of ``truth/scenes.csv``).

    ``railcars`` is None when the yard is ``obscured`` or has ``no_coverage``: a missing
    count is not zero.
    """

    datetime: dt.datetime
    files: tuple[str, ...]
    crs: str
    gsd_m: float
    product: str
    compression: str
    shift_x_m: float
    shift_y_m: float
    cloud: float
    snow: bool
    haze: float
    sun_azimuth_deg: float
    sun_elevation_deg: float
    status: str
    coverage: float
    railcars: int | None
    n_vehicles: int
    by_type: tuple[tuple[str, int], ...]
    date_carrier: str
    exercises: tuple[str, ...]

    @property
    def date(self) -> dt.date:
        """UTC calendar date."""
        return self.datetime.date()

    def to_record(self) -> dict[str, Any]:
        """Row of ``truth/scenes.csv``."""
        return {
            "date": self.date.isoformat(),
            "datetime": _iso(self.datetime),
            "files": ";".join(self.files),
            "crs": self.crs,
            "gsd_m": self.gsd_m,
            "product": self.product,
            "compression": self.compression,
            "shift_x_m": self.shift_x_m,
            "shift_y_m": self.shift_y_m,
            "cloud": self.cloud,
            "snow": self.snow,
            "haze": self.haze,
            "sun_azimuth_deg": self.sun_azimuth_deg,
            "sun_elevation_deg": self.sun_elevation_deg,
            "date_carrier": self.date_carrier,
            "n_vehicles": self.n_vehicles,
            "status": self.status,
            "exercises": ";".join(self.exercises),
        }


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """What :func:`simulate_yard` wrote.

    Attributes
    ----------
    out_dir : Path
    layout : YardLayout
    acquisitions : tuple of AcquisitionTruth
        Sorted by time.
    truth_dir : Path
        Holds ``cars.geojson``, ``counts.csv``, ``tracks.geojson``, ``scenes.csv`` and
        ``aoi.geojson``.
    """

    out_dir: Path
    layout: YardLayout
    acquisitions: tuple[AcquisitionTruth, ...]
    truth_dir: Path

    @property
    def files(self) -> tuple[Path, ...]:
        """Every image file written, in acquisition order."""
        return tuple(self.out_dir / f for a in self.acquisitions for f in a.files)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# ----------------------------------------------------------------------------- main


def simulate_yard(
    out_dir: str | Path,
    *,
    rng: np.random.Generator,
    dates: int | None = None,
    gsd_m: float | None = None,
    aoi: BaseGeometry | None = None,
    margin_m: float = 30.0,
    max_tracks: int = _BUILTIN_TRACKS,
    catenary_portals: bool = False,
) -> SimulationResult:
    """Render a synthetic yard over time as GeoTIFFs, with exact truth.

    Parameters
    ----------
    out_dir : str or Path
        Folder for the image files; truth goes to ``out_dir/truth``. Existing files of
        the same names are replaced atomically; other files are left alone.
    rng : numpy.random.Generator
        The only source of randomness: one seed gives byte-identical output.
    dates : int, optional
        Number of acquisitions; None (or :data:`DEFAULT_DATES`) is the fixed story.
    gsd_m : float, optional
        Ground sample distance of every acquisition; None mixes 0.5 m with one 0.3 m
        and one 1.0 m acquisition.
    aoi : shapely geometry, optional
        AOI in WGS84; the yard is fitted inside it. None: :func:`builtin_aoi`.
    margin_m : float
        Rendered ground around the AOI's bounding box.
    max_tracks : int
        Most parallel tracks.
    catenary_portals : bool
        Electrified yard: overhead-line portals (:func:`catenary`) drawn over everything,
        with their thin shadows across tracks and vehicles. Uses no randomness, so the
        same seed gives the same yard, vehicles and truth with or without them.

    Returns
    -------
    SimulationResult

    Raises
    ------
    SiteConfigError
        The AOI cannot hold a yard.
    OutputError
        A file could not be written.

    Notes
    -----
    Truth semantics follow DESIGN.md: ``railcars`` counts vehicles mostly (> 50 %) inside
    the observed AOI; ``coverage`` is the observed share of track length inside the AOI
    (nodata, not cloud); ``obscured`` (cloud over more than half of the observed track
    length) and ``no_coverage`` rows have no count; ``partial`` rows count the observed
    part only.
    """
    out = Path(out_dir)
    aoi_wgs = builtin_aoi() if aoi is None else aoi
    layout = yard_layout(aoi_wgs, max_tracks=max_tracks, rng=rng)
    minx, miny, maxx, maxy = layout.aoi.bounds
    prod_bounds = (minx - margin_m, miny - margin_m, maxx + margin_m, maxy + margin_m)
    pad = 16.0  # shift (<= 10 m) + blur
    cx0 = math.floor((prod_bounds[0] - pad) / CANVAS_RES_M) * CANVAS_RES_M
    cy0 = math.ceil((prod_bounds[3] + pad) / CANVAS_RES_M) * CANVAS_RES_M
    canvas = _Canvas(
        x0=cx0,
        y0=cy0,
        width=int(math.ceil((prod_bounds[2] + pad - cx0) / CANVAS_RES_M)),
        height=int(math.ceil((cy0 - prod_bounds[1] + pad) / CANVAS_RES_M)),
    )
    static = _static_ground(layout, canvas, rng)
    plans = plan_acquisitions(rng, dates=dates, gsd_m=gsd_m, capacity=layout.capacity)
    track_pts = _track_points(layout)
    overhead = catenary(layout) if catenary_portals else []
    lon_c, lat_c = YARD_CENTRE_LONLAT if aoi is None else (aoi_wgs.centroid.x, aoi_wgs.centroid.y)
    logger.info(
        "simulating %d acquisitions of a %d-track yard",
        len(plans),
        sum(1 for t in layout.tracks if t.kind in ("yard", "through")),
    )

    truths: list[AcquisitionTruth] = []
    car_features: list[dict[str, Any]] = []
    for k, plan in enumerate(plans):
        truth, feats = _one_acquisition(
            k, plan, layout, canvas, static, prod_bounds, track_pts, (lon_c, lat_c), out, rng,
            overhead=overhead,
        )  # fmt: skip
        truths.append(truth)
        car_features.extend(feats)
    truth_dir = out / "truth"
    _write_truth(truth_dir, layout, truths, car_features, aoi_wgs)
    return SimulationResult(
        out_dir=out, layout=layout, acquisitions=tuple(truths), truth_dir=truth_dir
    )


def _one_acquisition(
    k: int,
    plan: AcquisitionPlan,
    layout: YardLayout,
    canvas: _Canvas,
    static: _Static,
    prod_bounds: tuple[float, float, float, float],
    track_pts: np.ndarray,
    lonlat: tuple[float, float],
    out: Path,
    rng: np.random.Generator,
    *,
    overhead: list[tuple[Polygon, float, bool]] | None = None,
) -> tuple[AcquisitionTruth, list[dict[str, Any]]]:
    utm = layout.crs
    sun = sun_position(plan.when, *lonlat)
    vehicles = place_vehicles(
        layout, plan.n_vehicles, rng, day=plan.when.date(), snow=plan.snow, train8=plan.train8
    )
    scene = _ground(static, plan, layout, sun, rng)
    shadows = canvas.rasterize(_shadow_polygons(layout, vehicles, sun))
    tint = _SNOW_SHADOW_TINT if plan.snow else _SHADOW
    scene = np.where(shadows[None], scene * tint[:, None, None], scene)
    for v in vehicles:
        _render_vehicle(scene, v, canvas, sun, static.fine)
    if overhead:
        # Above everything: the portals' shadows fall on ground and vehicles alike, but
        # do not darken what a vehicle's own shadow already hides from the sun.
        shade = canvas.rasterize(_shadows(overhead, sun))
        bodies = canvas.rasterize([v.polygon for v in vehicles])
        shade &= bodies | ~shadows
        scene = np.where(shade[None], scene * tint[:, None, None], scene)
        steel = canvas.rasterize([g for g, _, _ in overhead])
        scene = np.where(steel[None], np.array(_STEEL, np.float32)[:, None, None], scene)
    cloud_at = None
    if plan.cloud != "clear":
        cloud, shade, cloud_at = _cloud_field(canvas, plan, sun, track_pts, rng)
        scene *= (1 - 0.6 * shade)[None]
        scene = (
            scene * (1 - cloud[None])
            + (_CLOUD[:, None, None] * (1 + 0.05 * static.mid)[None]) * cloud[None]
        )
    scene = scene * (1 - plan.haze) + _HAZE[:, None, None] * plan.haze

    mag = float(rng.uniform(0.0, 10.0))
    ang = float(rng.uniform(0.0, 2 * math.pi))
    shift = (round(mag * math.cos(ang), 2), round(mag * math.sin(ang), 2))
    half = _swath_halfplane(layout, plan.swath, prod_bounds, rng)

    def valid_fn(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if half is None:
            return np.ones(np.shape(x), bool)
        n, d = half
        return n[0] * x + n[1] * y >= d

    prod = _product_grid(prod_bounds, plan.crs, plan.gsd_m, utm)
    dn = _image(scene, canvas, prod, utm, plan, shift, valid_fn, rng)

    # --- truth: observed footprint in ground coordinates
    if plan.crs == utm:
        foot = box(*prod_bounds)
    else:
        b = prod.transform @ (0, 0), prod.transform @ (prod.width, prod.height)
        foot = _reproject(box(b[0][0], b[1][1], b[1][0], b[0][1]).segmentize(0.0005), plan.crs, utm)
    foot = affinity.translate(foot, -shift[0], -shift[1])
    if half is not None:
        n, d = half
        big = 1e5
        c = np.array(layout.centre)
        p0 = c - n * (n @ c - d)  # the point of the edge nearest the yard
        t = np.array([-n[1], n[0]])
        hp = Polygon([p0 + t * big, p0 + t * big + n * big, p0 - t * big + n * big, p0 - t * big])
        foot = foot.intersection(hp)
    observed_aoi = layout.aoi.intersection(foot)
    inside = (
        np.array([foot.contains(Point(p)) for p in track_pts]) if len(track_pts) else np.array([])
    )
    # coverage counts track length inside the AOI that the image observes
    coverage = float(inside.mean()) if inside.size else 0.0
    cloud_share = 0.0
    if cloud_at is not None and inside.any():
        op = cloud_at(track_pts[inside, 0], track_pts[inside, 1])
        cloud_share = float((op > 0.5).mean())
    from railwatch.site import QualityConfig

    q = QualityConfig()
    if coverage < q.min_coverage:
        status = "no_coverage"
    elif cloud_share > q.max_cloud:
        status = "obscured"
    elif coverage * (1.0 - cloud_share) < q.full_coverage:
        # As the detector judges it (quality.py): track hidden under cloud is not seen.
        status = "partial"
    else:
        status = "ok"
    observed_flags = []
    for v in vehicles:
        share = v.polygon.intersection(observed_aoi).area / v.polygon.area
        if cloud_at is not None and share > 0.5:
            # Cloud-free share of the body, from points along its axis.
            f = np.linspace(-0.45, 0.45, 10) * v.length_m
            xs = v.centre[0] + f * v.axis[0]
            ys = v.centre[1] + f * v.axis[1]
            share *= float((cloud_at(xs, ys) <= 0.5).mean())
        observed_flags.append(share > 0.5)
    counted = [v for v, o in zip(vehicles, observed_flags, strict=True) if o]
    railcars = None if status in ("obscured", "no_coverage") else len(counted)
    by_type = tuple((t, sum(1 for v in counted if v.type == t)) for t in VEHICLE_SPECS)

    files = _write_product(k, plan, prod, dn, out)
    exercises = _exercises(plan, status, shift)
    truth = AcquisitionTruth(
        datetime=plan.when,
        files=tuple(files),
        crs=plan.crs,
        gsd_m=plan.gsd_m,
        product=plan.product,
        compression=plan.compression,
        shift_x_m=shift[0],
        shift_y_m=shift[1],
        cloud=round(cloud_share, 3),
        snow=plan.snow,
        haze=plan.haze,
        sun_azimuth_deg=round(sun[0], 1),
        sun_elevation_deg=round(sun[1], 1),
        status=status,
        coverage=round(coverage, 3),
        railcars=railcars,
        n_vehicles=len(vehicles),
        by_type=by_type,
        date_carrier=plan.date_carrier,
        exercises=exercises,
    )
    feats = []
    for v, obs in zip(vehicles, observed_flags, strict=True):
        under = bool(
            cloud_at is not None
            and cloud_at(np.array([v.centre[0]]), np.array([v.centre[1]]))[0] > 0.5
        )
        geom = _reproject(v.polygon, utm, _WGS84)
        feats.append(
            {
                "type": "Feature",
                "properties": {
                    "date": plan.when.date().isoformat(),
                    "datetime": _iso(plan.when),
                    "type": v.type,
                    "track_id": v.track_id,
                    "length_m": v.length_m,
                    "observed": bool(obs),
                    "under_cloud": under,
                },
                "geometry": _round_geom(mapping(geom)),
            }
        )
    logger.info("%s: %d vehicles, %s", plan.when.date(), len(vehicles), status)
    return truth, feats


def _round_geom(g: dict[str, Any], nd: int = 7) -> dict[str, Any]:
    def rnd(c: Any) -> Any:
        if isinstance(c, (int, float)):
            return round(float(c), nd)
        return [rnd(x) for x in c]

    return {"type": g["type"], "coordinates": rnd(g["coordinates"])}


def _exercises(plan: AcquisitionPlan, status: str, shift: tuple[float, float]) -> tuple[str, ...]:
    ex = []
    if plan.snow:
        ex.append("snow")
    if plan.cloud != "clear":
        ex.append(f"cloud-{plan.cloud}")
    if plan.swath == "partial":
        ex.append("partial-swath")
    if plan.swath == "miss":
        ex.append("swath-misses-yard")
    if plan.n_tiles > 1:
        ex.append("two-tiles")
    if plan.crs != YARD_CRS:
        ex.append(plan.crs)
    if plan.product == "ms11":
        ex.append("11-bit-4-band")
    if plan.gsd_m != 0.5:
        ex.append(f"gsd-{plan.gsd_m:g}m")
    if plan.compression == "jpeg":
        ex.append("jpeg")
    if plan.haze >= 0.15:
        ex.append("haze")
    if plan.date_carrier != "compact":
        ex.append(f"date-{plan.date_carrier}")
    if plan.train8:
        ex.append("8-car-train")
    if math.hypot(*shift) >= 7.0:
        ex.append("large-shift")
    ex.append(f"status-{status}")
    return tuple(ex)


def _file_names(k: int, plan: AcquisitionPlan) -> list[str]:
    t = plan.when
    kind = "ms" if plan.product == "ms11" else "visual"
    if plan.date_carrier == "compact":
        stem = f"{t:%Y%m%d_%H%M%S}_ssc{1 + k % 3}_{kind}"
    elif plan.date_carrier == "iso_name":
        stem = f"TMG_{t:%Y-%m-%d}_{kind}"
    elif plan.date_carrier == "tiff_datetime":
        stem = f"ortho_{k + 1:03d}"
    else:
        stem = f"scene_{k + 1:03d}_{kind}"
    if plan.n_tiles == 1:
        return [f"{stem}.tif"]
    return [f"{stem}_R{i + 1}C1.tif" for i in range(plan.n_tiles)]


def _write_product(
    k: int, plan: AcquisitionPlan, prod: _Product, dn: np.ndarray, out: Path
) -> list[str]:
    from railwatch.outputs import atomic_path

    names = _file_names(k, plan)
    h = prod.height
    if plan.n_tiles == 1:
        parts = [(0, h)]
    else:
        # overlapping tiles (20 rows in common)
        step = h / plan.n_tiles
        parts = [
            (max(0, int(i * step) - 10), min(h, int((i + 1) * step) + 10))
            for i in range(plan.n_tiles)
        ]
    out.mkdir(parents=True, exist_ok=True)
    for name, (r0, r1) in zip(names, parts, strict=True):
        arr = dn[:, r0:r1]
        transform = prod.transform @ Affine.translation(0, r0)
        _write_tif(out / name, arr, prod.crs, transform, plan, atomic_path)
    return names


def _write_tif(
    path: Path,
    arr: np.ndarray,
    crs: str,
    transform: Affine,
    plan: AcquisitionPlan,
    atomic_path: Any,
) -> None:
    import rasterio
    from rasterio.enums import ColorInterp

    nb = arr.shape[0]
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": arr.shape[2],
        "height": arr.shape[1],
        "count": nb,
        "dtype": arr.dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": 0,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "interleave": "pixel",
    }
    if plan.compression == "jpeg" and arr.dtype == np.uint8:
        profile.update(compress="jpeg", photometric="ycbcr", jpeg_quality=88)
    else:
        profile.update(compress="deflate", predictor=2, zlevel=9)
        # 4 bands: MINISBLACK keeps the TIFF consistent; GDAL records R, G, B, NIR itself
        profile["photometric"] = "rgb" if nb == 3 else "minisblack"
    tags: dict[str, str] = {}
    if plan.date_carrier == "tiff_datetime":
        tags["TIFFTAG_DATETIME"] = plan.when.strftime("%Y:%m:%d %H:%M:%S")
    elif plan.date_carrier == "acquisition_datetime":
        tags["ACQUISITIONDATETIME"] = _iso(plan.when)
    with atomic_path(path) as tmp:
        with rasterio.Env(GDAL_PAM_ENABLED="NO"):
            with rasterio.open(tmp, "w", **profile) as dst:
                ci = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.nir][:nb]
                dst.colorinterp = ci
                dst.write(arr)
                for i, name in enumerate(("red", "green", "blue", "nir")[:nb]):
                    dst.set_band_description(i + 1, name)
                if tags:
                    dst.update_tags(**tags)


def _write_truth(
    truth_dir: Path,
    layout: YardLayout,
    truths: list[AcquisitionTruth],
    car_features: list[dict[str, Any]],
    aoi_wgs: BaseGeometry,
) -> None:
    from railwatch.outputs import write_text

    crs_member = {"type": "name", "properties": {"name": "urn:ogc:def:crs:OGC:1.3:CRS84"}}
    cars = {"type": "FeatureCollection", "crs": crs_member, "features": car_features}
    write_text(truth_dir / "cars.geojson", json.dumps(cars, separators=(",", ":")) + "\n")
    tracks = {
        "type": "FeatureCollection",
        "crs": crs_member,
        "features": [
            {
                "type": "Feature",
                "properties": {
                    "track_id": t.track_id,
                    "kind": t.kind,
                    "length_m": round(t.line.length, 2),
                },
                "geometry": _round_geom(mapping(_reproject(t.line, layout.crs, _WGS84))),
            }
            for t in layout.tracks
        ],
    }
    write_text(truth_dir / "tracks.geojson", json.dumps(tracks, indent=1) + "\n")
    aoi_fc = {
        "type": "FeatureCollection",
        "crs": crs_member,
        "features": [{"type": "Feature", "properties": {"name": "synthetic yard AOI"},
                      "geometry": _round_geom(mapping(aoi_wgs))}],
    }  # fmt: skip
    write_text(truth_dir / "aoi.geojson", json.dumps(aoi_fc, indent=1) + "\n")

    buf = io.StringIO()
    types = list(VEHICLE_SPECS)
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        ["date", "datetime", "railcars", "status", "coverage", "cloud", *types, "n_vehicles"]
    )
    for a in truths:
        counts = dict(a.by_type)
        blank = a.railcars is None
        w.writerow(
            [a.date.isoformat(), _iso(a.datetime), "" if blank else a.railcars, a.status,
             f"{a.coverage:.3f}", f"{a.cloud:.3f}", *("" if blank else counts[t] for t in types),
             a.n_vehicles]
        )  # fmt: skip
    write_text(truth_dir / "counts.csv", buf.getvalue())

    buf = io.StringIO()
    recs = [a.to_record() for a in truths]
    w2 = csv.DictWriter(buf, fieldnames=list(recs[0]) if recs else ["date"], lineterminator="\n")
    w2.writeheader()
    w2.writerows(recs)
    write_text(truth_dir / "scenes.csv", buf.getvalue())

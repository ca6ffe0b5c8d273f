"""Imagery ingest: discover scenes, date them, group tiles, read the AOI window.

Only the AOI window (plus a margin) of each file is read, warped onto the site grid.

Everything that touches image files lives here; the rest of railwatch works on
:class:`Scene` arrays.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import math
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import RasterioIOError
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window, from_bounds
from scipy import ndimage

from railwatch.errors import RailwatchWarning, SceneReadError
from railwatch.site import SiteGrid

__all__ = [
    "Scene",
    "SceneFile",
    "Acquisition",
    "Rejection",
    "discover",
    "inspect_file",
    "group_acquisitions",
    "read_acquisition",
    "datetime_from_name",
    "datetime_from_tags",
    "has_time_of_day",
    "finest_gsd",
    "RASTER_SUFFIXES",
]

logger = logging.getLogger(__name__)

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img", ".png", ".jpg", ".jpeg", ".ntf")
"""File endings looked at when a folder is searched."""

MAX_WINDOW_PIXELS = 400_000_000
"""Refuse to read a window larger than this many pixels per band (memory guard)."""

# ---------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True, slots=True)
class Scene:
    """One acquisition read onto the site grid.

    Attributes
    ----------
    datetime : datetime.datetime
        Acquisition time, timezone-aware UTC.
    data : numpy.ndarray
        float32 array (bands, height, width) on ``grid``, scaled to about 0-1
        (digital numbers divided by the product's white level). Unobserved pixels are 0.
    valid : numpy.ndarray
        bool (height, width): True where some input tile observed the ground.
    grid : SiteGrid
    bands : tuple of str
        Colour name of each band of ``data``: a subset of ``red, green, blue, nir`` or
        ``("pan",)``.
    sources : tuple of str
        Files mosaicked into this scene.
    crs : str
        CRS of the (first) source file.
    gsd_m : float
        Native ground sample distance of the sources, metres.
    """

    datetime: dt.datetime
    data: np.ndarray
    valid: np.ndarray
    grid: SiteGrid
    bands: tuple[str, ...]
    sources: tuple[str, ...]
    crs: str
    gsd_m: float

    def gray(self) -> np.ndarray:
        """Panchromatic-like brightness (height, width), float32 0-1."""
        idx = [i for i, b in enumerate(self.bands) if b in ("red", "green", "blue", "pan")]
        if not idx:
            idx = list(range(self.data.shape[0]))
        return self.data[idx].mean(axis=0).astype(np.float32)

    def rgb(self) -> np.ndarray:
        """(height, width, 3) float32 true colour; grey repeated for panchromatic scenes."""
        if all(b in self.bands for b in ("red", "green", "blue")):
            return np.stack(
                [self.data[self.bands.index(b)] for b in ("red", "green", "blue")], axis=-1
            )
        g = self.gray()
        return np.stack([g, g, g], axis=-1)

    @property
    def date(self) -> dt.date:
        """UTC calendar date of the acquisition."""
        return self.datetime.astimezone(dt.UTC).date()


@dataclass(frozen=True, slots=True)
class SceneFile:
    """What railwatch learned about one image file without reading its pixels."""

    path: str
    datetime: dt.datetime | None
    date_source: str | None
    """``stac``, ``metadata`` or ``filename``."""
    crs: str
    gsd_m: float
    width: int
    height: int
    count: int
    dtype: str
    bands: tuple[str, ...]
    """Colour interpretation of each band as read from the file (``undefined`` if unset)."""
    bounds: tuple[float, float, float, float]
    """In the file's CRS."""
    nodata: float | None = None
    time_known: bool = True
    """False when the source carried a date only (``datetime`` is then its midnight UTC)."""

    def to_record(self) -> dict[str, Any]:
        """Row for ``scenes.csv`` and ``railwatch info``."""
        return {
            "path": self.path,
            "datetime": None if self.datetime is None else iso_utc(self.datetime),
            "date_source": self.date_source,
            "crs": self.crs,
            "gsd_m": round(self.gsd_m, 4),
            "width": self.width,
            "height": self.height,
            "bands": self.count,
            "band_names": ",".join(self.bands),
            "dtype": self.dtype,
        }


@dataclass(frozen=True, slots=True)
class Acquisition:
    """Files that image the ground at the same moment (tiles of one product)."""

    datetime: dt.datetime
    files: tuple[SceneFile, ...]

    @property
    def id(self) -> str:
        """Stable identifier, e.g. ``20230114T021500``."""
        return self.datetime.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S")

    @property
    def gsd_m(self) -> float:
        """Finest native GSD among the tiles."""
        return min(f.gsd_m for f in self.files)

    @property
    def time_known(self) -> bool:
        """Whether some tile gave the time of day, not only the date."""
        return any(f.time_known for f in self.files)


@dataclass(frozen=True, slots=True)
class Rejection:
    """An input that could not be used, and why (a row of ``scenes.csv``)."""

    path: str
    reason: str
    datetime: dt.datetime | None = None
    crs: str | None = None
    gsd_m: float | None = None


@dataclass(slots=True)
class _Candidate:
    path: str
    stac_datetime: dt.datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def iso_utc(t: dt.datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix and whole seconds."""
    return t.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------- dates

_NAME_PATTERNS = [
    # 2023-01-14, 2023_01_14, 2023.01.14, optionally followed by a time
    re.compile(
        r"(?<!\d)(?P<y>(?:19|20)\d{2})[-_.](?P<m>\d{2})[-_.](?P<d>\d{2})"
        r"(?:[T_ ](?P<H>\d{2})[:\-_]?(?P<M>\d{2})[:\-_]?(?P<S>\d{2}))?(?!\d)"
    ),
    # 20230114, 20230114T021500, 20230114_021500
    re.compile(
        r"(?<!\d)(?P<y>(?:19|20)\d{2})(?P<m>\d{2})(?P<d>\d{2})"
        r"(?:[T_]?(?P<H>\d{2})(?P<M>\d{2})(?P<S>\d{2}))?(?!\d)"
    ),
]


def datetime_from_name(name: str) -> dt.datetime | None:
    """Acquisition time from a file name, or None.

    Recognises ``20230114``, ``20230114T021500``, ``2022-11-03``, ``2022_11_03_0215 00``
    and similar, bounded by non-digits so long catalogue ids are not misread.

    Parameters
    ----------
    name : str
        File name or path; only the last component is used.

    Returns
    -------
    datetime.datetime or None
        Timezone-aware UTC.

    Examples
    --------
    >>> datetime_from_name("20230114_tumangang.tif")
    datetime.datetime(2023, 1, 14, 0, 0, tzinfo=datetime.timezone.utc)
    >>> datetime_from_name("TMG_2022-11-03T02:15:30.tif").isoformat()
    '2022-11-03T02:15:30+00:00'
    >>> datetime_from_name("scene_123456789.tif") is None
    True
    """
    base = os.path.basename(str(name))
    for pattern in _NAME_PATTERNS:
        for m in pattern.finditer(base):
            try:
                d = dt.datetime(
                    int(m["y"]),
                    int(m["m"]),
                    int(m["d"]),
                    int(m["H"] or 0),
                    int(m["M"] or 0),
                    int(m["S"] or 0),
                    tzinfo=dt.UTC,
                )
            except ValueError:
                continue
            return d
    return None


_TAG_KEYS = (
    "ACQUISITIONDATETIME",
    "ACQUISITION_DATETIME",
    "ACQUISITION_DATE",
    "ACQUISITIONDATE",
    "IMAGING_DATE",
    "DATE_ACQUIRED",
    "ACQUIRED",
    "FIRSTLINETIME",
    "TIFFTAG_DATETIME",
    "DATETIME",
)

_TAG_FORMATS = (
    "%Y:%m:%d %H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y%m%d%H%M%S",
    "%Y%m%d",
)


def parse_timestamp(value: str) -> dt.datetime | None:
    """Parse one date/time string in the formats imagery providers write, or None.

    Examples
    --------
    >>> parse_timestamp("2023:01:14 02:15:00").isoformat()
    '2023-01-14T02:15:00+00:00'
    >>> parse_timestamp("2023-01-14T11:15:00+09:00").isoformat()
    '2023-01-14T02:15:00+00:00'
    >>> parse_timestamp("yesterday") is None
    True
    """
    text = str(value).strip()
    if not text:
        return None
    iso = text[:-1] + "+00:00" if text.endswith("Z") else text
    try:
        d = dt.datetime.fromisoformat(iso)
    except ValueError:
        d = None
        for fmt in _TAG_FORMATS:
            try:
                d = dt.datetime.strptime(text[: len(dt.datetime(2000, 1, 1).strftime(fmt))], fmt)
                break
            except ValueError:
                continue
        if d is None:
            return None
    if not 1950 <= d.year <= 2200:
        return None
    if d.tzinfo is None:
        return d.replace(tzinfo=dt.UTC)
    return d.astimezone(dt.UTC)


def has_time_of_day(value: str) -> bool:
    """Whether a date/time string or file name gives the time of day, not only the date.

    Examples
    --------
    >>> has_time_of_day("2023:01:14 02:15:00"), has_time_of_day("20230114T021500.tif")
    (True, True)
    >>> has_time_of_day("2023-01-14"), has_time_of_day("TMG_2022-11-03_visual.tif")
    (False, False)
    """
    text = os.path.basename(str(value).strip())
    if re.search(r"\d{1,2}:\d{2}", text):
        return True
    for pattern in _NAME_PATTERNS:
        for m in pattern.finditer(text):
            return m["H"] is not None
    return False


def datetime_from_tags(tags: dict[str, str]) -> dt.datetime | None:
    """Acquisition time from GDAL metadata items, or None.

    Acquisition-specific keys (``ACQUISITIONDATETIME`` and similar) win over the TIFF
    ``DateTime`` tag, which some tools set to the processing time.
    """
    raw = _acquisition_tag(tags)
    return None if raw is None else parse_timestamp(raw)


def _acquisition_tag(tags: dict[str, str]) -> str | None:
    """The metadata value :func:`datetime_from_tags` reads the time from, or None."""
    upper = {str(k).upper(): v for k, v in tags.items()}
    for key in _TAG_KEYS:
        if key in upper and parse_timestamp(upper[key]) is not None:
            return upper[key]
    return None


# ---------------------------------------------------------------------------- discovery


def _gdal_path(href: str) -> str:
    if href.startswith(("http://", "https://")):
        return "/vsicurl/" + href
    if href.startswith("s3://"):
        return "/vsis3/" + href[5:]
    if href.startswith("file://"):
        return href[7:]
    return href


def _is_stac(obj: Any) -> bool:
    if not isinstance(obj, dict):
        return False
    if "stac_version" in obj:
        return True
    if obj.get("type") == "FeatureCollection":
        feats = obj.get("features")
        return isinstance(feats, list) and any(
            isinstance(f, dict) and "stac_version" in f for f in feats
        )
    return False


def _stac_candidates(path: Path, obj: dict[str, Any]) -> tuple[list[_Candidate], list[Rejection]]:
    """Image candidates of a STAC item, item collection, catalog or collection.

    Items are read leniently, one by one: an item without ``datetime`` falls back to the
    file's metadata and name, and one bad item never hides the others.
    """
    out: list[_Candidate] = []
    bad: list[Rejection] = []
    visited: set[str] = set()

    def visit(doc_path: Path, doc: Any, depth: int) -> None:
        key = os.path.realpath(doc_path)
        if key in visited:
            return
        visited.add(key)
        if not isinstance(doc, dict):
            bad.append(Rejection(str(doc_path), "not a STAC document (not a JSON object)"))
            return
        kind = doc.get("type")
        if kind == "Feature":
            _stac_item(doc, doc_path, str(doc_path), out, bad)
        elif kind == "FeatureCollection":
            feats = doc.get("features")
            if not isinstance(feats, list):
                bad.append(Rejection(str(doc_path), "STAC item collection has no features list"))
                return
            for i, f in enumerate(feats):
                _stac_item(f, doc_path, f"{doc_path}#{i}", out, bad)
        elif kind in ("Catalog", "Collection") or "links" in doc:
            if depth > 32:
                bad.append(Rejection(str(doc_path), "STAC catalog nested too deep"))
                return
            links = doc.get("links")
            for link in links if isinstance(links, list) else []:
                if not isinstance(link, dict) or link.get("rel") not in ("child", "item"):
                    continue
                href = link.get("href")
                if not isinstance(href, str) or not href:
                    continue
                if "://" in href and not href.startswith("file://"):
                    bad.append(
                        Rejection(href, "remote STAC documents are not followed; list the items")
                    )
                    continue
                target = _resolve_href(href, doc_path)
                child = _load_json(Path(target))
                if child is None:
                    bad.append(
                        Rejection(
                            target, f"linked STAC document missing or not JSON (from {doc_path})"
                        )
                    )
                    continue
                visit(Path(target), child, depth + 1)
        else:
            bad.append(Rejection(str(doc_path), f"unsupported STAC type {kind!r}"))

    visit(path, obj, 0)
    return out, bad


def _resolve_href(href: str, doc_path: Path) -> str:
    """GDAL path of an asset or link ``href`` found in the STAC document ``doc_path``."""
    if href.startswith("file://"):
        return href[7:]
    if "://" in href:
        return _gdal_path(href)
    if os.path.isabs(href):
        return href
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(doc_path)), href))


def _stac_item(
    feat: Any, doc_path: Path, where: str, out: list[_Candidate], bad: list[Rejection]
) -> None:
    if not isinstance(feat, dict):
        bad.append(Rejection(where, "STAC item is not a JSON object"))
        return
    item_id = str(feat.get("id") or where)
    props = feat.get("properties")
    props = props if isinstance(props, dict) else {}
    when = None
    for key in ("datetime", "start_datetime"):
        value = props.get(key)
        if isinstance(value, str):
            when = parse_timestamp(value)
            if when is None:
                logger.warning(
                    "%s: STAC item %s: %s %r not understood", doc_path, item_id, key, value
                )
        if when is not None:
            break
    assets = feat.get("assets")
    href = _pick_asset(assets if isinstance(assets, dict) else {})
    if href is None:
        bad.append(Rejection(f"{doc_path}#{item_id}", "STAC item has no image asset"))
        return
    base = doc_path
    for link in feat.get("links") or []:
        if (
            isinstance(link, dict)
            and link.get("rel") == "self"
            and isinstance(link.get("href"), str)
        ):
            self_href = link["href"][7:] if link["href"].startswith("file://") else link["href"]
            if os.path.isabs(self_href):
                base = Path(self_href)
    out.append(
        _Candidate(_resolve_href(href, base), stac_datetime=when, extra={"stac_item": item_id})
    )


def _pick_asset(assets: dict[str, Any]) -> str | None:
    """Asset href of a STAC item: by key, then role or media type, then file name."""

    def href(a: Any) -> str | None:
        h = a.get("href") if isinstance(a, dict) else None
        return h if isinstance(h, str) and h else None

    for key in ("visual", "analytic", "data", "image", "ortho", "pan"):
        if key in assets and href(assets[key]):
            return href(assets[key])
    for a in assets.values():
        if not href(a):
            continue
        roles = a.get("roles") or []
        mt = str(a.get("type") or "").lower()
        if (isinstance(roles, list) and "data" in roles) or "image/tiff" in mt or "jp2" in mt:
            return href(a)
    for a in assets.values():
        h = href(a)
        if h and h.lower().split("?")[0].endswith(RASTER_SUFFIXES[:5]):
            return h
    return None


def _short(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200]


def _walk(folder: Path, problems: list[Rejection]) -> Iterable[Path]:
    """Files below ``folder``, sorted, following links but never looping.

    Sub-folders that cannot be listed, and raster-named links that are broken or loop,
    are appended to ``problems`` so they appear in ``scenes.csv`` instead of vanishing.
    """
    seen: set[tuple[int, int]] = set()
    stack = [folder]
    while stack:
        d = stack.pop()
        try:
            st = d.stat()
        except OSError as exc:
            problems.append(Rejection(str(d), _os_reason(exc, "cannot open folder")))
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            logger.info("%s: folder already visited through another link; skipped", d)
            continue
        seen.add(key)
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as exc:
            problems.append(Rejection(str(d), _os_reason(exc, "cannot list folder")))
            continue
        subdirs = []
        for e in entries:
            try:
                if e.is_dir():
                    subdirs.append(Path(e.path))
                elif e.is_file():
                    yield Path(e.path)
                elif Path(e.name).suffix.lower() in RASTER_SUFFIXES:
                    # Never opened: a FIFO or socket would block or fail.
                    reason = "broken symbolic link" if e.is_symlink() else "not a regular file"
                    problems.append(Rejection(e.path, reason))
            except OSError as exc:
                if Path(e.name).suffix.lower() in RASTER_SUFFIXES:
                    problems.append(Rejection(e.path, _os_reason(exc, "cannot open")))
                else:
                    logger.info("%s: skipped (%s)", e.path, exc.strerror)
        stack.extend(reversed(subdirs))


def _os_reason(exc: OSError, what: str) -> str:
    """Short, stable reason for an OS error on an input path."""
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.ENOENT:
        return "file not found"
    return f"{what} ({exc.strerror or exc})"


def discover(inputs: Sequence[str | Path]) -> tuple[list[SceneFile], list[Rejection]]:
    """Find image files among ``inputs`` and read their metadata.

    Parameters
    ----------
    inputs : sequence of str or Path
        Image files, folders (searched recursively for raster files and STAC JSON), STAC
        items, item collections or catalogs, or GDAL paths such as ``/vsicurl/...``.

    Returns
    -------
    files : list of SceneFile
        Usable files, sorted by acquisition time then path.
    rejected : list of Rejection
        Inputs that cannot be used, each with a reason: unreadable files, broken or
        looping links, folders without imagery, links to a file already listed (``same
        file as ...``) and copies of a file of the same acquisition (``duplicate of ...``).
    """
    candidates: list[_Candidate] = []
    rejected: list[Rejection] = []
    for raw in inputs:
        s = str(raw)
        if s.startswith("/vsi") or "://" in s:
            candidates.append(_Candidate(_gdal_path(s)))
            continue
        p = Path(s)
        try:
            p.stat()
        except OSError as exc:
            rejected.append(
                Rejection(
                    s,
                    "broken symbolic link"
                    if p.is_symlink() and exc.errno == errno.ENOENT
                    else _os_reason(exc, "cannot open"),
                )
            )
            continue
        if p.is_dir():
            found = 0
            problems: list[Rejection] = []
            for f in _walk(p, problems):
                suffix = f.suffix.lower()
                if suffix in RASTER_SUFFIXES:
                    candidates.append(_Candidate(str(f)))
                    found += 1
                elif suffix == ".json":
                    obj = _load_json(f)
                    if _is_stac(obj) and obj.get("type") != "Feature":
                        c, r = _stac_candidates(f, obj)
                        candidates += c
                        rejected += r
                        found += len(c)
            rejected += problems
            if not found and not problems:
                rejected.append(Rejection(s, "folder holds no imagery"))
            continue
        if p.suffix.lower() in (".json", ".geojson"):
            obj = _load_json(p)
            if _is_stac(obj):
                c, r = _stac_candidates(p, obj)
                candidates += c
                rejected += r
                if not c and not r:
                    rejected.append(Rejection(s, "STAC document lists no items"))
                continue
            rejected.append(Rejection(s, "JSON file is not a STAC item, collection or catalog"))
            continue
        candidates.append(_Candidate(str(p)))

    files: list[SceneFile] = []
    first: dict[str, _Candidate] = {}
    # Files described by a STAC item go first so the item's datetime is the one kept.
    candidates.sort(key=lambda c: "stac_item" not in c.extra)
    for c in candidates:
        key = c.path if c.path.startswith("/vsi") else os.path.realpath(c.path)
        if key in first:
            prev = first[key]
            if prev.path != c.path and "stac_item" not in prev.extra | c.extra:
                rejected.append(Rejection(c.path, f"same file as {prev.path}"))
            continue
        first[key] = c
        try:
            files.append(inspect_file(c.path, stac_datetime=c.stac_datetime))
        except SceneReadError as exc:
            reason = exc.reason
            if "stac_item" in c.extra:
                reason += f" (asset of STAC item {c.extra['stac_item']})"
            rejected.append(Rejection(exc.path, reason))
    files.sort(key=lambda f: (f.datetime or dt.datetime.min.replace(tzinfo=dt.UTC), f.path))
    kept, dups = _drop_duplicates(files)
    return kept, rejected + dups


def _drop_duplicates(
    files: Sequence[SceneFile], *, tolerance_s: float = 120.0
) -> tuple[list[SceneFile], list[Rejection]]:
    """Keep the first of files that repeat one acquisition: same time, footprint and size."""
    kept: list[SceneFile] = []
    dups: list[Rejection] = []
    by_key: dict[tuple[Any, ...], list[SceneFile]] = {}
    for f in files:
        key = (f.crs, tuple(round(b, 6) for b in f.bounds), f.width, f.height, f.count)
        twin = next(
            (
                k
                for k in by_key.get(key, [])
                if k.datetime is not None
                and f.datetime is not None
                and abs((f.datetime - k.datetime).total_seconds()) <= tolerance_s
            ),
            None,
        )
        if twin is not None:
            dups.append(
                Rejection(
                    f.path,
                    f"duplicate of {twin.path} (same acquisition time and footprint)",
                    f.datetime,
                    f.crs,
                    f.gsd_m,
                )
            )
            continue
        by_key.setdefault(key, []).append(f)
        kept.append(f)
    return kept, dups


def _load_json(p: Path) -> Any:
    try:
        with open(p, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


_CI_NAMES = {
    ColorInterp.red: "red",
    ColorInterp.green: "green",
    ColorInterp.blue: "blue",
    ColorInterp.gray: "gray",
    ColorInterp.alpha: "alpha",
    ColorInterp.undefined: "undefined",
}


def _gsd_m(src: Any) -> float:
    res_x, res_y = abs(src.transform.a), abs(src.transform.e)
    if src.crs.is_geographic:
        lat = (src.bounds.top + src.bounds.bottom) / 2
        mx = res_x * 111_320.0 * math.cos(math.radians(lat))
        my = res_y * 110_574.0
        return float(math.sqrt(mx * my))
    factor = src.crs.linear_units_factor[1] if src.crs.linear_units_factor else 1.0
    return float(math.sqrt(res_x * res_y) * factor)


def inspect_file(path: str | Path, *, stac_datetime: dt.datetime | None = None) -> SceneFile:
    """Read one file's metadata and acquisition time.

    Parameters
    ----------
    path : str or Path
        A local path or a GDAL path (``/vsicurl/...``).
    stac_datetime : datetime.datetime, optional
        Time from a STAC item, which wins over metadata and file name.

    Returns
    -------
    SceneFile

    Raises
    ------
    SceneReadError
        The file is empty, unreadable, not georeferenced, has no CRS or no date anywhere.
    """
    s = str(path)
    if not s.startswith("/vsi"):
        p = Path(s)
        try:
            size: int | None = p.stat().st_size
        except OSError as exc:
            raise SceneReadError(s, _os_reason(exc, "cannot access file")) from None
        if size == 0:
            raise SceneReadError(s, "file is empty (0 bytes)")
        try:
            # open() rather than os.access: it also fails for root on what cannot be read.
            with open(p, "rb") as fh:
                fh.read(1)
        except OSError as exc:
            raise SceneReadError(s, _os_reason(exc, "cannot open")) from None
    else:
        size = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(s) as src:
                if size is not None and _truncated(src, size):
                    raise SceneReadError(s, "file is truncated (image data end past end of file)")
                return _inspect_open(src, s, stac_datetime)
    except SceneReadError:
        raise
    except RasterioIOError as exc:
        raise SceneReadError(s, f"not a readable raster ({_short(exc)})") from None
    except Exception as exc:  # corrupt files surface as many GDAL error types
        raise SceneReadError(s, f"cannot read ({_short(exc)})") from None


def _truncated(src: Any, size: int) -> bool:
    """True when a GeoTIFF's last image block ends beyond the file's ``size`` bytes.

    Looks at the TIFF block directory only (two metadata queries), so it is cheap even
    for huge files; sparse files (absent blocks) pass.
    """
    if src.driver != "GTiff" or not src.block_shapes:
        return False
    bh, bw = src.block_shapes[0]
    nx, ny = math.ceil(src.width / bw), math.ceil(src.height / bh)
    end = 0
    for bidx in {1, src.count}:
        for x, y in ((0, 0), (nx - 1, ny - 1)):
            off = src.get_tag_item(f"BLOCK_OFFSET_{x}_{y}", "TIFF", bidx=bidx)
            n = src.get_tag_item(f"BLOCK_SIZE_{x}_{y}", "TIFF", bidx=bidx)
            if off and n and int(off) > 0:
                end = max(end, int(off) + int(n))
    return end > size


def _inspect_open(src: Any, s: str, stac_datetime: dt.datetime | None) -> SceneFile:
    if src.crs is None:
        if src.transform.is_identity and not src.gcps[0]:
            raise SceneReadError(s, "not georeferenced (no CRS or geotransform)")
        raise SceneReadError(s, "raster has no CRS")
    if src.transform.is_identity:
        raise SceneReadError(s, "not georeferenced (identity geotransform)")
    if src.transform.b != 0 or src.transform.d != 0:
        logger.debug("%s: rotated geotransform, warping handles it", s)
    when, source, timed = None, None, True
    if stac_datetime is not None:
        when, source = stac_datetime.astimezone(dt.UTC), "stac"
    if when is None:
        tags = dict(src.tags())
        for domain in ("IMAGERY", "IMAGE_STRUCTURE"):
            try:
                tags.update(src.tags(ns=domain))
            except Exception:
                pass
        raw = _acquisition_tag(tags)
        if raw is not None:
            when, source, timed = parse_timestamp(raw), "metadata", has_time_of_day(raw)
    if when is None:
        when = datetime_from_name(s)
        source = "filename" if when else None
        timed = has_time_of_day(s)
    if when is None:
        raise SceneReadError(s, "no acquisition date in STAC, metadata or file name")
    bands = tuple(_CI_NAMES.get(ci, ci.name) for ci in src.colorinterp)
    epsg = src.crs.to_epsg()
    return SceneFile(
        path=s,
        datetime=when,
        date_source=source,
        crs=f"EPSG:{epsg}" if epsg else src.crs.to_wkt(),
        gsd_m=_gsd_m(src),
        width=src.width,
        height=src.height,
        count=src.count,
        dtype=str(src.dtypes[0]),
        bands=bands,
        bounds=tuple(src.bounds),
        nodata=src.nodata,
        time_known=timed,
    )


def group_acquisitions(
    files: Sequence[SceneFile], *, tolerance_s: float = 120.0
) -> list[Acquisition]:
    """Group files whose acquisition times lie within ``tolerance_s`` of each other.

    Tiles of one product share a time; repeated copies of one file (same time, same
    footprint) are kept once so they are not double-mosaicked.
    """
    dated = sorted((f for f in files if f.datetime is not None), key=lambda f: (f.datetime, f.path))
    groups: list[list[SceneFile]] = []
    for f in dated:
        if groups and (f.datetime - groups[-1][0].datetime).total_seconds() <= tolerance_s:
            groups[-1].append(f)
        else:
            groups.append([f])
    return [Acquisition(datetime=g[0].datetime, files=tuple(g)) for g in groups]


def duplicate_files(acq: Acquisition) -> list[SceneFile]:
    """Files of ``acq`` that repeat an earlier file's footprint and size exactly."""
    seen: set[tuple[Any, ...]] = set()
    dups = []
    for f in acq.files:
        key = (f.crs, tuple(round(b, 6) for b in f.bounds), f.width, f.height, f.count)
        if key in seen:
            dups.append(f)
        seen.add(key)
    return dups


def finest_gsd(files: Sequence[SceneFile], *, floor_m: float = 0.05) -> float:
    """Working resolution when none is configured: the finest input GSD, rounded to 1 cm."""
    g = min(f.gsd_m for f in files)
    return max(floor_m, round(g, 2))


# ---------------------------------------------------------------------------- reading

_WORLDVIEW8 = {"blue": 2, "green": 3, "red": 5, "nir": 7}


def band_indexes(
    sf: SceneFile, band_mapping: dict[str, int] | None = None
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """1-based band indexes to read and their colour names, canonical order R, G, B, NIR.

    A configured ``band_mapping`` wins; otherwise the file's colour interpretation; a
    file without one is read as R, G, B(, NIR) - for 8 bands, WorldView order.
    """
    if band_mapping:
        bad = {k: v for k, v in band_mapping.items() if v > sf.count}
        if bad:
            k, v = next(iter(bad.items()))
            raise SceneReadError(
                sf.path, f"band_mapping {k}={v} but the file has {sf.count} band(s)"
            )
        if "pan" in band_mapping:
            return (band_mapping["pan"],), ("pan",)
        names = tuple(n for n in ("red", "green", "blue", "nir") if n in band_mapping)
        return tuple(band_mapping[n] for n in names), names
    ci = [b for b in sf.bands]
    data_bands = [i + 1 for i, b in enumerate(ci) if b != "alpha"]
    if all(c in ci for c in ("red", "green", "blue")):
        idx = [ci.index(c) + 1 for c in ("red", "green", "blue")]
        rest = [i for i in data_bands if i not in idx]
        names = ("red", "green", "blue")
        if rest:
            return (*idx, rest[0]), (*names, "nir")
        return tuple(idx), names
    n = len(data_bands)
    if n == 1:
        return (data_bands[0],), ("pan",)
    if n == 2:
        return (data_bands[0],), ("pan",)
    if n in (3, 4):
        return tuple(data_bands), ("red", "green", "blue", "nir")[:n]
    if n == 8:
        return tuple(_WORLDVIEW8[c] for c in ("red", "green", "blue", "nir")), (
            "red",
            "green",
            "blue",
            "nir",
        )
    return tuple(data_bands[:3]), ("red", "green", "blue")


def white_level(dtype: str, sample: np.ndarray) -> float:
    """Digital number that maps to 1.0: 255 for 8-bit, else the bit depth the data use.

    Examples
    --------
    >>> white_level("uint8", np.array([3, 200]))
    255.0
    >>> white_level("uint16", np.array([10, 1800, 2047]))
    2047.0
    """
    if dtype == "uint8":
        return 255.0
    vals = sample[np.isfinite(sample)]
    hi = float(np.percentile(vals, 99.9)) if vals.size else 1.0
    if dtype.startswith("float"):
        if hi <= 1.5:
            return 1.0
    for bits in (8, 10, 11, 12, 14, 16):
        level = float(2**bits - 1)
        if hi <= level:
            return level
    return hi


def _grid_window(src: Any, grid: SiteGrid, tol: float = 1e-6) -> Window | None:
    """The window of ``src`` that is exactly the site grid, or None.

    When the file is in the grid's CRS, north up, at the grid's resolution and its pixel
    edges fall on the grid's, reading that window gives the grid's pixels with no
    resampling at all (cheaper, and rails a pixel wide keep their full contrast).
    """
    t = src.transform
    res = grid.resolution_m
    if src.crs is None or t.b != 0 or t.d != 0:
        return None
    if abs(t.a - res) > tol * res or abs(t.e + res) > tol * res:
        return None
    left, _, _, top = grid.bounds
    col = (left - t.c) / res
    row = (t.f - top) / res
    if abs(col - round(col)) > 1e-3 or abs(row - round(row)) > 1e-3:
        return None
    try:
        if CRS.from_user_input(src.crs) != CRS.from_user_input(grid.crs):
            return None
    except Exception:
        return None
    return Window(round(col), round(row), grid.width, grid.height)


def _valid_mask(
    src: Any, indexes: Sequence[int], win: Window, arr: np.ndarray, *, boundless: bool = False
) -> np.ndarray:
    """Where every band of ``arr`` (read from ``win``) holds data.

    Derived from what the file declares rather than by reading every band's mask: a
    nodata value is compared with the pixels already read, a per-dataset mask is read
    once; only other cases read the band masks. Outside the file (boundless reads) and
    non-finite values are never valid.
    """
    from rasterio.enums import MaskFlags

    flags = [src.mask_flag_enums[i - 1] for i in indexes]
    h, w = arr.shape[1:]
    if all(MaskFlags.all_valid in f for f in flags):
        valid = np.ones((h, w), dtype=bool)
    elif all(MaskFlags.nodata in f for f in flags) and src.nodatavals:
        valid = np.ones((h, w), dtype=bool)
        for k, i in enumerate(indexes):
            nd = src.nodatavals[i - 1]
            if nd is not None and not np.isnan(nd):
                valid &= arr[k] != nd
    elif all(MaskFlags.per_dataset in f for f in flags):
        valid = src.dataset_mask(window=win, boundless=boundless) > 0
    else:
        valid = np.ones((h, w), dtype=bool)
        for i in indexes:
            valid &= src.read_masks(i, window=win, boundless=boundless) > 0
    valid &= np.isfinite(arr).all(axis=0)
    if boundless:
        r0, c0 = int(win.row_off), int(win.col_off)
        inside = np.zeros((h, w), dtype=bool)
        inside[max(0, -r0) : max(0, src.height - r0), max(0, -c0) : max(0, src.width - c0)] = True
        valid &= inside
    return valid


def _read_one(
    sf: SceneFile,
    grid: SiteGrid,
    indexes: tuple[int, ...],
    *,
    pad_px: int = 4,
    max_pixels: int = MAX_WINDOW_PIXELS,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Read the part of one file under ``grid`` and warp it onto the grid.

    Returns (data float32 (bands,H,W) in DN, valid bool) or None when the file misses the
    grid.
    """
    with rasterio.open(sf.path) as src:
        direct = _grid_window(src, grid)
        if direct is not None:
            # The file's pixels are the grid's: read them as they are, nothing to warp.
            if int(direct.width) * int(direct.height) > max_pixels:
                raise SceneReadError(
                    sf.path,
                    f"AOI window of {grid.width}x{grid.height} px exceeds the pixel budget "
                    f"of {max_pixels} px; use a coarser --resolution or a smaller AOI",
                )
            arr = src.read(indexes, window=direct, out_dtype="float32", boundless=True,
                           fill_value=0)  # fmt: skip
            r0, c0 = int(direct.row_off), int(direct.col_off)
            if r0 >= src.height or c0 >= src.width or r0 + grid.height <= 0 or c0 + grid.width <= 0:
                return None
            valid = _valid_mask(src, indexes, direct, arr, boundless=True)
            arr *= valid
            return arr, valid
        left, bottom, right, top = grid.bounds
        pad = pad_px * grid.resolution_m
        try:
            b = transform_bounds(
                grid.crs, src.crs, left - pad, bottom - pad, right + pad, top + pad, densify_pts=21
            )
        except Exception as exc:
            raise SceneReadError(
                sf.path, f"cannot relate its CRS to the site ({_short(exc)})"
            ) from None
        if src.transform.b == 0 and src.transform.d == 0:
            w = from_bounds(*b, transform=src.transform)
            # One extra source pixel each side keeps bilinear support complete at the edge.
            c0 = max(0, math.floor(w.col_off) - 1)
            r0 = max(0, math.floor(w.row_off) - 1)
            c1 = min(src.width, math.ceil(w.col_off + w.width) + 1)
            r1 = min(src.height, math.ceil(w.row_off + w.height) + 1)
            if c1 <= c0 or r1 <= r0:
                return None
            win = Window(c0, r0, c1 - c0, r1 - r0)
        else:
            win = Window(0, 0, src.width, src.height)
        if win.width < 1 or win.height < 1:
            return None
        if int(win.width) * int(win.height) > max_pixels:
            raise SceneReadError(
                sf.path,
                f"AOI window of {int(win.width)}x{int(win.height)} px exceeds the pixel budget "
                f"of {max_pixels} px; use a coarser --resolution or a smaller AOI",
            )
        arr = src.read(indexes, window=win, out_dtype="float32")
        mask = _valid_mask(src, indexes, win, arr)
        src_transform = src.window_transform(win)
        src_crs = src.crs
    arr *= mask
    # Downsampling averages to avoid aliasing. Otherwise cubic: bilinear at a half-pixel
    # phase halves the contrast of a one-pixel rail, cubic keeps most of it.
    if sf.gsd_m < grid.resolution_m / 1.5:
        resampling = Resampling.average
    else:
        resampling = Resampling.cubic
    # The bands and the mask warped together: one GDAL warp instead of one per band.
    stacked = np.concatenate([arr, mask[None].astype(np.float32)])
    warped = np.zeros((len(indexes) + 1, grid.height, grid.width), dtype=np.float32)
    reproject(
        source=stacked,
        destination=warped,
        src_transform=src_transform,
        src_crs=src_crs,
        dst_transform=grid.transform,
        dst_crs=grid.crs,
        resampling=resampling,
    )
    out, weight = warped[:-1], warped[-1]
    # Pixels that mix data and nodata are renormalised so edges stay unbiased; those with
    # less than half valid support are unobserved.
    valid = weight >= 0.5
    out[:, valid] /= weight[valid]
    out[:, ~valid] = 0.0
    return out, valid


def read_acquisition(
    acq: Acquisition,
    grid: SiteGrid,
    *,
    band_mapping: dict[str, int] | None = None,
    max_pixels: int = MAX_WINDOW_PIXELS,
) -> Scene:
    """Read one acquisition onto ``grid``: the AOI window of every tile, mosaicked.

    Parameters
    ----------
    acq : Acquisition
    grid : SiteGrid
    band_mapping : dict, optional
        Colour name -> 1-based band index; overrides the files' colour interpretation.
    max_pixels : int
        Refuse windows larger than this (per band) instead of exhausting memory.

    Returns
    -------
    Scene
        Tiles are combined first-valid-wins in the order given, so the seam between
        abutting tiles leaves no gap in ``valid``.

    Raises
    ------
    SceneReadError
        A tile cannot be read, or no tile reaches the grid.
    """
    first = acq.files[0]
    indexes, names = band_indexes(first, band_mapping)
    data = np.zeros((len(names), grid.height, grid.width), dtype=np.float32)
    valid = np.zeros((grid.height, grid.width), dtype=bool)
    used: list[str] = []
    reached = False
    for sf in acq.files:
        try:
            idx, nm = band_indexes(sf, band_mapping)
            if nm != names:
                raise SceneReadError(sf.path, f"bands {nm} differ from the other tiles' {names}")
            got = _read_one(sf, grid, idx, max_pixels=max_pixels)
        except SceneReadError:
            raise
        except RasterioIOError as exc:
            logger.warning("%s: pixels unreadable: %s", sf.path, _short(exc))
            raise SceneReadError(sf.path, "pixels unreadable (truncated or corrupt file)") from None
        except MemoryError:
            raise SceneReadError(sf.path, "not enough memory to read the AOI window") from None
        except Exception as exc:
            raise SceneReadError(sf.path, f"read failed ({_short(exc)})") from None
        used.append(sf.path)
        if got is None:
            continue
        reached = True
        arr, ok = got
        if sf.dtype == "uint8":
            level = 255.0
        else:
            level = white_level(
                sf.dtype, arr[:, ok][:, ::7].ravel() if ok.any() else arr[:, :1, :1]
            )
        new = ok & ~valid
        np.divide(arr, level, out=data, where=new[None])
        valid |= ok
    if not reached:
        raise SceneReadError(first.path, "footprint does not overlap the AOI")
    # A one-pixel erosion keeps resampling halos at swath edges out of the analysis.
    if valid.any() and not valid.all():
        valid = ndimage.binary_erosion(valid, iterations=1, border_value=1)
        data *= valid
    np.clip(data, 0.0, 1.5, out=data)
    return Scene(
        datetime=acq.datetime,
        data=data,
        valid=valid,
        grid=grid,
        bands=names,
        sources=tuple(used),
        crs=first.crs,
        gsd_m=acq.gsd_m,
    )


def warn_if_disjoint(files: Sequence[SceneFile], aoi_wgs84: Any) -> None:
    """Warn when no file's footprint touches the AOI (a CRS mix-up is the usual cause)."""
    from shapely.geometry import box

    for f in files:
        try:
            b = transform_bounds(f.crs, "EPSG:4326", *f.bounds, densify_pts=21)
        except Exception:
            continue
        if box(*b).intersects(aoi_wgs84):
            return
    if files:
        warnings.warn(
            "no image footprint touches the AOI; are the AOI and the imagery in the CRS "
            "they declare?",
            RailwatchWarning,
            stacklevel=2,
        )


def aoi_coverage(sf: SceneFile, aoi_wgs84: Any, *, resolution_m: float | None = None) -> float:
    """Share (0-1) of the AOI's area that ``sf`` observes with valid data.

    The file is read onto a coarse grid (default: 4x its GSD, at least 2 m), so this is
    cheap even for large scenes.
    """
    from railwatch.site import Site, aoi_in_grid, make_grid

    res = resolution_m or max(2.0, 4 * sf.gsd_m)
    grid = make_grid(Site(name="aoi", aoi=aoi_wgs84, margin_m=0.0), res)
    inside = grid.rasterize(aoi_in_grid(Site(name="aoi", aoi=aoi_wgs84), grid))
    if not inside.any():
        return 0.0
    idx, _ = band_indexes(sf)
    got = _read_one(sf, grid, idx[:1])
    if got is None:
        return 0.0
    _, valid = got
    return float((valid & inside).sum() / inside.sum())

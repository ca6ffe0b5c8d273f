"""Writers for the output directory.

Every file is written to a temporary name in the same folder and renamed over the
target, so a reader never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from railwatch.errors import OutputError

__all__ = [
    "atomic_path",
    "write_bytes",
    "write_text",
    "write_json",
    "write_csv",
    "sha256_file",
    "load_results",
    "Results",
]


@contextlib.contextmanager
def atomic_path(target: str | Path, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it over ``target`` on success.

    On any exception the temporary file is removed and ``target`` is left as it was.
    Disk-full and permission errors become :class:`OutputError` naming the target.
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=suffix or target.suffix or ".tmp", dir=target.parent
        )
        os.close(fd)
    except OSError as exc:
        raise OutputError(target, _os_problem(exc)) from None
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; outputs get the usual umask-based mode.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise OutputError(target, _os_problem(exc)) from None
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if _is_gdal_write_error(exc):
            raise OutputError(target, _gdal_problem(exc)) from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _is_gdal_write_error(exc: BaseException) -> bool:
    """An error raised by a GDAL-based writer (GeoPackage, GeoTIFF) rather than our code."""
    module = type(exc).__module__ or ""
    return module.split(".")[0] in ("pyogrio", "rasterio", "fiona", "osgeo")


def _gdal_problem(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    low = text.lower()
    if "no space" in low or "disk full" in low:
        return "no space left on device; previous outputs are intact"
    if "too large" in low:
        return "file too large (file system or size limit); previous outputs are intact"
    if "permission" in low or "read-only" in low or "read only" in low:
        return "output location is not writable; previous outputs are intact"
    return f"cannot write ({text[:200]}); previous outputs are intact"


def _os_problem(exc: OSError) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on device; previous outputs are intact"
    if exc.errno == errno.EFBIG:
        return "file too large (file system or size limit); previous outputs are intact"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "output location is not writable; previous outputs are intact"
    return f"cannot write ({exc.strerror or exc})"


def write_bytes(target: str | Path, data: bytes) -> Path:
    """Atomically write ``data`` to ``target``."""
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(target)


def write_text(target: str | Path, text: str) -> Path:
    r"""Atomically write UTF-8 ``text`` to ``target`` (``\\n`` line endings)."""
    return write_bytes(target, text.encode("utf-8"))


def write_json(target: str | Path, obj: Any) -> Path:
    """Atomically write ``obj`` as indented, key-sorted JSON."""
    return write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def format_table(df: Any) -> Any:
    """Copy of ``df`` ready for CSV: dates as ``YYYY-MM-DD``, times as ISO 8601 UTC (``Z``).

    Missing values stay empty; nothing is turned into a zero.
    """
    import datetime as dt

    import pandas as pd

    out = df.copy()
    for col in out.columns:
        s = out[col]
        if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(s):
            ts = pd.to_datetime(s, utc=True)
            fmt = "%Y-%m-%d" if col in ("date", "week_start") else "%Y-%m-%dT%H:%M:%SZ"
            out[col] = ts.dt.strftime(fmt).where(ts.notna(), "")
        elif s.dtype == object:
            out[col] = [
                v.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                if isinstance(v, dt.datetime)
                else v.isoformat()
                if isinstance(v, dt.date)
                else v
                for v in s
            ]
    return out


def csv_text(df: Any) -> str:
    """A pandas DataFrame as the CSV text railwatch writes (see :func:`format_table`)."""
    return format_table(df).to_csv(index=False, lineterminator="\n")


def write_csv(target: str | Path, df: Any) -> Path:
    """Atomically write a pandas DataFrame as CSV without its index (:func:`csv_text`)."""
    return write_text(target, csv_text(df))


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------- reading back

_RESULT_FILES = ("counts.csv", "weekly.csv", "scenes.csv", "railcars.gpkg", "run.json")


def load_results(out_dir: str | Path) -> Any:
    """Read a results directory written by ``railwatch count``.

    Parameters
    ----------
    out_dir : str or Path

    Returns
    -------
    Results
        ``counts``, ``weekly``, ``scenes`` (pandas DataFrames with parsed dates and
        nullable integer counts), ``railcars``, ``tracks``, ``aoi``, ``footprints``
        (GeoDataFrames in the site CRS) and ``run`` (the provenance dict).

    Raises
    ------
    InputFileError
        A file is missing or unreadable.
    """
    import geopandas as gpd
    import pandas as pd

    from railwatch.errors import InputFileError
    from railwatch.timeseries import read_counts, read_weekly

    d = Path(out_dir)
    if not d.is_dir():
        raise InputFileError(d, "results directory not found")
    for name in _RESULT_FILES:
        if not (d / name).is_file():
            raise InputFileError(d / name, "missing; run `railwatch count` first")
    try:
        counts = read_counts(d / "counts.csv")
        weekly = read_weekly(d / "weekly.csv")
        scenes = _typed_dates(pd.read_csv(d / "scenes.csv", dtype=str, keep_default_na=False))
        if "gsd_m" in scenes:
            scenes["gsd_m"] = pd.to_numeric(scenes["gsd_m"], errors="coerce").astype("Float64")
    except (ValueError, KeyError, pd.errors.ParserError) as exc:
        raise InputFileError(d, f"malformed table ({exc})") from None
    layers = {}
    for layer in ("railcars", "tracks", "aoi", "footprints"):
        try:
            gdf = gpd.read_file(d / "railcars.gpkg", layer=layer, engine="pyogrio")
            layers[layer] = _typed_dates(gdf)
        except Exception as exc:
            raise InputFileError(d / "railcars.gpkg", f"layer {layer}: {exc}") from None
    try:
        run = json.loads((d / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputFileError(d / "run.json", f"not valid JSON ({exc})") from None
    return Results(counts=counts, weekly=weekly, scenes=scenes, run=run, **layers)


def _typed_dates(df: Any) -> Any:
    """Parse text ``datetime`` (ISO 8601, UTC) and ``date`` columns as :func:`read_counts` does.

    Empty values become ``NaT``; columns GDAL already typed and other columns are kept.
    """
    import pandas as pd

    for col, kw, dtype in (
        ("datetime", {"utc": True, "format": "ISO8601"}, "datetime64[us, UTC]"),
        ("date", {"format": "%Y-%m-%d"}, "datetime64[us]"),
    ):
        if col in df.columns and not pd.api.types.is_datetime64_any_dtype(df[col]):
            text = df[col].astype("string").str.strip()
            df[col] = pd.to_datetime(text.where(text != ""), **kw).astype(dtype)
    return df


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Results:
    """Tables of one results directory (see :func:`load_results`)."""

    counts: Any
    weekly: Any
    scenes: Any
    railcars: Any
    tracks: Any
    aoi: Any
    footprints: Any
    run: dict[str, Any]


_TEMP = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}(\.[A-Za-z0-9]+)?$")


def remove_stale_temps(out_dir: str | Path) -> list[Path]:
    """Delete temporary files left by a killed writer (call while holding the run lock).

    :func:`atomic_path` writes ``.NAME.XXXXXXXX.ext`` beside ``NAME`` and renames it; a
    process killed in between leaves the temporary file behind.

    Parameters
    ----------
    out_dir : str or Path
        Output directory; it and its ``quicklooks`` folder are cleaned.

    Returns
    -------
    list of Path
        The files removed.
    """
    removed = []
    root = Path(out_dir)
    for folder in (root, root / "quicklooks"):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.is_file() and _TEMP.match(p.name):
                try:
                    p.unlink()
                    removed.append(p)
                except OSError:
                    pass
    return removed

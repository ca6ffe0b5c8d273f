"""Per-acquisition and weekly traffic tables (``counts.csv``, ``weekly.csv``).

Missing counts stay missing: integer columns use pandas' nullable ``Int64`` and the
anomaly flag the nullable ``boolean`` dtype, so an obscured acquisition is an empty cell
in the CSV, never a zero.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from railwatch.baseline import Baseline, apply_baseline, baseline_value
from railwatch.site import BaselineConfig
from railwatch.types import STATUSES, VEHICLE_TYPES

__all__ = [
    "COUNTS_COLUMNS",
    "WEEKLY_COLUMNS",
    "OBSERVABLE_STATUSES",
    "counts_table",
    "weekly_table",
    "read_counts",
    "read_weekly",
]

logger = logging.getLogger(__name__)

COUNTS_COLUMNS: tuple[str, ...] = (
    "date",
    "datetime",
    "railcars",
    "railcars_low",
    "railcars_high",
    "status",
    "coverage",
    "cloud",
    "gsd_m",
    "shift_m",
    "n_tiles",
    *VEHICLE_TYPES,
    "baseline",
    "excess",
    "ratio",
    "anomaly",
    "scenes",
)
"""Columns of ``counts.csv`` in DESIGN.md order."""

WEEKLY_COLUMNS: tuple[str, ...] = (
    "week_start",
    "n_scenes",
    "railcars_mean",
    "railcars_max",
    "baseline",
    "excess",
    "anomaly",
)
"""Columns of ``weekly.csv`` in DESIGN.md order."""

OBSERVABLE_STATUSES: tuple[str, ...] = ("ok", "partial")
"""Statuses that may carry a count; ``obscured`` and ``no_coverage`` never do."""

_INT_COLUMNS = ("railcars", "railcars_low", "railcars_high", "n_tiles", *VEHICLE_TYPES)
_FLOAT_COLUMNS = ("coverage", "cloud", "gsd_m", "shift_m", "baseline", "excess", "ratio")
_COUNT_VALUE_COLUMNS = ("railcars", "railcars_low", "railcars_high", *VEHICLE_TYPES)

_DATE_DTYPE = "datetime64[us]"
_DATETIME_DTYPE = "datetime64[us, UTC]"


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    """Cast the counts columns to their nullable dtypes (in place on a copy)."""
    out = df.copy()
    out["date"] = pd.to_datetime(out["date"]).astype(_DATE_DTYPE)
    out["datetime"] = pd.to_datetime(out["datetime"], utc=True).astype(_DATETIME_DTYPE)
    for c in _INT_COLUMNS:
        out[c] = pd.to_numeric(out[c]).astype("Int64")
    for c in _FLOAT_COLUMNS:
        out[c] = pd.to_numeric(out[c]).astype("Float64")
    out["anomaly"] = out["anomaly"].astype("boolean")
    out["status"] = out["status"].astype("string")
    out["scenes"] = out["scenes"].astype("string")
    return out


def _empty_counts() -> pd.DataFrame:
    return _typed(pd.DataFrame({c: pd.Series([], dtype=object) for c in COUNTS_COLUMNS}))


def counts_table(
    records: Sequence[Mapping[str, Any]], baseline_cfg: BaselineConfig
) -> pd.DataFrame:
    """Per-acquisition table (``counts.csv``) from the pipeline's records.

    Parameters
    ----------
    records : sequence of mapping
        One mapping per acquisition with the keys of :data:`COUNTS_COLUMNS` except the
        baseline columns. ``date`` defaults to the UTC date of ``datetime``.
    baseline_cfg : BaselineConfig
        Baseline model used to fill ``baseline``, ``excess``, ``ratio`` and ``anomaly``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COUNTS_COLUMNS`, sorted by ``datetime``; counts are ``Int64``
        with ``<NA>`` where the yard was not observable.

    Raises
    ------
    ValueError
        When a record has no ``datetime`` or an unknown ``status``.

    Notes
    -----
    A record whose status is ``obscured`` or ``no_coverage`` but which carries a number
    has that number removed (with a warning): such a row never reports a count.
    """
    if not records:
        return _empty_counts()
    rows = []
    for i, rec in enumerate(records):
        if rec.get("datetime") is None:
            raise ValueError(f"record {i} has no datetime")
        status = rec.get("status")
        if status not in STATUSES:
            raise ValueError(f"record {i}: unknown status {status!r} (allowed: {STATUSES})")
        row = {c: rec.get(c) for c in COUNTS_COLUMNS}
        t = rec["datetime"]
        if row["date"] is None:
            ts = pd.Timestamp(t)
            row["date"] = (ts.tz_convert("UTC") if ts.tzinfo else ts).date()
        if status not in OBSERVABLE_STATUSES:
            numbers = [c for c in _COUNT_VALUE_COLUMNS if row[c] is not None]
            if numbers:
                logger.warning(
                    "%s is %s but carries %s; dropping the numbers", t, status, ", ".join(numbers)
                )
                for c in _COUNT_VALUE_COLUMNS:
                    row[c] = None
        rows.append(row)
    df = pd.DataFrame(rows, columns=list(COUNTS_COLUMNS))
    df = _typed(df)
    df = df.sort_values("datetime", kind="stable").reset_index(drop=True)
    df = apply_baseline(df, baseline_cfg)
    return df[list(COUNTS_COLUMNS)]


def _week_start(dates: pd.Series) -> pd.Series:
    d = pd.to_datetime(dates).astype(_DATE_DTYPE).dt.normalize()
    return d - pd.to_timedelta(d.dt.day_of_week, unit="D")


def weekly_table(
    counts: pd.DataFrame,
    baseline_cfg: BaselineConfig,
    *,
    baseline: Baseline | None = None,
) -> pd.DataFrame:
    """Weekly series (``weekly.csv``): one row per ISO week, gaps included.

    Parameters
    ----------
    counts : pandas.DataFrame
        Output of :func:`counts_table` (or :func:`read_counts`).
    baseline_cfg : BaselineConfig
        Baseline model, resolved against ``counts``.
    baseline : Baseline, optional
        Already resolved baseline.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`WEEKLY_COLUMNS`; ``week_start`` is the Monday (UTC dates) of every
        week from the first to the last acquisition.

    Notes
    -----
    - ``n_scenes`` counts every acquisition of the week, whatever its status; a week
      without any has 0 and empty values.
    - ``railcars_mean`` and ``railcars_max`` use the week's complete (``ok``) counts; a
      week with only ``partial`` counts uses those (they are lower bounds). Obscured
      and uncovered acquisitions never contribute.
    - ``baseline`` is the model's value for every week, gaps included; ``excess`` is
      ``railcars_mean - baseline``; ``anomaly`` is True when any acquisition of the week
      is an anomaly, False when counted ones are all not, empty otherwise.
    """
    b = baseline if baseline is not None else baseline_value(baseline_cfg, counts)
    if counts.empty:
        return _typed_weekly(pd.DataFrame({c: [] for c in WEEKLY_COLUMNS}))
    week = pd.Series(_week_start(counts["date"]).to_numpy(), name="week")
    weeks = pd.date_range(week.min(), week.max(), freq="7D").astype(_DATE_DTYPE)
    status = counts["status"].astype("string").fillna("").to_numpy()
    has_count = counts["railcars"].notna().to_numpy()
    ok = (status == "ok") & has_count
    # A week without a complete count falls back on its partial ones (lower bounds).
    week_has_ok = pd.Series(ok).groupby(week).transform("any").to_numpy()
    used = ok | ((status == "partial") & has_count & ~week_has_ok)
    vals = pd.to_numeric(counts["railcars"]).astype("float64").to_numpy()
    stats = pd.DataFrame({"week": week[used], "v": vals[used]}).groupby("week")["v"]
    mean, vmax = stats.mean(), stats.max()
    flags = counts["anomaly"].astype("boolean").to_numpy(dtype=object, na_value=None)
    flagged = pd.DataFrame({"week": week[has_count], "f": flags[has_count]}).dropna()
    anomaly = flagged.groupby("week")["f"].any() if len(flagged) else pd.Series(dtype=bool)
    n_scenes = week.value_counts()
    base = None if b.value is None else round(b.value, 3)
    rows = []
    # One row per calendar week: a decade of weekly imagery is 520 of them.
    for w in weeks:
        m = round(float(mean[w]), 2) if w in mean.index else None
        rows.append(
            {
                "week_start": w,
                "n_scenes": int(n_scenes.get(w, 0)),
                "railcars_mean": m,
                "railcars_max": int(vmax[w]) if w in vmax.index else None,
                "baseline": base,
                "excess": None if m is None or b.value is None else round(m - b.value, 2),
                "anomaly": bool(anomaly[w]) if w in anomaly.index else None,
            }
        )
    return _typed_weekly(pd.DataFrame(rows, columns=list(WEEKLY_COLUMNS)))


def _typed_weekly(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["week_start"] = pd.to_datetime(out["week_start"]).astype(_DATE_DTYPE)
    out["n_scenes"] = pd.to_numeric(out["n_scenes"]).astype("int64")
    out["railcars_max"] = pd.to_numeric(out["railcars_max"]).astype("Int64")
    for c in ("railcars_mean", "baseline", "excess"):
        out[c] = pd.to_numeric(out[c]).astype("Float64")
    out["anomaly"] = out["anomaly"].astype("boolean")
    return out[list(WEEKLY_COLUMNS)]


def _read_csv(path: str | Path, columns: Sequence[str]) -> pd.DataFrame:
    df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    return df


def _bool_column(s: pd.Series) -> pd.Series:
    mapping = {"true": True, "false": False, "1": True, "0": False}
    vals = [pd.NA if pd.isna(v) else mapping.get(str(v).strip().lower(), None) for v in s]
    bad = [v for v, m in zip(s, vals, strict=True) if m is None]
    if bad:
        raise ValueError(f"not a boolean: {bad[0]!r}")
    return pd.Series(vals, index=s.index, dtype="boolean")


def read_counts(path: str | Path) -> pd.DataFrame:
    """Read a ``counts.csv`` back with the dtypes :func:`counts_table` produces.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    ValueError
        When a column is missing or a value cannot be parsed.
    """
    df = _read_csv(path, COUNTS_COLUMNS)
    df["anomaly"] = _bool_column(df["anomaly"])
    return _typed(df)[list(COUNTS_COLUMNS)]


def read_weekly(path: str | Path) -> pd.DataFrame:
    """Read a ``weekly.csv`` back with the dtypes :func:`weekly_table` produces.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    ValueError
        When a column is missing or a value cannot be parsed.
    """
    df = _read_csv(path, WEEKLY_COLUMNS)
    df["anomaly"] = _bool_column(df["anomaly"])
    return _typed_weekly(df)


def iso_week_id(day: dt.date) -> str:
    """ISO week label, e.g. ``2023-W41``.

    Examples
    --------
    >>> iso_week_id(dt.date(2023, 10, 5))
    '2023-W40'
    """
    y, w, _ = day.isocalendar()
    return f"{y}-W{w:02d}"

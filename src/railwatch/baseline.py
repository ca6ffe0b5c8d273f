"""Baseline models: how many vehicles the yard would hold without unusual traffic.

Four models (``BaselineConfig.model``), formulas in docs/baseline.md:

- ``none``: no baseline; the ``baseline``, ``excess``, ``ratio`` and ``anomaly`` columns
  stay empty.
- ``constant``: the analyst's number.
- ``reference``: a statistic of the complete (``ok``) counts in a reference period
  (``mean``, ``p90`` or ``robust_z``).
- ``demand``: vehicles that the freight needs of the towns the yard serves keep standing
  in it: ``sum(population) * t_per_capita_year / wagon_payload_t * dwell_days / 365``.

An acquisition is an anomaly only when the *low* bound of its count interval exceeds
the threshold, so a noisy count cannot raise an alarm on its own.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from railwatch.site import BaselineConfig

__all__ = [
    "Baseline",
    "MAD_TO_SIGMA",
    "MIN_ROBUST_SCALE",
    "baseline_value",
    "apply_baseline",
    "demand_vehicles",
    "anomaly_flags",
]

logger = logging.getLogger(__name__)

MAD_TO_SIGMA = 1.4826
"""Scale of the median absolute deviation to a normal standard deviation."""

MIN_ROBUST_SCALE = 1.0
"""Smallest spread (vehicles) ``robust_z`` uses: counts are integers, and a reference
period with identical counts (MAD 0) must not flag a single extra wagon."""

DAYS_PER_YEAR = 365.0


@dataclass(frozen=True, slots=True)
class Baseline:
    """A resolved baseline: its value, the anomaly threshold and how both were obtained.

    Attributes
    ----------
    model : str
        ``none``, ``constant``, ``reference`` or ``demand``.
    value : float or None
        Expected number of vehicles in the yard; None when there is no baseline.
    threshold : float or None
        An acquisition is an anomaly when ``railcars_low > threshold``.
    formula : str
        The formula with its numbers, for the report.
    inputs : dict
        Named inputs of the formula (JSON-able).
    note : str
        Why the value is missing, or other caveats; empty when none.
    """

    model: str
    value: float | None
    threshold: float | None
    formula: str
    inputs: dict[str, Any] = field(default_factory=dict)
    note: str = ""


# --------------------------------------------------------------------------- models


def demand_vehicles(
    towns: Iterable[tuple[str, float]],
    *,
    freight_t_per_capita_year: float,
    wagon_payload_t: float,
    dwell_days: float,
) -> float:
    """Vehicles standing in the yard to serve the towns' freight demand.

    Parameters
    ----------
    towns : iterable of (str, float)
        (name, population) of the towns the yard serves.
    freight_t_per_capita_year : float
        Rail freight per inhabitant and year, tonnes.
    wagon_payload_t : float
        Mean payload of a loaded wagon, tonnes.
    dwell_days : float
        Mean time a wagon stands in the yard, days.

    Returns
    -------
    float
        ``sum(population) * freight_t_per_capita_year / wagon_payload_t * dwell_days / 365``:
        wagonloads per year times the share of the year each wagon spends in the yard.

    Examples
    --------
    >>> demand_vehicles([("A", 146_000.0)], freight_t_per_capita_year=1.5,
    ...                 wagon_payload_t=60.0, dwell_days=2.0)
    20.0
    """
    if wagon_payload_t <= 0:
        raise ValueError(f"wagon_payload_t must be positive, got {wagon_payload_t}")
    population = sum(float(p) for _, p in towns)
    wagons_per_year = population * freight_t_per_capita_year / wagon_payload_t
    return wagons_per_year * dwell_days / DAYS_PER_YEAR


def _fmt(x: float) -> str:
    """Short human number: 18.3, 0.642, 205,000."""
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}".rstrip("0").rstrip(".")
    return f"{x:.3g}"


def _reference_counts(cfg: BaselineConfig, counts: pd.DataFrame) -> np.ndarray:
    """Complete (``ok``) counts inside the reference period, as floats."""
    if counts.empty:
        return np.array([], dtype=float)
    dates = pd.to_datetime(counts["date"]).dt.date
    inside = pd.Series(True, index=counts.index)
    if cfg.reference_start is not None:
        inside &= dates >= cfg.reference_start
    if cfg.reference_end is not None:
        inside &= dates <= cfg.reference_end
    sel = inside & (counts["status"] == "ok").fillna(False) & counts["railcars"].notna()
    return counts.loc[sel, "railcars"].to_numpy(dtype=float)


def baseline_value(cfg: BaselineConfig, counts: pd.DataFrame | None = None) -> Baseline:
    """Resolve the configured baseline model to a number and an anomaly threshold.

    Parameters
    ----------
    cfg : BaselineConfig
        Model and parameters from the site file.
    counts : pandas.DataFrame, optional
        Per-acquisition table with ``date``, ``status`` and ``railcars``; needed only by
        the ``reference`` model.

    Returns
    -------
    Baseline
        ``value`` is None for ``none`` and for a ``reference`` period without any
        complete (``ok``) acquisition; ``note`` then says why.

    Raises
    ------
    ValueError
        For an unknown model or statistic.

    Notes
    -----
    Thresholds: ``factor * value`` for ``constant``, ``demand`` and ``reference`` with
    ``mean`` or ``p90``; ``median + z * max(1.4826 * MAD, 1)`` for ``robust_z``.
    """
    model = cfg.model
    if model == "none":
        return Baseline("none", None, None, "no baseline configured")
    if model == "constant":
        if cfg.value is None:
            raise ValueError("constant baseline needs a value")
        v = float(cfg.value)
        return Baseline(
            "constant",
            v,
            cfg.factor * v,
            f"constant set by the analyst: {_fmt(v)} vehicles",
            {"value": v, "factor": cfg.factor},
        )
    if model == "demand":
        towns = [(str(n), float(p)) for n, p in cfg.towns]
        v = demand_vehicles(
            towns,
            freight_t_per_capita_year=cfg.freight_t_per_capita_year,
            wagon_payload_t=cfg.wagon_payload_t,
            dwell_days=cfg.dwell_days,
        )
        pop = sum(p for _, p in towns)
        names = " + ".join(f"{n} {_fmt(p)}" for n, p in towns) or "no towns"
        formula = (
            f"({names} = {_fmt(pop)} inhabitants) × {_fmt(cfg.freight_t_per_capita_year)} t "
            f"per inhabitant and year ÷ {_fmt(cfg.wagon_payload_t)} t per wagon × "
            f"{_fmt(cfg.dwell_days)} days in the yard ÷ 365 days = {_fmt(v)} vehicles"
        )
        inputs = {
            "towns": [[n, p] for n, p in towns],
            "population": pop,
            "freight_t_per_capita_year": cfg.freight_t_per_capita_year,
            "wagon_payload_t": cfg.wagon_payload_t,
            "dwell_days": cfg.dwell_days,
            "wagons_per_year": pop * cfg.freight_t_per_capita_year / cfg.wagon_payload_t,
            "factor": cfg.factor,
        }
        return Baseline("demand", v, cfg.factor * v, formula, inputs)
    if model == "reference":
        return _reference_baseline(cfg, counts if counts is not None else pd.DataFrame())
    raise ValueError(f"unknown baseline model {model!r}")


def _reference_baseline(cfg: BaselineConfig, counts: pd.DataFrame) -> Baseline:
    start = cfg.reference_start.isoformat() if cfg.reference_start else "first acquisition"
    end = cfg.reference_end.isoformat() if cfg.reference_end else "last acquisition"
    period = f"{start} to {end}"
    values = _reference_counts(cfg, counts)
    n = int(values.size)
    inputs: dict[str, Any] = {
        "reference_start": cfg.reference_start.isoformat() if cfg.reference_start else None,
        "reference_end": cfg.reference_end.isoformat() if cfg.reference_end else None,
        "statistic": cfg.statistic,
        "n_reference": n,
        "factor": cfg.factor,
    }
    if n == 0:
        note = f"no complete (ok) acquisition in the reference period {period}"
        logger.warning("reference baseline: %s", note)
        return Baseline("reference", None, None, f"reference period {period}", inputs, note)
    if cfg.statistic == "mean":
        v = float(np.mean(values))
        text = f"mean of {n} complete counts, {period}: {_fmt(v)} vehicles"
        threshold = cfg.factor * v
    elif cfg.statistic == "p90":
        # Linear interpolation between order statistics (numpy's default, Hyndman-Fan 7).
        v = float(np.percentile(values, 90))
        text = f"90th percentile of {n} complete counts, {period}: {_fmt(v)} vehicles"
        threshold = cfg.factor * v
    elif cfg.statistic == "robust_z":
        v = float(np.median(values))
        mad = float(np.median(np.abs(values - v)))
        scale = max(MAD_TO_SIGMA * mad, MIN_ROBUST_SCALE)
        threshold = v + cfg.z_threshold * scale
        inputs |= {"median": v, "mad": mad, "scale": scale, "z_threshold": cfg.z_threshold}
        text = (
            f"median of {n} complete counts, {period}: {_fmt(v)} vehicles; "
            f"anomaly above median + {_fmt(cfg.z_threshold)} × max(1.4826 × MAD {_fmt(mad)}, 1) "
            f"= {_fmt(threshold)} vehicles"
        )
        return Baseline("reference", v, threshold, text, inputs)
    else:
        raise ValueError(f"unknown reference statistic {cfg.statistic!r}")
    inputs["value"] = v
    return Baseline("reference", v, threshold, text, inputs)


# --------------------------------------------------------------------------- columns


def anomaly_flags(low: Sequence[Any] | pd.Series, threshold: float | None) -> pd.Series:
    """Anomaly flag per count: ``low > threshold``; empty where either is missing.

    Parameters
    ----------
    low : sequence or Series of int or None
        Low bound of each count interval.
    threshold : float or None
        Anomaly threshold from :func:`baseline_value`.

    Returns
    -------
    pandas.Series of dtype ``boolean``
        True, False or ``<NA>`` (unobservable row, or no baseline).

    Examples
    --------
    >>> anomaly_flags([19, 20, 21, None], 20.0).tolist()
    [False, False, True, <NA>]
    """
    s = pd.Series(low, dtype="Float64") if not isinstance(low, pd.Series) else low
    s = s.astype("Float64")
    if threshold is None or not math.isfinite(threshold):
        return pd.Series(pd.NA, index=s.index, dtype="boolean")
    return (s > threshold).astype("boolean")


def apply_baseline(
    counts: pd.DataFrame, cfg: BaselineConfig, baseline: Baseline | None = None
) -> pd.DataFrame:
    """Copy of ``counts`` with ``baseline``, ``excess``, ``ratio`` and ``anomaly`` filled.

    Parameters
    ----------
    counts : pandas.DataFrame
        Per-acquisition table with ``railcars``, ``railcars_low``, ``status`` and ``date``.
    cfg : BaselineConfig
        Baseline model.
    baseline : Baseline, optional
        Already resolved baseline (default: ``baseline_value(cfg, counts)``).

    Returns
    -------
    pandas.DataFrame
        ``baseline`` (vehicles), ``excess = railcars - baseline`` (vehicles),
        ``ratio = railcars / baseline`` (empty when the baseline is 0) and ``anomaly``
        (``railcars_low > threshold``). ``baseline`` is the model's value on every row;
        rows without a count keep ``excess``, ``ratio`` and ``anomaly`` empty.
    """
    b = baseline if baseline is not None else baseline_value(cfg, counts)
    out = counts.copy()
    n = len(out)
    railcars = out["railcars"].astype("Float64")
    low = out["railcars_low"].astype("Float64")
    # A count without an interval is its own best lower bound.
    low = low.fillna(railcars)
    if b.value is None:
        empty = pd.Series([pd.NA] * n, index=out.index, dtype="Float64")
        out["baseline"] = empty
        out["excess"] = empty.copy()
        out["ratio"] = empty.copy()
        out["anomaly"] = pd.Series([pd.NA] * n, index=out.index, dtype="boolean")
        return out
    value = float(b.value)
    out["baseline"] = pd.Series([round(value, 3)] * n, index=out.index, dtype="Float64")
    out["excess"] = (railcars - value).round(3)
    if value > 0:
        out["ratio"] = (railcars / value).round(3)
    else:
        out["ratio"] = pd.Series([pd.NA] * n, index=out.index, dtype="Float64")
    flags = anomaly_flags(low, b.threshold)
    flags[railcars.isna()] = pd.NA
    out["anomaly"] = flags
    return out

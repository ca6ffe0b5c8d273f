"""Score a results directory against labelled vehicles.

Detections are matched to truth vehicles per acquisition date by centroid distance, one to
one and optimally; from the matches come true/false positives and misses, precision,
recall and F1. Counts are compared with the truth count of each acquisition (error, MAE,
MAPE, and whether the truth lies inside the reported low/high interval). Acquisitions the
detector declared unobservable (``obscured``, ``no_coverage``) are not scored, but a number
reported where the truth says nothing could be seen is counted as a *false number*.

:func:`match_detections` and :func:`evaluate` are pure; :func:`evaluate_dir` reads a
``railwatch count`` output directory and a truth file and calls :func:`evaluate`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from railwatch.errors import SiteConfigError, VectorReadError
from railwatch.types import STATUSES, VEHICLE_TYPES

if TYPE_CHECKING:
    import geopandas as gpd
    from pyproj import CRS

__all__ = ["EvaluationResult", "match_detections", "evaluate", "evaluate_dir"]

logger = logging.getLogger(__name__)

SCORED_STATUSES: tuple[str, ...] = ("ok", "partial")
"""Detector statuses whose acquisitions carry detections to score."""

UNOBSERVABLE_STATUSES: tuple[str, ...] = ("obscured", "no_coverage")
"""Statuses under which no number may be reported."""

ACQUISITION_COLUMNS: tuple[str, ...] = (
    "date",
    "status",
    "gsd_m",
    "truth",
    "railcars",
    "railcars_low",
    "railcars_high",
    "error",
    "abs_error",
    "in_interval",
    "tp",
    "fp",
    "fn",
    "precision",
    "recall",
    "f1",
    "truth_status",
    "truth_scope",
)
"""Columns of :attr:`EvaluationResult.per_acquisition` (and of ``evaluation.csv``).

``truth_status`` is the status from the truth counts (empty without them); ``truth_scope``
says which truth vehicles a row was matched against: ``all`` of that date, those inside
the ``observed`` area, or ``counts`` (a partial row without a known observed area, whose
misses are the truth count of observed cars minus the matches).
"""

SUMMARY_COLUMNS: tuple[str, ...] = (
    "n_acquisitions",
    "n_scored",
    "tp",
    "fp",
    "fn",
    "precision",
    "recall",
    "f1",
    "mae",
    "mape",
    "interval_coverage",
)
"""Columns of the ``by_gsd`` and ``by_status`` tables, after their key column."""


@dataclass(frozen=True, slots=True, eq=False)  # eq=False: DataFrame fields have no truth value
class EvaluationResult:
    """Scores of one results directory against truth.

    Attributes
    ----------
    per_acquisition : pandas.DataFrame
        One row per acquisition of ``counts.csv``, columns :data:`ACQUISITION_COLUMNS`.
        Rows not scored (detector status ``obscured`` / ``no_coverage``) have empty
        matching and error fields.
    tp, fp, fn : int
        Matches, unmatched detections and unmatched truth vehicles over scored rows.
    precision, recall, f1 : float
        Micro-averaged over scored rows; NaN when undefined (no detections, no truth).
    mae : float
        Mean absolute count error (cars) over scored rows with a truth count.
    mape : float
        Mean absolute count error relative to the truth count, as a fraction (0.1 is
        10 %), over scored rows whose truth count is above zero.
    interval_coverage : float
        Share of scored rows (with a truth count and an interval) whose truth count lies
        within ``[railcars_low, railcars_high]``.
    type_confusion : pandas.DataFrame
        Matched pairs counted by truth type (index) and detected type (columns); empty
        when either side has no ``type``.
    type_accuracy : float
        Share of typed matched pairs whose types agree; NaN when there are none.
    by_gsd : pandas.DataFrame
        Scored rows grouped by ``gsd_m`` rounded to 0.1 m; columns ``gsd_m`` then
        :data:`SUMMARY_COLUMNS`.
    by_status : pandas.DataFrame
        All rows grouped by detector ``status``; columns ``status`` then
        :data:`SUMMARY_COLUMNS`.
    status_confusion : pandas.DataFrame
        Acquisitions counted by truth status (index) and detector status (columns);
        empty without truth statuses.
    n_false_numbers : int or None
        Acquisitions the truth calls ``obscured`` / ``no_coverage`` for which the detector
        still reported a number; None when the truth carries no status.
    n_withheld : int or None
        Acquisitions the truth calls ``ok`` / ``partial`` for which the detector reported
        no number; None when the truth carries no status.
    max_distance_m : float
        Matching threshold used.
    """

    per_acquisition: pd.DataFrame
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float
    mae: float
    mape: float
    interval_coverage: float
    type_confusion: pd.DataFrame
    type_accuracy: float
    by_gsd: pd.DataFrame
    by_status: pd.DataFrame
    status_confusion: pd.DataFrame
    n_false_numbers: int | None
    n_withheld: int | None
    max_distance_m: float

    @property
    def n_acquisitions(self) -> int:
        """Number of acquisitions in ``counts.csv``."""
        return len(self.per_acquisition)

    @property
    def n_scored(self) -> int:
        """Number of acquisitions scored (detector status ``ok`` or ``partial``)."""
        return int(self.per_acquisition["status"].isin(SCORED_STATUSES).sum())

    @property
    def not_scored(self) -> pd.DataFrame:
        """Rows of :attr:`per_acquisition` that were not scored."""
        return self.per_acquisition[~self.per_acquisition["status"].isin(SCORED_STATUSES)]

    def to_record(self) -> dict[str, Any]:
        """Summary figures as one flat, JSON-friendly mapping (NaN becomes None)."""
        rec: dict[str, Any] = {
            "n_acquisitions": self.n_acquisitions,
            "n_scored": self.n_scored,
            "n_not_scored": self.n_acquisitions - self.n_scored,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "mae": self.mae,
            "mape": self.mape,
            "interval_coverage": self.interval_coverage,
            "type_accuracy": self.type_accuracy,
            "n_typed_matches": int(self.type_confusion.to_numpy().sum()),
            "n_false_numbers": self.n_false_numbers,
            "n_withheld": self.n_withheld,
            "max_distance_m": self.max_distance_m,
        }
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()}


# ----------------------------------------------------------------------------- matching


def match_detections(
    det_xy: np.ndarray, truth_xy: np.ndarray, *, max_distance_m: float
) -> list[tuple[int, int]]:
    """Pair detections with truth vehicles one to one, within a distance.

    The pairing has the most pairs possible within ``max_distance_m`` and, among those,
    the smallest total distance.

    Parameters
    ----------
    det_xy : numpy.ndarray
        Detection centroids, shape (n, 2), in a metric CRS.
    truth_xy : numpy.ndarray
        Truth centroids, shape (m, 2), in the same CRS.
    max_distance_m : float
        Largest centroid distance of a pair (inclusive).

    Returns
    -------
    list of (int, int)
        ``(detection index, truth index)`` pairs, sorted by detection index.

    Raises
    ------
    ValueError
        Arrays are not of shape (k, 2), or ``max_distance_m`` is not a positive number.

    Examples
    --------
    >>> import numpy as np
    >>> det = np.array([[0.0, 0.0], [10.0, 0.0], [1.0, 0.0]])
    >>> truth = np.array([[0.5, 0.0], [20.0, 0.0]])
    >>> match_detections(det, truth, max_distance_m=3.0)
    [(0, 0)]
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    if not (np.isfinite(max_distance_m) and max_distance_m > 0):
        raise ValueError(f"max_distance_m must be a positive number, got {max_distance_m!r}")
    det, truth = np.asarray(det_xy, dtype=float), np.asarray(truth_xy, dtype=float)
    for name, arr in (("det_xy", det), ("truth_xy", truth)):
        if arr.size and (arr.ndim != 2 or arr.shape[1] != 2):
            raise ValueError(f"{name} must have shape (n, 2), got {arr.shape}")
    if len(det) == 0 or len(truth) == 0:
        return []
    dist = cdist(det, truth)
    feasible = dist <= max_distance_m
    if not feasible.any():
        return []
    # Every assignment has min(n, m) pairs; an infeasible pair costs more than the sum of
    # all feasible distances could, so the optimum first maximises feasible pairs and then
    # minimises their total distance.
    penalty = max_distance_m * (min(dist.shape) + 1) + 1.0
    cost = np.where(feasible, dist, penalty)
    rows, cols = linear_sum_assignment(cost)
    keep = feasible[rows, cols]
    return [(int(r), int(c)) for r, c in zip(rows[keep], cols[keep], strict=True)]


# ----------------------------------------------------------------------------- inputs


class _InputError(ValueError):
    """A table handed to :func:`evaluate` is malformed; ``source`` names the argument."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = source
        self.problem = problem
        super().__init__(f"{source}: {problem}")


def _date_keys(frame: pd.DataFrame) -> pd.Series:
    """Acquisition dates (``YYYY-MM-DD`` strings, UTC) from ``date``, else ``datetime``.

    Raises ValueError naming the column when neither exists or a value does not parse.
    """
    if len(frame) == 0:
        return pd.Series([], dtype=object, index=frame.index)
    if "date" in frame.columns:
        col = "date"
        parsed = pd.to_datetime(frame[col], errors="coerce", format="ISO8601")
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_convert("UTC")
    elif "datetime" in frame.columns:
        col = "datetime"
        parsed = pd.to_datetime(frame[col], errors="coerce", utc=True, format="ISO8601")
    else:
        raise ValueError("no 'date' or 'datetime' column")
    bad = parsed.isna()
    if bad.any():
        example = frame[col][bad].iloc[0]
        raise ValueError(f"column '{col}': {int(bad.sum())} value(s) not a date, e.g. {example!r}")
    return parsed.dt.strftime("%Y-%m-%d").astype(object)


def _dates(frame: pd.DataFrame, source: str) -> pd.Series:
    try:
        return _date_keys(frame)
    except ValueError as exc:
        raise _InputError(source, str(exc)) from None


def _counts_table(counts: pd.DataFrame, *, source: str, required: tuple[str, ...]) -> pd.DataFrame:
    """Normalise a counts table: one row per date, numeric counts, known statuses."""
    missing = [c for c in required if c not in counts.columns]
    if missing:
        raise _InputError(source, f"no '{missing[0]}' column")
    out = pd.DataFrame({"date": _dates(counts, source).to_numpy()})
    for col in ("railcars", "railcars_low", "railcars_high", "gsd_m"):
        if col not in counts.columns:
            out[col] = np.nan
            continue
        values = pd.to_numeric(counts[col], errors="coerce")
        bad = values.isna() & counts[col].notna()
        if bad.any():
            raise _InputError(source, f"column '{col}': not a number: {counts[col][bad].iloc[0]!r}")
        out[col] = values.to_numpy()
    status = counts["status"] if "status" in counts.columns else pd.Series([None] * len(counts))
    status = status.astype(object).where(status.notna(), None)
    unknown = sorted({str(s) for s in status if s is not None and s not in STATUSES})
    if unknown:
        raise _InputError(source, f"column 'status': unknown value(s) {', '.join(unknown)}")
    out["status"] = status.to_numpy()
    dup = out["date"][out["date"].duplicated()]
    if len(dup):
        raise _InputError(
            source,
            f"{int(out['date'].eq(dup.iloc[0]).sum())} rows for {dup.iloc[0]}; "
            "evaluation keys acquisitions by date",
        )
    return out


def _metric_crs(detections: gpd.GeoDataFrame, truth: gpd.GeoDataFrame) -> CRS:
    """The CRS in which distances are measured: the detections' own when it is metric."""
    from pyproj import CRS

    from railwatch.site import utm_crs_for

    if detections.crs is None:
        raise _InputError("detections", "no CRS")
    if truth.crs is None:
        raise _InputError("truth", "no CRS")
    crs = CRS.from_user_input(detections.crs)
    if crs.is_projected and crs.axis_info[0].unit_name in ("metre", "meter"):
        return crs
    ref = truth if len(truth) else detections
    if len(ref) == 0:
        return crs
    logger.info("detections are not in a metric CRS; measuring distances in UTM")
    return utm_crs_for(ref.to_crs("EPSG:4326").geometry.union_all().envelope.centroid)


def _in_area(geoms: gpd.GeoSeries, area: Any) -> np.ndarray:
    """Vehicles mostly (>50 % of their area) inside ``area``; points and lines by centroid."""
    import shapely

    arr = geoms.to_numpy()
    size = shapely.area(arr)
    share = np.divide(
        shapely.area(shapely.intersection(arr, area)),
        size,
        out=np.zeros(len(arr)),
        where=size > 0,
    )
    return np.where(size > 0, share > 0.5, shapely.covers(area, shapely.centroid(arr)))


def _areas_by_date(frame: gpd.GeoDataFrame | None, crs: CRS, *, source: str) -> dict[str, Any]:
    """Union of the polygons of each date, in ``crs``."""
    if frame is None or len(frame) == 0:
        return {}
    keys = _dates(frame, source)
    geoms = frame.to_crs(crs).geometry
    return {d: geoms[(keys == d).to_numpy()].union_all() for d in pd.unique(keys)}


def _xy(geoms: gpd.GeoSeries) -> np.ndarray:
    if len(geoms) == 0:
        return np.empty((0, 2))
    c = geoms.centroid
    return np.column_stack([c.x.to_numpy(), c.y.to_numpy()])


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else math.nan


# ----------------------------------------------------------------------------- evaluate


def evaluate(
    detections: gpd.GeoDataFrame,
    counts: pd.DataFrame,
    truth: gpd.GeoDataFrame,
    *,
    truth_counts: pd.DataFrame | None = None,
    max_distance_m: float = 3.0,
    aoi: gpd.GeoDataFrame | None = None,
    observed: gpd.GeoDataFrame | None = None,
) -> EvaluationResult:
    """Score detections and counts against labelled vehicles.

    Parameters
    ----------
    detections : geopandas.GeoDataFrame
        Counted vehicles (the ``railcars`` layer): geometry, ``date`` or ``datetime``,
        optional ``type``; if a ``counted`` column exists only its true rows are used.
    counts : pandas.DataFrame
        ``counts.csv``: ``date`` (or ``datetime``), ``status``, ``railcars`` and, when
        available, ``railcars_low``, ``railcars_high``, ``gsd_m``.
    truth : geopandas.GeoDataFrame
        Labelled vehicles (polygons or points) in any CRS, with ``date`` or ``datetime``
        and optionally ``type``. Reprojected to the detections' CRS.
    truth_counts : pandas.DataFrame, optional
        Truth count of observed cars per date (``date``, ``railcars``, optional
        ``status``). When given it is the truth count of every acquisition; otherwise the
        truth count is the number of truth vehicles of the date.
    max_distance_m : float, default 3.0
        Largest centroid distance of a detection-truth match (inclusive).
    aoi : geopandas.GeoDataFrame, optional
        Area of interest; truth vehicles not mostly inside it are ignored, since the
        detector counts only vehicles mostly inside the AOI.
    observed : geopandas.GeoDataFrame, optional
        Per-date observed areas (polygons with ``date`` or ``datetime``). The truth of a
        ``partial`` acquisition is restricted to vehicles mostly inside its area.

    Returns
    -------
    EvaluationResult

    Raises
    ------
    ValueError
        A table lacks a required column or holds unparseable values, a CRS is missing,
        ``counts`` has two rows for one date, or ``max_distance_m`` is not positive.

    Notes
    -----
    Acquisitions are keyed by their UTC date. Only those with detector status ``ok`` or
    ``partial`` are scored. A ``partial`` acquisition without a known observed area is
    matched against every truth vehicle of its date; with truth counts its misses are
    then the truth count minus the matches, without them its recall is understated and a
    warning is logged.
    """
    if not (np.isfinite(max_distance_m) and max_distance_m > 0):
        raise ValueError(f"max_distance_m must be a positive number, got {max_distance_m!r}")

    crs = _metric_crs(detections, truth)
    dets = detections
    if "counted" in dets.columns:
        dets = dets[dets["counted"].fillna(False).astype(bool).to_numpy()]
    dets, truth_m = dets.to_crs(crs), truth.to_crs(crs)
    det_dates, truth_dates = _dates(dets, "detections"), _dates(truth_m, "truth")
    table = _counts_table(counts, source="counts", required=("status", "railcars"))
    tcounts = (
        None
        if truth_counts is None
        else _counts_table(truth_counts, source="truth_counts", required=("railcars",)).set_index(
            "date"
        )
    )
    if aoi is not None and len(aoi):
        keep = _in_area(truth_m.geometry, aoi.to_crs(crs).geometry.union_all())
        if not keep.all():
            logger.info("%d truth vehicle(s) not mostly inside the AOI ignored", (~keep).sum())
        truth_m, truth_dates = truth_m[keep], truth_dates[keep]
    observed_by_date = _areas_by_date(observed, crs, source="observed")

    for what, dates in (("detections", det_dates), ("truth vehicles", truth_dates)):
        extra = sorted(set(dates) - set(table["date"]))
        if extra:
            logger.warning(
                "%s on %d date(s) absent from counts.csv ignored (first: %s)",
                what,
                len(extra),
                extra[0],
            )

    rows: list[dict[str, Any]] = []
    typed_pairs: list[tuple[str, str]] = []
    for acq in table.to_dict("records"):
        row, pairs = _score_acquisition(
            acq,
            dets[(det_dates == acq["date"]).to_numpy()],
            truth_m[(truth_dates == acq["date"]).to_numpy()],
            truth_counts=tcounts,
            observed_area=observed_by_date.get(acq["date"]),
            max_distance_m=max_distance_m,
        )
        rows.append(row)
        typed_pairs += pairs

    per_acq = _typed_rows(rows)
    summary = _summary(per_acq)
    confusion = _confusion(typed_pairs)
    n_typed = int(confusion.to_numpy().sum())
    type_accuracy = _ratio(float(np.trace(confusion.to_numpy())), n_typed)

    n_false = n_withheld = None
    status_confusion = pd.DataFrame()
    if tcounts is not None and tcounts["status"].notna().any():
        tstatus, reported = per_acq["truth_status"], per_acq["railcars"].notna()
        n_false = int((tstatus.isin(UNOBSERVABLE_STATUSES) & reported).sum())
        n_withheld = int((tstatus.isin(SCORED_STATUSES) & ~reported).sum())
        status_confusion = pd.crosstab(
            tstatus.fillna("(none)").rename("truth_status"), per_acq["status"]
        )
        if n_false:
            logger.warning("%d acquisition(s) report a number where nothing was visible", n_false)

    return EvaluationResult(
        per_acquisition=per_acq,
        type_confusion=confusion,
        type_accuracy=type_accuracy,
        by_gsd=_by_gsd(per_acq),
        by_status=_by_status(per_acq),
        status_confusion=status_confusion,
        n_false_numbers=n_false,
        n_withheld=n_withheld,
        max_distance_m=float(max_distance_m),
        **{k: summary[k] for k in ("tp", "fp", "fn", "precision", "recall", "f1")},
        **{k: summary[k] for k in ("mae", "mape", "interval_coverage")},
    )


def _score_acquisition(
    acq: dict[str, Any],
    dets: gpd.GeoDataFrame,
    truth: gpd.GeoDataFrame,
    *,
    truth_counts: pd.DataFrame | None,
    observed_area: Any,
    max_distance_m: float,
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """One per-acquisition row and its matched (truth type, detected type) pairs."""
    date, status = acq["date"], acq["status"]
    row: dict[str, Any] = dict.fromkeys(ACQUISITION_COLUMNS)
    row.update({k: acq[k] for k in ("date", "status", "gsd_m", "railcars")})
    row.update({k: acq[k] for k in ("railcars_low", "railcars_high")})

    truth_n: float = math.nan
    if truth_counts is not None and date in truth_counts.index:
        truth_n = truth_counts.at[date, "railcars"]
        row["truth_status"] = truth_counts.at[date, "status"]
    scope = "all"
    if status == "partial" and observed_area is not None:
        # A partial count covers the observed area only: so does its truth.
        truth = truth[_in_area(truth.geometry, observed_area)]
        truth_n = len(truth)
        scope = "observed"
    elif status == "partial" and not pd.isna(truth_n):
        scope = "counts"
    elif status == "partial":
        logger.warning("%s is partial but its observed area is unknown: recall understated", date)
    if truth_counts is None:
        truth_n = len(truth)
    row["truth"] = truth_n
    if status not in SCORED_STATUSES:
        return row, []

    pairs = match_detections(_xy(dets.geometry), _xy(truth.geometry), max_distance_m=max_distance_m)
    tp = len(pairs)
    fp = len(dets) - tp
    fn = max(int(truth_n) - tp, 0) if scope == "counts" else len(truth) - tp
    row.update(
        tp=tp,
        fp=fp,
        fn=fn,
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
        truth_scope=scope,
    )
    railcars = acq["railcars"]
    if not (pd.isna(truth_n) or pd.isna(railcars)):
        row["error"] = railcars - truth_n
        row["abs_error"] = abs(railcars - truth_n)
        low, high = acq["railcars_low"], acq["railcars_high"]
        if not (pd.isna(low) or pd.isna(high)):
            row["in_interval"] = bool(low <= truth_n <= high)

    typed: list[tuple[str, str]] = []
    if "type" in dets.columns and "type" in truth.columns:
        det_type, truth_type = dets["type"].to_numpy(), truth["type"].to_numpy()
        typed = [
            (str(truth_type[j]), str(det_type[i]))
            for i, j in pairs
            if not (pd.isna(truth_type[j]) or pd.isna(det_type[i]))
        ]
    return row, typed


def _typed_rows(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Per-acquisition rows; whole-number columns stay integer next to blanks."""
    frame = pd.DataFrame(rows, columns=list(ACQUISITION_COLUMNS))
    for col in ("truth", "railcars", "railcars_low", "railcars_high", "error", "abs_error"):
        values = pd.to_numeric(frame[col], errors="coerce").astype(float)
        whole = values.dropna()
        frame[col] = values.round().astype("Int64") if (whole == whole.round()).all() else values
    for col in ("tp", "fp", "fn"):
        frame[col] = pd.to_numeric(frame[col]).astype("Int64")
    for col in ("gsd_m", "precision", "recall", "f1"):
        frame[col] = pd.to_numeric(frame[col]).astype(float)
    frame["in_interval"] = frame["in_interval"].astype("boolean")
    return frame


def _summary(rows: pd.DataFrame) -> dict[str, Any]:
    """Summary figures of per-acquisition rows, micro-averaged over the scored ones."""
    scored = rows[rows["status"].isin(SCORED_STATUSES)]
    tp, fp, fn = (int(scored[c].sum()) for c in ("tp", "fp", "fn"))
    abs_error = scored["abs_error"].astype(float)
    truth = scored["truth"].astype(float)
    positive = abs_error.notna() & (truth > 0)
    inside = scored["in_interval"].dropna().astype(bool)
    return {
        "n_acquisitions": len(rows),
        "n_scored": len(scored),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "mae": float(abs_error.mean()) if abs_error.notna().any() else math.nan,
        "mape": float((abs_error / truth)[positive].mean()) if positive.any() else math.nan,
        "interval_coverage": float(inside.mean()) if len(inside) else math.nan,
    }


def _confusion(pairs: list[tuple[str, str]]) -> pd.DataFrame:
    """Matched pairs counted by truth type (rows) and detected type (columns)."""
    if not pairs:
        return pd.DataFrame(dtype=int)
    seen = {t for pair in pairs for t in pair}
    labels = [t for t in VEHICLE_TYPES if t in seen] + sorted(seen - set(VEHICLE_TYPES))
    frame = pd.DataFrame(pairs, columns=["truth_type", "detected_type"])
    table = pd.crosstab(frame["truth_type"], frame["detected_type"])
    return table.reindex(index=labels, columns=labels, fill_value=0).astype(int)


def _by_gsd(per_acq: pd.DataFrame) -> pd.DataFrame:
    scored = per_acq[per_acq["status"].isin(SCORED_STATUSES)]
    keys = scored["gsd_m"].round(1)
    out = [
        {"gsd_m": key, **_summary(scored[keys.isna() if pd.isna(key) else keys == key])}
        for key in sorted(pd.unique(keys), key=lambda k: (pd.isna(k), k))
    ]
    return pd.DataFrame(out, columns=["gsd_m", *SUMMARY_COLUMNS])


def _by_status(per_acq: pd.DataFrame) -> pd.DataFrame:
    out = [
        {"status": status, **_summary(per_acq[per_acq["status"] == status])}
        for status in STATUSES
        if (per_acq["status"] == status).any()
    ]
    return pd.DataFrame(out, columns=["status", *SUMMARY_COLUMNS])


# ----------------------------------------------------------------------------- I/O edge


def evaluate_dir(
    out_dir: str | Path,
    truth_path: str | Path,
    *,
    truth_counts_path: str | Path | None = None,
    max_distance_m: float = 3.0,
) -> EvaluationResult:
    """Read a ``railwatch count`` results directory and a truth file, and evaluate.

    Parameters
    ----------
    out_dir : str or Path
        Results directory holding ``counts.csv`` and ``railcars.gpkg`` (layer
        ``railcars``; layers ``aoi`` and, when it has dates, ``footprints`` are used as
        the AOI and the observed areas).
    truth_path : str or Path
        Labelled vehicles, any vector format OGR reads, any CRS, with ``date`` or
        ``datetime``.
    truth_counts_path : str or Path, optional
        CSV of truth counts per date (``date``, ``railcars``, optional ``status``).
    max_distance_m : float, default 3.0
        Largest centroid distance of a match.

    Returns
    -------
    EvaluationResult

    Raises
    ------
    VectorReadError
        ``railcars.gpkg`` or the truth file is missing, unreadable or malformed.
    SiteConfigError
        ``counts.csv`` or the truth counts CSV is missing, unreadable or malformed.
    """
    import geopandas as gpd

    from railwatch.site import read_vector

    out = Path(out_dir)
    if not out.is_dir():
        raise SiteConfigError(out, None, "results directory not found")
    gpkg, counts_path = out / "railcars.gpkg", out / "counts.csv"
    counts = _read_csv(counts_path)
    layers = _layers(gpkg)
    if "railcars" not in layers:
        raise VectorReadError(gpkg, "no layer 'railcars'")
    detections = _read_layer(gpkg, "railcars")
    aoi = _read_layer(gpkg, "aoi") if "aoi" in layers else None
    footprints = _read_layer(gpkg, "footprints") if "footprints" in layers else None
    if footprints is not None and not {"date", "datetime"} & set(footprints.columns):
        logger.info("%s: layer 'footprints' has no dates; observed areas unknown", gpkg)
        footprints = None
    geoms, props, crs = read_vector(truth_path)
    truth = gpd.GeoDataFrame(pd.DataFrame(props), geometry=geoms, crs=crs)
    truth_counts = None if truth_counts_path is None else _read_csv(Path(truth_counts_path))

    try:
        return evaluate(
            detections,
            counts,
            truth,
            truth_counts=truth_counts,
            max_distance_m=max_distance_m,
            aoi=aoi,
            observed=footprints,
        )
    except _InputError as exc:
        if exc.source in ("counts", "truth_counts"):
            path = counts_path if exc.source == "counts" else truth_counts_path
            raise SiteConfigError(path, None, exc.problem) from None
        if exc.source == "truth":
            raise VectorReadError(truth_path, exc.problem) from None
        layer = {"detections": "railcars", "observed": "footprints"}.get(exc.source, exc.source)
        raise VectorReadError(gpkg, f"layer '{layer}': {exc.problem}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise SiteConfigError(path, None, "file not found")
    try:
        return pd.read_csv(path, dtype={"date": str, "datetime": str, "status": str})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise SiteConfigError(path, None, f"not a readable CSV ({_first_line(exc)})") from None


def _layers(gpkg: Path) -> set[str]:
    import pyogrio

    if not gpkg.is_file():
        raise VectorReadError(gpkg, "file not found")
    try:
        return {str(name) for name in pyogrio.list_layers(gpkg)[:, 0]}
    except Exception as exc:  # GDAL raises several types for corrupt files
        raise VectorReadError(gpkg, f"not a readable GeoPackage ({_first_line(exc)})") from None


def _read_layer(gpkg: Path, layer: str) -> gpd.GeoDataFrame:
    import geopandas as gpd

    try:
        frame = gpd.read_file(gpkg, layer=layer, engine="pyogrio")
    except Exception as exc:  # GDAL raises several types for corrupt files
        raise VectorReadError(gpkg, f"layer '{layer}': {_first_line(exc)}") from None
    return frame[frame.geometry.notna() & ~frame.geometry.is_empty]

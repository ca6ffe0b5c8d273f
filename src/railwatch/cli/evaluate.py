"""``railwatch evaluate``: score a results directory against labelled vehicles."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click
import pandas as pd

from railwatch.evaluate import EvaluationResult, evaluate_dir
from railwatch.outputs import write_csv

EVALUATION_CSV = "evaluation.csv"


@click.command(name="evaluate")
@click.argument("out_dir", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--truth",
    "truth_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Labelled vehicles (points or polygons with date/datetime), any vector format, any CRS.",
)
@click.option(
    "--truth-counts",
    "truth_counts_path",
    type=click.Path(path_type=Path),
    help="CSV of truth counts per date (date, railcars, optional status).",
)
@click.option(
    "--match-distance",
    "max_distance_m",
    type=click.FloatRange(min=0.0, min_open=True),
    default=3.0,
    show_default=True,
    help="Largest centroid distance (m) between a detection and its truth vehicle.",
)
def command(
    out_dir: Path, truth_path: Path, truth_counts_path: Path | None, max_distance_m: float
) -> None:
    """Precision/recall/F1 and count errors of DIR against labelled vehicles.

    Writes DIR/evaluation.csv (one row per acquisition) and prints the tables.
    """
    result = evaluate_dir(
        out_dir,
        truth_path,
        truth_counts_path=truth_counts_path,
        max_distance_m=max_distance_m,
    )
    target = write_csv(out_dir / EVALUATION_CSV, result.per_acquisition.round(4))
    click.echo(format_result(result))
    click.echo(f"Wrote {target}", err=True)


# ----------------------------------------------------------------------------- formatting


def _num(value: Any, digits: int = 3) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.1f} %"


def _table(frame: pd.DataFrame, **digits: int) -> str:
    """Fixed-width text table; floats to 3 decimals unless ``digits`` says otherwise."""
    if frame.empty:
        return "  (none)"
    cells = pd.DataFrame(
        {
            col: [_num(v, digits.get(col, 1 if col.endswith("_%") else 3)) for v in frame[col]]
            for col in frame.columns
        }
    )
    return cells.to_string(index=False)


def _as_percent(summary: pd.DataFrame) -> pd.DataFrame:
    """Summary table with MAPE and interval coverage in percent, as in the overall lines."""
    return summary.assign(
        mape=summary["mape"] * 100, interval_coverage=summary["interval_coverage"] * 100
    ).rename(columns={"mape": "mape_%", "interval_coverage": "in_interval_%"})


def format_result(result: EvaluationResult) -> str:
    """The evaluation as plain-text tables, for stdout."""
    per = result.per_acquisition
    shown = per.drop(columns=["truth_status", "truth_scope"])
    if per["truth_status"].notna().any():
        shown = shown.assign(truth_status=per["truth_status"])
    not_scored = result.not_scored["status"].value_counts()
    lines = [
        f"Per acquisition (match distance {result.max_distance_m:g} m)",
        _table(shown, gsd_m=2),
        "",
        f"Overall: {result.n_scored} of {result.n_acquisitions} acquisitions scored"
        + (
            "; not scored: " + ", ".join(f"{n} {s}" for s, n in not_scored.items())
            if len(not_scored)
            else ""
        ),
        f"  TP {result.tp}  FP {result.fp}  FN {result.fn}  "
        f"precision {_num(result.precision)}  recall {_num(result.recall)}  F1 {_num(result.f1)}",
        f"  count MAE {_num(result.mae, 2)} cars  MAPE {_pct(result.mape)}  "
        f"truth within [low, high] {_pct(result.interval_coverage)}",
        f"  type accuracy {_num(result.type_accuracy)} "
        f"({int(result.type_confusion.to_numpy().sum())} typed matches)",
    ]
    if result.n_false_numbers is None:
        lines.append("  false numbers: - (no truth status; pass --truth-counts with a status)")
    else:
        lines.append(
            f"  false numbers (count reported where truth is obscured/no_coverage): "
            f"{result.n_false_numbers}; counts withheld where truth was observable: "
            f"{result.n_withheld}"
        )
    lines += ["", "By GSD (m, scored acquisitions)", _table(_as_percent(result.by_gsd), gsd_m=1)]
    lines += ["", "By status", _table(_as_percent(result.by_status))]
    if not result.type_confusion.empty:
        lines += ["", "Type confusion (rows: truth, columns: detected)"]
        lines.append(result.type_confusion.to_string())
    if not result.status_confusion.empty:
        lines += ["", "Status (rows: truth, columns: detector)"]
        lines.append(result.status_confusion.to_string())
    return "\n".join(lines)

"""Per-acquisition and weekly tables: dtypes, order, gaps, observable rows only."""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import pytest

from railwatch import outputs
from railwatch.site import BaselineConfig
from railwatch.timeseries import (
    COUNTS_COLUMNS,
    WEEKLY_COLUMNS,
    counts_table,
    read_counts,
    read_weekly,
    weekly_table,
)

TYPES = ("tank", "open", "flat", "covered", "locomotive", "unknown")
NONE = BaselineConfig()


def rec(day, n, status="ok", *, low=None, high=None, hour=3):
    t = dt.datetime(*day, hour, 0, 0, tzinfo=dt.UTC)
    observable = status in ("ok", "partial")
    r = {
        "date": t.date(),
        "datetime": t,
        "railcars": n if observable else None,
        "railcars_low": (n - 1 if low is None else low) if observable else None,
        "railcars_high": (n + 1 if high is None else high) if observable else None,
        "status": status,
        "coverage": 1.0 if status == "ok" else 0.5,
        "cloud": 0.0,
        "gsd_m": 0.5,
        "shift_m": 0.0,
        "n_tiles": 1,
        "scenes": f"{t:%Y%m%d}.tif",
    }
    for k in TYPES:
        r[k] = (n if k == "open" else 0) if observable else None
    return r


def test_columns_follow_design_order():
    assert COUNTS_COLUMNS == (
        "date", "datetime", "railcars", "railcars_low", "railcars_high", "status",
        "coverage", "cloud", "gsd_m", "shift_m", "n_tiles", "tank", "open", "flat",
        "covered", "locomotive", "unknown", "baseline", "excess", "ratio", "anomaly",
        "scenes",
    )  # fmt: skip
    assert WEEKLY_COLUMNS == (
        "week_start", "n_scenes", "railcars_mean", "railcars_max", "baseline", "excess",
        "anomaly",
    )  # fmt: skip


def test_counts_sorted_typed_and_missing_is_empty_not_zero(tmp_path):
    records = [rec((2023, 3, 5), 7), rec((2023, 3, 1), None, "obscured"), rec((2023, 3, 3), 0)]
    c = counts_table(records, NONE)
    assert list(c.columns) == list(COUNTS_COLUMNS)
    assert [d.day for d in c["date"]] == [1, 3, 5]
    assert str(c["railcars"].dtype) == "Int64" and str(c["anomaly"].dtype) == "boolean"
    assert c["railcars"].isna().tolist() == [True, False, False]
    assert c.loc[1, "railcars"] == 0  # a real zero stays zero
    assert c.loc[0, ["tank", "open", "railcars_low"]].isna().all()
    outputs.write_csv(tmp_path / "counts.csv", c)
    lines = (tmp_path / "counts.csv").read_text().splitlines()
    assert lines[0] == ",".join(COUNTS_COLUMNS)
    obscured = dict(zip(COUNTS_COLUMNS, lines[1].split(","), strict=True))
    assert obscured["date"] == "2023-03-01"
    assert obscured["datetime"] == "2023-03-01T03:00:00Z"
    assert obscured["railcars"] == "" and obscured["open"] == "" and obscured["anomaly"] == ""
    back = read_counts(tmp_path / "counts.csv")
    pd.testing.assert_frame_equal(back, c)


def test_number_on_obscured_row_is_dropped_with_warning(caplog):
    r = rec((2023, 3, 1), 5)
    r["status"] = "obscured"
    with caplog.at_level(logging.WARNING, logger="railwatch.timeseries"):
        c = counts_table([r], NONE)
    assert c["railcars"].isna().all() and c["tank"].isna().all()
    assert "obscured but carries" in caplog.text


def test_bad_status_or_missing_datetime_raise():
    r = rec((2023, 3, 1), 5)
    with pytest.raises(ValueError, match="unknown status"):
        counts_table([{**r, "status": "cloudy"}], NONE)
    with pytest.raises(ValueError, match="no datetime"):
        counts_table([{**r, "datetime": None}], NONE)


def test_date_defaults_to_utc_date_of_datetime():
    r = rec((2023, 3, 1), 5)
    r.pop("date")
    r["datetime"] = dt.datetime(2023, 3, 2, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    c = counts_table([r], NONE)
    assert c.loc[0, "date"] == pd.Timestamp("2023-03-01")


def test_weekly_continuity_and_values(tmp_path):
    records = [
        rec((2023, 1, 2), 10),  # Mon, week 2023-01-02
        rec((2023, 1, 4), 14),
        rec((2023, 1, 5), None, "obscured"),  # counted in n_scenes only
        rec((2023, 1, 18), 30, "partial"),  # week 2023-01-16: only a partial count
        rec((2023, 1, 31), 20),  # week 2023-01-30: ok ...
        rec((2023, 2, 1), 5, "partial"),  # ... so this partial one is not averaged
        rec((2023, 2, 8), None, "no_coverage"),  # week 2023-02-06: nothing observable
    ]
    w = weekly_table(counts_table(records, NONE), NONE)
    assert list(w.columns) == list(WEEKLY_COLUMNS)
    assert [d.strftime("%Y-%m-%d") for d in w["week_start"]] == [
        "2023-01-02", "2023-01-09", "2023-01-16", "2023-01-23", "2023-01-30", "2023-02-06",
    ]  # fmt: skip
    assert all(d.weekday() == 0 for d in w["week_start"])
    assert w["n_scenes"].tolist() == [3, 0, 1, 0, 2, 1]
    assert w["railcars_mean"].tolist()[0] == 12.0
    assert w["railcars_mean"].isna().tolist() == [False, True, False, True, False, True]
    assert w.loc[2, "railcars_mean"] == 30.0 and w.loc[4, "railcars_mean"] == 20.0
    assert w["railcars_max"].tolist()[0] == 14 and w.loc[4, "railcars_max"] == 20
    assert w["baseline"].isna().all() and w["anomaly"].isna().all()
    outputs.write_csv(tmp_path / "weekly.csv", w)
    text = (tmp_path / "weekly.csv").read_text().splitlines()
    assert text[2] == "2023-01-09,0,,,,,"
    pd.testing.assert_frame_equal(read_weekly(tmp_path / "weekly.csv"), w)


def test_weekly_baseline_excess_and_anomaly_any():
    cfg = BaselineConfig(model="constant", value=10.0, factor=1.0)
    records = [
        rec((2023, 1, 2), 8, low=7),
        rec((2023, 1, 3), 14, low=12),  # anomaly
        rec((2023, 1, 10), 11, low=10),  # low == baseline: not an anomaly
        rec((2023, 1, 24), None, "obscured"),
    ]
    w = weekly_table(counts_table(records, cfg), cfg)
    assert w["baseline"].tolist() == [10.0, 10.0, 10.0, 10.0]
    assert w.loc[0, "excess"] == 1.0 and w.loc[1, "excess"] == 1.0
    assert w["excess"].isna().tolist() == [False, False, True, True]
    assert bool(w.loc[0, "anomaly"]) is True
    assert bool(w.loc[1, "anomaly"]) is False
    assert w["anomaly"].isna().tolist() == [False, False, True, True]


def test_week_of_a_sunday_starts_the_monday_before_across_new_year():
    w = weekly_table(counts_table([rec((2023, 1, 1), 3), rec((2023, 1, 2), 4)], NONE), NONE)
    assert [d.strftime("%Y-%m-%d") for d in w["week_start"]] == ["2022-12-26", "2023-01-02"]


def test_empty_inputs_give_empty_tables():
    c = counts_table([], NONE)
    assert list(c.columns) == list(COUNTS_COLUMNS) and len(c) == 0
    assert str(c["railcars"].dtype) == "Int64"
    w = weekly_table(c, NONE)
    assert list(w.columns) == list(WEEKLY_COLUMNS) and len(w) == 0

"""Baseline models on hand-computed numbers, and the anomaly rule's edge cases."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from railwatch.baseline import anomaly_flags, apply_baseline, baseline_value, demand_vehicles
from railwatch.site import BaselineConfig
from railwatch.timeseries import counts_table
from test_timeseries import rec


def _ref_counts():
    # ok counts in the reference period: 10, 12, 14, 16, 30.
    records = [rec((2022, 1, d), n) for d, n in ((3, 10), (10, 12), (17, 14), (24, 16), (31, 30))]
    records += [
        rec((2022, 1, 5), 100, "partial"),  # partial: not in the reference
        rec((2022, 1, 6), None, "obscured"),
        rec((2022, 3, 1), 500),  # after reference_end
        rec((2021, 12, 31), 400),  # before reference_start
    ]
    return counts_table(records, BaselineConfig())


def _ref(stat, **kw):
    return BaselineConfig(
        model="reference",
        reference_start=dt.date(2022, 1, 1),
        reference_end=dt.date(2022, 1, 31),
        statistic=stat,
        **kw,
    )


def test_none_model_leaves_columns_empty():
    b = baseline_value(BaselineConfig(), _ref_counts())
    assert b.value is None and b.threshold is None
    out = apply_baseline(_ref_counts(), BaselineConfig())
    for col in ("baseline", "excess", "ratio", "anomaly"):
        assert out[col].isna().all()


def test_constant_model_excess_ratio_threshold():
    cfg = BaselineConfig(model="constant", value=20.0, factor=1.5)
    b = baseline_value(cfg)
    assert (b.value, b.threshold) == (20.0, 30.0)
    c = counts_table([rec((2023, 1, 2), 25, low=30), rec((2023, 1, 3), 33, low=31)], cfg)
    assert c["baseline"].tolist() == [20.0, 20.0]
    assert c["excess"].tolist() == [5.0, 13.0]
    assert c["ratio"].tolist() == [1.25, 1.65]
    assert c["anomaly"].tolist() == [False, True]  # low 30 == 1.5 * 20: not above


def test_reference_mean():
    b = baseline_value(_ref("mean", factor=2.0), _ref_counts())
    assert b.value == pytest.approx(16.4)  # (10 + 12 + 14 + 16 + 30) / 5
    assert b.threshold == pytest.approx(32.8)
    assert b.inputs["n_reference"] == 5


def test_reference_p90():
    b = baseline_value(_ref("p90"), _ref_counts())
    # sorted 10 12 14 16 30; rank 0.9 * 4 = 3.6 -> 16 + 0.6 * (30 - 16) = 24.4
    assert b.value == pytest.approx(24.4)
    assert b.threshold == pytest.approx(24.4)


def test_reference_robust_z():
    b = baseline_value(_ref("robust_z", z_threshold=3.5), _ref_counts())
    # median 14; |x - 14| = 4 2 0 2 16 -> MAD 2; scale 1.4826 * 2 = 2.9652
    assert b.value == 14.0
    assert b.inputs["mad"] == 2.0
    assert b.threshold == pytest.approx(14 + 3.5 * 2.9652)
    c = apply_baseline(_ref_counts(), _ref("robust_z", z_threshold=3.5))
    row = c[c["railcars"] == 30].iloc[0]
    assert bool(row["anomaly"]) is True  # low 29 > 24.38
    row = c[c["railcars"] == 16].iloc[0]
    assert bool(row["anomaly"]) is False


def test_robust_z_spread_never_below_one_vehicle():
    c = counts_table([rec((2022, 1, d), 5) for d in (3, 4, 5)], BaselineConfig())
    cfg = BaselineConfig(
        model="reference",
        reference_start=dt.date(2022, 1, 1),
        reference_end=dt.date(2022, 1, 31),
        statistic="robust_z",
        z_threshold=3.5,
    )
    b = baseline_value(cfg, c)
    assert b.inputs["mad"] == 0.0 and b.inputs["scale"] == 1.0
    assert b.threshold == 8.5


def test_reference_without_complete_rows_has_no_value():
    c = counts_table([rec((2022, 1, 3), 9, "partial"), rec((2022, 1, 4), None, "obscured")],
                     BaselineConfig())  # fmt: skip
    b = baseline_value(_ref("mean"), c)
    assert b.value is None and "no complete (ok) acquisition" in b.note
    assert apply_baseline(c, _ref("mean"))["anomaly"].isna().all()


def test_demand_formula_hand_computed():
    # 146,000 inhabitants * 1.5 t / 60 t = 3,650 wagonloads a year; * 2 / 365 days = 20.
    assert demand_vehicles(
        [("A", 100_000.0), ("B", 46_000.0)],
        freight_t_per_capita_year=1.5,
        wagon_payload_t=60.0,
        dwell_days=2.0,
    ) == pytest.approx(20.0)
    cfg = BaselineConfig(
        model="demand",
        towns=(("Tumangang", 3000.0), ("Khasan", 492.0)),
        freight_t_per_capita_year=2.0,
        wagon_payload_t=60.0,
        dwell_days=2.0,
        factor=3.0,
    )
    b = baseline_value(cfg)
    assert b.value == pytest.approx(3492 * 2.0 / 60.0 * 2.0 / 365.0)
    assert b.threshold == pytest.approx(3 * b.value)
    assert b.inputs["population"] == 3492.0
    assert "Tumangang 3,000 + Khasan 492" in b.formula
    with pytest.raises(ValueError):
        demand_vehicles([("A", 1.0)], freight_t_per_capita_year=1, wagon_payload_t=0, dwell_days=1)


def test_anomaly_edge_cases():
    flags = anomaly_flags(pd.Series([20, 21, None, 0], dtype="Int64"), 20.0)
    assert flags.tolist()[:2] == [False, True]
    assert flags.isna().tolist() == [False, False, True, False]
    assert anomaly_flags([5, 6], None).isna().all()


def test_missing_low_bound_falls_back_to_count_and_missing_count_stays_empty():
    cfg = BaselineConfig(model="constant", value=10.0)
    r = rec((2023, 1, 2), 11)
    r["railcars_low"] = None
    c = counts_table([r, rec((2023, 1, 3), None, "no_coverage")], cfg)
    assert bool(c["anomaly"].iloc[0]) is True
    assert pd.isna(c["anomaly"].iloc[1]) and pd.isna(c["excess"].iloc[1])
    assert pd.isna(c["ratio"].iloc[1])


def test_zero_baseline_has_no_ratio_but_flags_any_vehicle():
    cfg = BaselineConfig(model="constant", value=0.0)
    c = counts_table([rec((2023, 1, 2), 0, low=0), rec((2023, 1, 3), 2, low=1)], cfg)
    assert c["ratio"].isna().all()
    assert c["anomaly"].tolist() == [False, True]


def test_unknown_model_or_statistic():
    with pytest.raises(ValueError, match="unknown baseline model"):
        baseline_value(BaselineConfig(model="magic"))
    with pytest.raises(ValueError, match="unknown reference statistic"):
        baseline_value(_ref("median"), _ref_counts())

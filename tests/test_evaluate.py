import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from railwatch.errors import SiteConfigError, VectorReadError
from railwatch.evaluate import (
    ACQUISITION_COLUMNS,
    EvaluationResult,
    evaluate,
    evaluate_dir,
    match_detections,
)

UTM = "EPSG:32652"
X0, Y0 = 500_000.0, 4_700_000.0  # near the Tumangang yard in UTM 52N


def car(x: float, y: float = 0.0, length_m: float = 14.0) -> box:
    """A 14 m x 3.2 m car body centred at (X0 + x, Y0 + y)."""
    cx, cy = X0 + x, Y0 + y
    return box(cx - length_m / 2, cy - 1.6, cx + length_m / 2, cy + 1.6)


def gdf(rows: list[tuple[str, float, float, str]], crs: str = UTM) -> gpd.GeoDataFrame:
    dates, xs, ys, types = zip(*rows, strict=True) if rows else ((), (), (), ())
    return gpd.GeoDataFrame(
        {"date": list(dates), "type": list(types)},
        geometry=[car(x, y) for x, y in zip(xs, ys, strict=True)],
        crs=UTM,
    ).to_crs(crs)


def counts_frame(rows: list[dict]) -> pd.DataFrame:
    base = {"railcars_low": None, "railcars_high": None, "gsd_m": 0.5}
    return pd.DataFrame([{**base, **r} for r in rows])


D1, D2, D3, D4 = "2023-10-05", "2023-10-12", "2023-10-19", "2023-10-26"


@pytest.fixture
def case() -> tuple[gpd.GeoDataFrame, pd.DataFrame, gpd.GeoDataFrame]:
    """Four acquisitions: two ok ones at 0.5 m and 0.3 m, one partial, one obscured."""
    truth = gdf(
        [
            (D1, 0.0, 0.0, "tank"),
            (D1, 20.0, 0.0, "open"),
            (D1, 40.0, 0.0, "tank"),
            (D1, 60.0, 0.0, "covered"),
            (D2, 0.0, 0.0, "open"),
            (D2, 20.0, 0.0, "open"),
            (D3, 0.0, 0.0, "tank"),
            (D4, 0.0, 0.0, "tank"),
        ],
        crs="EPSG:4326",  # reprojected by evaluate()
    )
    dets = gdf(
        [
            (D1, 2.9, 0.0, "tank"),  # 2.9 m from truth 0: match
            (D1, 23.1, 0.0, "open"),  # 3.1 m from truth 1: no match
            (D1, 40.0, 0.4, "open"),  # two near truth 2: one TP ...
            (D1, 41.0, 0.0, "tank"),  # ... and one FP
            (D2, 0.2, 0.0, "open"),
            (D2, 20.0, 0.3, "tank"),
            (D2, 80.0, 0.0, "open"),  # nothing there
            (D3, 0.0, 0.0, "tank"),
        ]
    )
    counts = counts_frame(
        [
            {"date": D1, "status": "ok", "railcars": 4, "railcars_low": 3, "railcars_high": 5},
            {
                "date": D2,
                "status": "ok",
                "railcars": 3,
                "railcars_low": 3,
                "railcars_high": 4,
                "gsd_m": 0.31,
            },
            {
                "date": D3,
                "status": "partial",
                "railcars": 1,
                "railcars_low": 1,
                "railcars_high": 2,
                "gsd_m": 1.02,
            },
            {"date": D4, "status": "obscured", "railcars": None, "gsd_m": 0.5},
        ]
    )
    return dets, counts, truth


# ----------------------------------------------------------------------------- matching


def test_match_threshold_is_inclusive_and_one_to_one():
    det = np.array([[2.9, 0.0], [23.1, 0.0], [40.0, 0.4], [41.0, 0.0]])
    truth = np.array([[0.0, 0.0], [20.0, 0.0], [40.0, 0.0]])
    assert match_detections(det, truth, max_distance_m=3.0) == [(0, 0), (2, 2)]
    assert match_detections(det, truth, max_distance_m=3.1 + 1e-9) == [(0, 0), (1, 1), (2, 2)]
    assert match_detections(np.array([[3.0, 0.0]]), np.zeros((1, 2)), max_distance_m=3.0) == [
        (0, 0)
    ]


def test_match_maximises_pairs_before_distance():
    # Greedy nearest-first would pair det 0 with truth 1 (0.5 m) and leave truth 0 alone.
    det = np.array([[1.0, 0.0], [3.5, 0.0]])
    truth = np.array([[-1.0, 0.0], [1.5, 0.0]])
    assert match_detections(det, truth, max_distance_m=2.5) == [(0, 0), (1, 1)]


def test_match_empty_and_bad_input():
    assert match_detections(np.empty((0, 2)), np.array([[0.0, 0.0]]), max_distance_m=3) == []
    assert match_detections(np.array([[0.0, 0.0]]), np.empty((0, 2)), max_distance_m=3) == []
    with pytest.raises(ValueError, match="shape"):
        match_detections(np.zeros((2, 3)), np.zeros((2, 2)), max_distance_m=3)
    with pytest.raises(ValueError, match="positive"):
        match_detections(np.zeros((1, 2)), np.zeros((1, 2)), max_distance_m=0)


# ----------------------------------------------------------------------------- evaluate


def test_detection_metrics_with_reprojected_truth(case):
    dets, counts, truth = case
    assert truth.crs.to_epsg() == 4326
    res = evaluate(dets, counts, truth)
    per = res.per_acquisition.set_index("date")
    assert list(res.per_acquisition.columns) == list(ACQUISITION_COLUMNS)
    assert per.loc[D1, ["tp", "fp", "fn"]].tolist() == [2, 2, 2]
    assert per.loc[D2, ["tp", "fp", "fn"]].tolist() == [2, 1, 0]
    assert per.loc[D3, ["tp", "fp", "fn"]].tolist() == [1, 0, 0]
    assert per.loc[D4, ["tp", "fp", "fn"]].isna().all()
    assert per.loc[D1, "precision"] == pytest.approx(0.5)
    assert per.loc[D1, "recall"] == pytest.approx(0.5)
    assert per.loc[D2, "f1"] == pytest.approx(2 * 2 / (2 * 2 + 1))
    assert (res.tp, res.fp, res.fn) == (5, 3, 2)
    assert res.precision == pytest.approx(5 / 8)
    assert res.recall == pytest.approx(5 / 7)
    assert res.f1 == pytest.approx(10 / 15)
    assert res.n_scored == 3 and res.n_acquisitions == 4
    assert res.not_scored["date"].tolist() == [D4]


def test_count_errors_and_interval(case):
    dets, counts, truth = case
    res = evaluate(dets, counts, truth)
    per = res.per_acquisition.set_index("date")
    # truth counts: 4, 2, 1 (D4 not scored); reported 4, 3, 1
    assert per["truth"].tolist() == [4, 2, 1, 1]
    assert per.loc[[D1, D2, D3], "error"].tolist() == [0, 1, 0]
    assert pd.isna(per.loc[D4, "error"])
    assert res.mae == pytest.approx(1 / 3)
    assert res.mape == pytest.approx((0 + 1 / 2 + 0) / 3)
    # D1 4 in [3, 5]; D2 2 not in [3, 4]; D3 1 in [1, 2]
    assert per.loc[[D1, D2, D3], "in_interval"].tolist() == [True, False, True]
    assert res.interval_coverage == pytest.approx(2 / 3)


def test_mape_skips_zero_truth():
    truth = gdf([(D1, 0.0, 0.0, "tank")])
    dets = gdf([(D1, 0.0, 0.0, "tank"), (D1, 30.0, 0.0, "tank"), (D2, 0.0, 0.0, "tank")])
    counts = counts_frame(
        [
            {"date": D1, "status": "ok", "railcars": 2},
            {"date": D2, "status": "ok", "railcars": 1},  # yard empty in truth
        ]
    )
    res = evaluate(dets, counts, truth)
    assert res.per_acquisition["truth"].tolist() == [1, 0]
    assert res.mae == pytest.approx(1.0)
    assert res.mape == pytest.approx(1.0)  # only D1: |2 - 1| / 1
    assert math.isnan(res.interval_coverage)  # no intervals reported


def test_breakdown_by_gsd_and_status(case):
    dets, counts, truth = case
    res = evaluate(dets, counts, truth)
    by_gsd = res.by_gsd.set_index("gsd_m")
    assert by_gsd.index.tolist() == [0.3, 0.5, 1.0]
    assert by_gsd.loc[0.5, ["tp", "fp", "fn"]].tolist() == [2, 2, 2]
    assert by_gsd.loc[0.3, "precision"] == pytest.approx(2 / 3)
    assert by_gsd.loc[0.3, "mae"] == pytest.approx(1.0)
    assert by_gsd.loc[1.0, "recall"] == pytest.approx(1.0)
    by_status = res.by_status.set_index("status")
    assert by_status.index.tolist() == ["ok", "partial", "obscured"]
    assert by_status.loc["ok", ["n_acquisitions", "tp", "fp", "fn"]].tolist() == [2, 4, 3, 2]
    assert by_status.loc["obscured", ["n_acquisitions", "n_scored"]].tolist() == [1, 0]


def test_type_confusion(case):
    dets, counts, truth = case
    res = evaluate(dets, counts, truth)
    conf = res.type_confusion
    # matched pairs (truth, detected): D1 tank/tank, tank/open; D2 open/open, open/tank;
    # D3 tank/tank
    assert conf.loc["tank", "tank"] == 2
    assert conf.loc["tank", "open"] == 1
    assert conf.loc["open", "open"] == 1
    assert conf.loc["open", "tank"] == 1
    assert int(conf.to_numpy().sum()) == 5
    assert res.type_accuracy == pytest.approx(3 / 5)


def test_truth_counts_and_false_numbers(case):
    dets, counts, truth = case
    counts.loc[counts["date"] == D4, ["status", "railcars"]] = ["ok", 0]
    truth_counts = pd.DataFrame(
        {
            "date": [D1, D2, D3, D4],
            "railcars": [4, 2, 1, None],
            "status": ["ok", "ok", "partial", "obscured"],
        }
    )
    res = evaluate(dets, counts, truth, truth_counts=truth_counts)
    per = res.per_acquisition.set_index("date")
    assert res.n_false_numbers == 1
    assert res.n_withheld == 0
    assert per.loc[D4, "truth_status"] == "obscured"
    assert pd.isna(per.loc[D4, "error"])  # no truth number to compare with
    assert per.loc[D3, "truth_scope"] == "counts"
    assert res.status_confusion.loc["obscured", "ok"] == 1
    assert res.to_record()["n_false_numbers"] == 1


def test_partial_restricted_to_observed_area():
    truth = gdf([(D1, 0.0, 0.0, "tank"), (D1, 20.0, 0.0, "tank"), (D1, 40.0, 0.0, "tank")])
    dets = gdf([(D1, 0.0, 0.0, "tank")])
    counts = counts_frame([{"date": D1, "status": "partial", "railcars": 1}])
    # the image covers x < 12 m: car 0 wholly, car 1 (x 13..27) not at all
    observed = gpd.GeoDataFrame(
        {"date": [D1]}, geometry=[box(X0 - 50, Y0 - 50, X0 + 12, Y0 + 50)], crs=UTM
    )
    res = evaluate(dets, counts, truth, observed=observed)
    row = res.per_acquisition.iloc[0]
    assert (row["tp"], row["fp"], row["fn"], row["truth"]) == (1, 0, 0, 1)
    assert row["truth_scope"] == "observed"
    unrestricted = evaluate(dets, counts, truth).per_acquisition.iloc[0]
    assert (unrestricted["fn"], unrestricted["truth"]) == (2, 3)
    # A truth count for the whole yard does not override the observed area: the partial
    # count is judged against the truth vehicles inside what it observed.
    whole = pd.DataFrame({"date": [D1], "railcars": [3], "status": ["ok"]})
    row = evaluate(dets, counts, truth, truth_counts=whole, observed=observed).per_acquisition
    assert (int(row.iloc[0]["truth"]), int(row.iloc[0]["error"])) == (1, 0)
    assert row.iloc[0]["truth_status"] == "ok"


def test_aoi_drops_truth_outside_and_points_accepted():
    truth = gpd.GeoDataFrame(
        {"datetime": ["2023-10-05T02:10:00Z", "2023-10-05T02:10:00Z"]},
        geometry=[Point(X0, Y0), Point(X0 + 500, Y0)],
        crs=UTM,
    ).to_crs("EPSG:4326")
    dets = gdf([(D1, 1.0, 0.0, "tank")])
    counts = counts_frame([{"date": D1, "status": "ok", "railcars": 1}])
    aoi = gpd.GeoDataFrame(geometry=[box(X0 - 100, Y0 - 100, X0 + 100, Y0 + 100)], crs=UTM)
    res = evaluate(dets, counts, truth, aoi=aoi)
    assert (res.tp, res.fp, res.fn) == (1, 0, 0)
    assert evaluate(dets, counts, truth).fn == 1


def test_counted_column_filters_detections(case):
    dets, counts, truth = case
    dets = dets.assign(counted=[True, True, True, False, True, True, True, True])
    res = evaluate(dets, counts, truth)
    assert res.per_acquisition.set_index("date").loc[D1, "fp"] == 1


def test_bad_inputs_raise_value_error(case):
    dets, counts, truth = case
    with pytest.raises(ValueError, match="truth: no 'date' or 'datetime'"):
        evaluate(dets, counts, truth.drop(columns="date"))
    with pytest.raises(ValueError, match="counts: no 'status'"):
        evaluate(dets, counts.drop(columns="status"), truth)
    bad = counts.assign(status=["ok", "ok", "cloudy", "ok"])
    with pytest.raises(ValueError, match="cloudy"):
        evaluate(dets, bad, truth)


def test_result_record_and_immutability(case):
    res = evaluate(*case)
    assert isinstance(res, EvaluationResult)
    rec = res.to_record()
    assert rec["tp"] == 5 and rec["n_not_scored"] == 1 and rec["max_distance_m"] == 3.0
    with pytest.raises(AttributeError):
        res.tp = 0  # type: ignore[misc]


# ----------------------------------------------------------------------------- evaluate_dir


def write_results(out, dets, counts):
    out.mkdir(parents=True, exist_ok=True)
    dets.to_file(out / "railcars.gpkg", layer="railcars", engine="pyogrio")
    counts.to_csv(out / "counts.csv", index=False)


def test_evaluate_dir_reads_files(tmp_path, case):
    dets, counts, truth = case
    write_results(tmp_path / "run", dets, counts)
    truth.to_file(tmp_path / "cars.geojson", driver="GeoJSON", engine="pyogrio")
    res = evaluate_dir(tmp_path / "run", tmp_path / "cars.geojson")
    assert (res.tp, res.fp, res.fn) == (5, 3, 2)
    assert res.mae == pytest.approx(1 / 3)


def test_evaluate_dir_errors_name_the_file(tmp_path, case):
    dets, counts, truth = case
    run = tmp_path / "run"
    write_results(run, dets, counts)
    with pytest.raises(VectorReadError, match="nope.geojson: file not found"):
        evaluate_dir(run, tmp_path / "nope.geojson")
    truth.drop(columns="date").to_file(tmp_path / "t.gpkg", engine="pyogrio")
    with pytest.raises(VectorReadError, match=r"t\.gpkg: no 'date'"):
        evaluate_dir(run, tmp_path / "t.gpkg")
    (run / "counts.csv").unlink()
    with pytest.raises(SiteConfigError, match=r"counts\.csv: file not found"):
        evaluate_dir(run, tmp_path / "t.gpkg")


def test_evaluate_dir_uses_footprints_and_counted(tmp_path):
    run = tmp_path / "run"
    truth = gdf([(D1, 0.0, 0.0, "tank"), (D1, 20.0, 0.0, "tank"), (D1, 40.0, 0.0, "tank")])
    dets = gdf([(D1, 0.0, 0.0, "tank"), (D1, 60.0, 0.0, "tank")]).assign(counted=[True, False])
    counts = counts_frame([{"date": D1, "status": "partial", "railcars": 1}])
    write_results(run, dets, counts)
    footprints = gpd.GeoDataFrame(
        {"date": [D1], "status": ["partial"]},
        geometry=[box(X0 - 50, Y0 - 50, X0 + 12, Y0 + 50)],
        crs=UTM,
    )
    footprints.to_file(run / "railcars.gpkg", layer="footprints", engine="pyogrio")
    truth.to_file(tmp_path / "cars.geojson", driver="GeoJSON", engine="pyogrio")
    row = evaluate_dir(run, tmp_path / "cars.geojson").per_acquisition.iloc[0]
    assert (row["tp"], row["fp"], row["fn"], row["truth"]) == (1, 0, 0, 1)
    assert row["truth_scope"] == "observed"


def test_no_detections_at_all(tmp_path):
    run = tmp_path / "run"
    truth = gdf([(D1, 0.0, 0.0, "tank"), (D1, 20.0, 0.0, "tank")])
    dets = gdf([])
    write_results(run, dets, counts_frame([{"date": D1, "status": "ok", "railcars": 0}]))
    truth.to_file(tmp_path / "cars.geojson", driver="GeoJSON", engine="pyogrio")
    res = evaluate_dir(run, tmp_path / "cars.geojson")
    assert (res.tp, res.fp, res.fn) == (0, 0, 2)
    assert math.isnan(res.precision) and res.recall == 0.0
    assert res.mae == 2.0 and res.mape == 1.0


def test_geographic_detections_measured_in_utm(case):
    dets, counts, truth = case
    res = evaluate(dets.to_crs("EPSG:4326"), counts, truth)
    assert (res.tp, res.fp, res.fn) == (5, 3, 2)

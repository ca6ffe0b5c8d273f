import geopandas as gpd
import pandas as pd
import pytest
from click.testing import CliRunner
from shapely.geometry import Point, box

from railwatch.cli.main import cli
from railwatch.evaluate import ACQUISITION_COLUMNS

UTM = "EPSG:32652"
X0, Y0 = 500_000.0, 4_700_000.0
D1, D2, D3 = "2024-06-17", "2024-06-24", "2024-07-01"


def car(x: float, length_m: float = 14.0):
    return box(X0 + x - length_m / 2, Y0 - 1.6, X0 + x + length_m / 2, Y0 + 1.6)


@pytest.fixture
def results_dir(tmp_path):
    """A tiny `railwatch count` output: 3 acquisitions, one obscured; truth as points."""
    run = tmp_path / "run"
    run.mkdir()
    dets = gpd.GeoDataFrame(
        {
            "datetime": [f"{d}T02:00:00Z" for d in (D1, D1, D1, D2)],
            "date": [D1, D1, D1, D2],
            "track_id": ["T1"] * 4,
            "type": ["tank", "open", "open", "tank"],
            "length_m": [14.0] * 4,
            "confidence": [0.9, 0.8, 0.7, 0.9],
        },
        geometry=[car(0.5), car(20.0), car(60.0), car(0.0)],
        crs=UTM,
    )
    dets.to_file(run / "railcars.gpkg", layer="railcars", engine="pyogrio")
    pd.DataFrame(
        {
            "date": [D1, D2, D3],
            "datetime": [f"{d}T02:00:00Z" for d in (D1, D2, D3)],
            "railcars": [3, 1, None],
            "railcars_low": [2, 1, None],
            "railcars_high": [4, 1, None],
            "status": ["ok", "ok", "obscured"],
            "coverage": [1.0, 1.0, 0.0],
            "cloud": [0.0, 0.0, 0.9],
            "gsd_m": [0.5, 0.3, 0.5],
            "shift_m": [1.2, 0.4, None],
        }
    ).to_csv(run / "counts.csv", index=False)
    truth = gpd.GeoDataFrame(
        {
            "date": [D1, D1, D2, D2, D3],
            "type": ["tank", "open", "tank", "tank", "tank"],
        },
        geometry=[
            Point(X0, Y0),
            Point(X0 + 20, Y0),
            Point(X0, Y0),
            Point(X0 + 20, Y0),
            Point(X0, Y0),
        ],
        crs=UTM,
    ).to_crs("EPSG:4326")
    truth.to_file(tmp_path / "cars.geojson", driver="GeoJSON", engine="pyogrio")
    return run, tmp_path / "cars.geojson"


def test_evaluate_prints_metrics_and_writes_csv(results_dir):
    run, truth = results_dir
    result = CliRunner().invoke(cli, ["evaluate", str(run), "--truth", str(truth)])
    assert result.exit_code == 0, result.output
    assert not result.exception
    out = result.stdout
    # D1: 2 TP, 1 FP; D2: 1 TP, 1 FN -> P 3/4, R 3/4
    assert "TP 3  FP 1  FN 1" in out
    assert "precision 0.750  recall 0.750  F1 0.750" in out
    # errors: D1 3 - 2 = 1, D2 1 - 2 = -1 -> MAE 1, MAPE 50 %; D2 truth 2 not in [1, 1]
    assert "count MAE 1.00 cars  MAPE 50.0 %  truth within [low, high] 50.0 %" in out
    assert "2 of 3 acquisitions scored; not scored: 1 obscured" in out
    assert "Wrote" not in out and "evaluation.csv" in result.stderr

    table = pd.read_csv(run / "evaluation.csv", dtype={"date": str})
    assert list(table.columns) == list(ACQUISITION_COLUMNS)
    assert table["date"].tolist() == [D1, D2, D3]
    assert table["tp"].tolist()[:2] == [2, 1]
    assert table["error"].tolist()[:2] == [1, -1]
    assert table["in_interval"].tolist()[:2] == [True, False]
    assert table.loc[2, ["tp", "error"]].isna().all()


def test_evaluate_with_truth_counts_reports_false_numbers(results_dir, tmp_path):
    run, truth = results_dir
    counts = pd.read_csv(run / "counts.csv")
    counts.loc[2, ["status", "railcars"]] = ["ok", 0]  # a number under cloud
    counts.to_csv(run / "counts.csv", index=False)
    pd.DataFrame(
        {"date": [D1, D2, D3], "railcars": [2, 2, None], "status": ["ok", "ok", "obscured"]}
    ).to_csv(tmp_path / "truth_counts.csv", index=False)
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            str(run),
            "--truth",
            str(truth),
            "--truth-counts",
            str(tmp_path / "truth_counts.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "obscured/no_coverage): 1;" in result.stdout


def test_bad_truth_path_exits_2_with_one_line(results_dir, tmp_path):
    run, _ = results_dir
    missing = tmp_path / "missing.geojson"
    result = CliRunner().invoke(cli, ["evaluate", str(run), "--truth", str(missing)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(missing) in lines[0] and "not found" in lines[0]
    assert not (run / "evaluation.csv").exists()


def test_missing_counts_exits_2(results_dir):
    run, truth = results_dir
    (run / "counts.csv").unlink()
    result = CliRunner().invoke(cli, ["evaluate", str(run), "--truth", str(truth)])
    assert result.exit_code == 2
    assert "counts.csv: file not found" in result.stderr

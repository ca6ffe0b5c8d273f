"""End-to-end ``railwatch count`` on tiny rendered yards (a few hundred pixels)."""

import json
import sqlite3

import numpy as np
import pandas as pd
import pyogrio
import pytest
from click.testing import CliRunner
from shapely.geometry import box, mapping

from contract import COUNTS_COLUMNS, SCENES_COLUMNS, WEEKLY_COLUMNS
from detect_fixtures import CRS, add_cloud, make_grid, render, straight_line, train
from railwatch.cli.main import cli
from rasters import write_geotiff

GRID = make_grid(300, 120, 0.5)
LINES = [straight_line(GRID, 20.0), straight_line(GRID, 40.0)]
CARS = train(0, 20.0, [13.92, 13.92, 12.02, 15.35]) + train(1, 60.0, [13.92, 13.92])


def _write_scene(path, scene):
    dn = np.round(scene.data * 255).astype(np.uint8)
    return write_geotiff(path, dn, crs=CRS, transform=GRID.transform)


def _write_aoi_utm(path, scene):
    fc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32652"}},
        "features": [{"type": "Feature", "properties": {}, "geometry": mapping(scene.aoi)}],
    }
    path.write_text(json.dumps(fc))
    return path


@pytest.fixture
def yard(tmp_path):
    img = tmp_path / "img"
    img.mkdir()
    scene = render(GRID, LINES, CARS, seed=1)
    _write_scene(img / "20240617_yard.tif", scene)
    aoi = _write_aoi_utm(tmp_path / "aoi.geojson", scene)
    return tmp_path, img, aoi


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_single_geotiff_with_aoi_only(yard):
    tmp, img, aoi = yard
    out = tmp / "out"
    r = _run("count", img / "20240617_yard.tif", "--aoi", aoi, "--out", out)
    assert r.exit_code == 0, r.output
    assert "2024-06-17" in r.stdout

    counts = pd.read_csv(out / "counts.csv")
    assert list(counts.columns) == COUNTS_COLUMNS
    row = counts.iloc[0]
    assert row["date"] == "2024-06-17"
    assert row["datetime"] == "2024-06-17T00:00:00Z"
    assert row["status"] == "ok"
    assert row["railcars"] == len(CARS)
    assert row["railcars_low"] <= len(CARS) <= row["railcars_high"]
    assert row["n_tiles"] == 1 and row["gsd_m"] == 0.5

    weekly = pd.read_csv(out / "weekly.csv")
    assert list(weekly.columns) == WEEKLY_COLUMNS
    assert weekly["week_start"].tolist() == ["2024-06-17"]

    scenes = pd.read_csv(out / "scenes.csv", keep_default_na=False)
    assert list(scenes.columns) == SCENES_COLUMNS
    assert scenes["status"].tolist() == ["used"] and scenes["crs"].tolist() == ["EPSG:32652"]

    layers = {name for name, _ in pyogrio.list_layers(out / "railcars.gpkg")}
    assert layers == {"railcars", "tracks", "aoi", "footprints"}
    cars = pyogrio.read_dataframe(out / "railcars.gpkg", layer="railcars")
    assert cars.crs.to_epsg() == 32652
    assert {"datetime", "date", "track_id", "type", "length_m", "confidence"} <= set(cars.columns)
    assert int(cars["counted"].sum()) == len(CARS)
    assert len(pyogrio.read_dataframe(out / "railcars.gpkg", layer="tracks")) == 2

    run = json.loads((out / "run.json").read_text())
    assert run["version"] and run["inputs"][0]["sha256"]
    assert run["stack"]["tracks_source"] == "extracted"
    assert [p.name for p in (out / "quicklooks").iterdir()] == ["20240617T000000.png"]
    assert (out / "report.html").stat().st_size > 1000
    # The figure drawn during the count is the one `railwatch report` draws again.
    drawn = {n: (out / n).read_bytes() for n in ("timeseries.png", "timeseries.svg")}
    r = _run("report", out)
    assert r.exit_code == 0, r.output
    assert {n: (out / n).read_bytes() for n in drawn} == drawn


def test_no_track_found_is_an_error_not_a_zero_count(tmp_path):
    # Plain ground, no track to find: counting it would report a confident 0.
    img = tmp_path / "img"
    img.mkdir()
    scene = render(GRID, [], [], seed=6)
    _write_scene(img / "20240617_ground.tif", scene)
    aoi = _write_aoi_utm(tmp_path / "aoi.geojson", render(GRID, LINES, [], seed=6))
    out = tmp_path / "out"
    r = _run("count", img, "--aoi", aoi, "--out", out)
    assert r.exit_code == 3, r.output
    assert "no track found" in r.output and "20240617_ground.tif" in r.output
    assert not (out / "counts.csv").exists()


def test_needs_site_or_aoi(yard):
    tmp, img, _ = yard
    r = _run("count", img, "--out", tmp / "out")
    assert r.exit_code == 2
    assert "--aoi" in r.stderr and "Traceback" not in r.output


def test_nothing_usable_exits_3_and_writes_nothing(tmp_path, yard):
    tmp, _, aoi = yard
    bad = tmp / "bad"
    bad.mkdir()
    (bad / "20240101_empty.tif").write_bytes(b"")
    r = _run("count", bad, "--aoi", aoi, "--out", tmp / "out")
    assert r.exit_code == 3
    assert "20240101_empty.tif" in r.stderr and "file is empty" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp / "out" / "counts.csv").exists()


def test_rejected_file_listed_and_strict_exit_1(yard):
    tmp, img, aoi = yard
    (img / "20240101_empty.tif").write_bytes(b"")
    r = _run("count", img, "--aoi", aoi, "--out", tmp / "out")
    assert r.exit_code == 0, r.output
    scenes = pd.read_csv(tmp / "out" / "scenes.csv", keep_default_na=False)
    rej = scenes[scenes["status"] == "rejected"]
    assert rej["reason"].tolist() == ["file is empty (0 bytes)"]
    r = _run("count", img, "--aoi", aoi, "--out", tmp / "out2", "--strict")
    assert r.exit_code == 1
    assert (tmp / "out2" / "counts.csv").exists()


def test_cloud_over_yard_is_obscured_with_no_number(yard):
    tmp, img, aoi = yard
    cloudy = add_cloud(render(GRID, LINES, CARS, seed=2))
    _write_scene(img / "20240624_cloud.tif", cloudy)
    r = _run("count", img, "--aoi", aoi, "--out", tmp / "out")
    assert r.exit_code == 0, r.output
    counts = pd.read_csv(tmp / "out" / "counts.csv", keep_default_na=False)
    cloud_row = counts[counts["date"] == "2024-06-24"].iloc[0]
    assert cloud_row["status"] == "obscured"
    assert cloud_row["railcars"] == "" and cloud_row["railcars_low"] == ""
    assert cloud_row["tank"] == ""


def _analysed(out):
    db = sqlite3.connect(out / ".railwatch" / "state.sqlite")
    rows = dict(db.execute("SELECT acq_id, processed_at FROM acquisitions").fetchall())
    db.close()
    return rows


def test_incremental_rerun_and_force(yard):
    tmp, img, aoi = yard
    out = tmp / "out"
    for k, day in enumerate(("20240618", "20240619")):
        _write_scene(img / f"{day}_yard.tif", render(GRID, LINES, CARS[: 3 + k], seed=10 + k))
    r = _run("count", img, "--aoi", aoi, "--out", out)
    assert r.exit_code == 0, r.output
    first = _analysed(out)
    assert len(first) == 3

    r = _run("count", img, "--aoi", aoi, "--out", out)
    assert r.exit_code == 0
    assert "0 analysed now, 3 from earlier runs" in r.stderr
    assert _analysed(out) == first

    _write_scene(img / "20240620_yard.tif", render(GRID, LINES, CARS, seed=20))
    r = _run("count", img, "--aoi", aoi, "--out", out)
    assert "1 analysed now, 3 from earlier runs" in r.stderr
    assert len(pd.read_csv(out / "counts.csv")) == 4

    r = _run("count", img, "--aoi", aoi, "--out", out, "--force")
    assert "4 analysed now, 0 from earlier runs" in r.stderr


def test_a_lone_scene_covering_part_of_the_aoi_is_partial(tmp_path):
    # Tracks extracted from one image exist only where it has pixels: the AOI beyond its
    # edge may hold tracks too, so the scene cannot claim to have seen the whole yard.
    img = tmp_path / "img"
    img.mkdir()
    scene = render(GRID, LINES, CARS, seed=1)
    dn = np.round(scene.data * 255).astype(np.uint8)
    edge_col = 200  # nodata from 100 m on (every car ends before 90 m)
    dn[:, :, edge_col:] = 0
    write_geotiff(img / "20240617_edge.tif", dn, crs=CRS, transform=GRID.transform, nodata=0)
    aoi = _write_aoi_utm(tmp_path / "aoi.geojson", scene)
    out = tmp_path / "out"
    r = _run("count", img, "--aoi", aoi, "--out", out)
    assert r.exit_code == 0, r.output
    row = pd.read_csv(out / "counts.csv").iloc[0]
    minx, miny, maxx, maxy = scene.aoi.bounds
    edge_x = GRID.transform.c + edge_col * GRID.resolution_m
    imaged = scene.aoi.intersection(box(minx, miny, edge_x, maxy)).area / scene.aoi.area
    assert row["status"] == "partial"
    assert row["coverage"] == pytest.approx(imaged, abs=0.03)
    assert row["railcars"] == 6
    # The unimaged part of the AOI is reported as not observed (hatched, and left out of
    # the footprint an evaluation judges the count against).
    foot = pyogrio.read_dataframe(out / "railcars.gpkg", layer="footprints").geometry.iloc[0]
    assert foot.area / scene.aoi.area == pytest.approx(imaged, abs=0.05)

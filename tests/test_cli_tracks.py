"""``railwatch tracks`` on tiny rendered yards: lines in EPSG:4326, same with a pool."""

import json

import numpy as np
from click.testing import CliRunner
from shapely.geometry import LineString, Point, mapping

from detect_fixtures import CRS, make_grid, render, straight_line, train
from railwatch.cli.main import cli
from railwatch.site import WGS84, to_crs
from rasters import write_geotiff

GRID = make_grid(240, 80, 0.5)
LINES = [straight_line(GRID, 12.0), straight_line(GRID, 22.0)]


def _write(tmp_path, n_dates):
    img = tmp_path / "img"
    img.mkdir()
    for k in range(n_dates):
        scene = render(GRID, LINES, train(k % 2, 20.0 + 10 * k, [13.92] * 2), seed=k)
        dn = np.round(scene.data * 255).astype(np.uint8)
        write_geotiff(img / f"2024061{k}_yard.tif", dn, crs=CRS, transform=GRID.transform)
    aoi = tmp_path / "aoi.geojson"
    feature = {
        "type": "Feature",
        "properties": {},
        "geometry": mapping(to_crs(scene.aoi, CRS, WGS84)),
    }
    aoi.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    return img, aoi


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_tracks_of_a_small_stack_in_wgs84(tmp_path):
    img, aoi = _write(tmp_path, 3)
    out = tmp_path / "tracks.geojson"
    r = _run("tracks", img, "--aoi", aoi, "-o", out)
    assert r.exit_code == 0, r.output
    assert "2 tracks from 3 acquisition(s)" in r.stderr
    features = json.loads(out.read_text())["features"]
    assert [f["properties"]["track_id"] for f in features] == ["T1", "T2"]
    for f, truth in zip(features, LINES[::-1], strict=True):
        line = to_crs(LineString(f["geometry"]["coordinates"]), WGS84, CRS)
        lon, lat = f["geometry"]["coordinates"][0]
        assert 120 < lon < 140 and 30 < lat < 50  # degrees, not metres
        assert max(truth.distance(Point(xy)) for xy in line.coords) < 0.5
        assert f["properties"]["length_m"] > 100  # of the AOI's 120 m


def test_tracks_with_two_workers_are_identical(tmp_path):
    img, aoi = _write(tmp_path, 3)
    one, two = tmp_path / "one.geojson", tmp_path / "two.geojson"
    assert _run("tracks", img, "--aoi", aoi, "-o", one).exit_code == 0
    r = _run("tracks", img, "--aoi", aoi, "-o", two, "--workers", "2")
    assert r.exit_code == 0, r.output
    assert one.read_text() == two.read_text()


def test_tracks_without_usable_imagery_exits_3(tmp_path):
    img, aoi = _write(tmp_path, 1)
    (img / "20240610_yard.tif").write_bytes(b"not a tiff")
    r = _run("tracks", img, "--aoi", aoi, "-o", tmp_path / "t.geojson")
    assert r.exit_code == 3
    assert "20240610_yard.tif" in r.stderr
    assert not (tmp_path / "t.geojson").exists()


def test_no_track_found_exits_3_and_keeps_the_previous_file(tmp_path):
    # Plain ground: an empty file would overwrite the analyst's edited lines.
    img = tmp_path / "img"
    img.mkdir()
    scene = render(GRID, [], [], seed=6)
    dn = np.round(scene.data * 255).astype(np.uint8)
    write_geotiff(img / "20240617_ground.tif", dn, crs=CRS, transform=GRID.transform)
    (tmp_path / "yard").mkdir()
    _, aoi = _write(tmp_path / "yard", 1)  # the AOI of a yard, over plain ground
    out = tmp_path / "tracks.geojson"
    out.write_text("edited by hand\n")
    r = _run("tracks", img, "--aoi", aoi, "-o", out)
    assert r.exit_code == 3, r.output
    assert r.stderr.strip().splitlines() == [
        "Error: no track found in the imagery inside the AOI (20240617_ground.tif); "
        f"{out} was not written"
    ]
    assert out.read_text() == "edited by hand\n"


def test_tracks_are_the_lines_count_extracts(tmp_path):
    import pyogrio

    img, aoi = _write(tmp_path, 3)
    out = tmp_path / "tracks.geojson"
    assert _run("tracks", img, "--aoi", aoi, "-o", out).exit_code == 0
    r = _run("count", img, "--aoi", aoi, "--out", tmp_path / "run")
    assert r.exit_code == 0, r.output
    counted = pyogrio.read_dataframe(tmp_path / "run" / "railcars.gpkg", layer="tracks")
    features = json.loads(out.read_text())["features"]
    assert [f["properties"]["track_id"] for f in features] == counted["track_id"].tolist()
    for f, line in zip(features, counted.geometry, strict=True):
        mine = to_crs(LineString(f["geometry"]["coordinates"]), WGS84, counted.crs.to_string())
        assert mine.hausdorff_distance(line) < 0.02  # GeoJSON keeps 7 decimals of a degree

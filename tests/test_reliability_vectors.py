"""Reliability, vectors and site files (issue 6).

Bad AOI / tracks / site files stop with exit 2 and one ``Error:`` line naming the file
and the key; odd but valid ones (self-intersecting, another CRS, multipolygon, tracks
partly outside) are used, with a warning where something was changed.
"""

from __future__ import annotations

import json

import pandas as pd
import pyogrio
import pytest
from shapely.affinity import translate
from shapely.geometry import LineString, Polygon, box, mapping

from railwatch.site import to_crs
from reliability import (
    LINES,
    aoi_geom,
    assert_clean_error,
    run,
    write_aoi,
    write_geojson,
    write_yard,
)

IMG = "20240617_yard.tif"


@pytest.fixture(scope="module")
def yard(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vec")
    write_yard(tmp / IMG)
    aoi = write_aoi(tmp / "aoi.geojson")
    ref = tmp / "ref"
    r = run("count", tmp / IMG, "--aoi", aoi, "--out", ref)
    assert r.exit_code == 0, r.output
    return tmp, ref


def _row(out):
    cols = ["date", "railcars", "status", "coverage", "cloud"]
    return pd.read_csv(out / "counts.csv", keep_default_na=False)[cols].values.tolist()


def _layer(out, name):
    return pyogrio.read_dataframe(out / "railcars.gpkg", layer=name)


def _site(tmp, body, name="site.yaml"):
    p = tmp / name
    p.write_text(body)
    return p


def _aoi_inline():
    return json.dumps(mapping(to_crs(aoi_geom(), "EPSG:32652", "EPSG:4326")))


# ----------------------------------------------------------------------------- valid, odd


def test_self_intersecting_aoi_is_repaired_with_a_warning(yard, tmp_path):
    tmp, _ = yard
    minx, miny, maxx, maxy = aoi_geom().bounds
    bowtie = Polygon([(minx, miny), (maxx, maxy), (maxx, miny), (minx, maxy)])
    assert not bowtie.is_valid
    aoi = write_geojson(tmp_path / "bowtie.geojson", [bowtie])
    r = run("count", tmp / IMG, "--aoi", aoi, "--out", tmp_path / "out")
    assert r.exit_code == 0, r.output
    assert (
        f"Warning: {aoi}: AOI polygon was invalid (e.g. self-intersecting) and has been "
        "repaired" in r.stderr
    )
    got = _layer(tmp_path / "out", "aoi").geometry.iloc[0]
    assert got.is_valid and got.geom_type == "MultiPolygon" and len(got.geoms) == 2
    assert got.area == pytest.approx(aoi_geom().area / 2, rel=1e-3)  # the two triangles


def test_self_intersecting_inline_aoi_in_site_file_warns_with_file(yard, tmp_path):
    from railwatch.errors import GeometryRepairedWarning
    from railwatch.site import load_site

    b = [(130.60, 42.42), (130.61, 42.43), (130.61, 42.42), (130.60, 42.43)]
    site = _site(tmp_path, f"aoi: {json.dumps(mapping(Polygon(b)))}\n")
    with pytest.warns(GeometryRepairedWarning, match=f"{site}: aoi"):
        s = load_site(site)
    assert s.aoi.is_valid and s.aoi.area == pytest.approx(0.01 * 0.01 / 2)


def test_aoi_in_web_mercator_geopackage_equals_utm_geojson(yard, tmp_path):
    tmp, ref = yard
    gpkg = tmp_path / "aoi_3857.gpkg"
    import geopandas as gpd

    gpd.GeoDataFrame(
        {"name": ["yard"]},
        geometry=[to_crs(aoi_geom(), "EPSG:32652", "EPSG:3857")],
        crs="EPSG:3857",
    ).to_file(gpkg, driver="GPKG", engine="pyogrio")
    out = tmp_path / "out"
    r = run("count", tmp / IMG, "--aoi", gpkg, "--out", out)
    assert r.exit_code == 0, r.output
    assert (
        json.loads((out / "run.json").read_text())["grid"]
        == json.loads((ref / "run.json").read_text())["grid"]
    )
    assert _row(out) == _row(ref)
    got = _layer(out, "aoi").geometry.iloc[0]
    assert got.symmetric_difference(aoi_geom()).area < 1e-3  # m², back in UTM 52N


def test_multipolygon_aoi(yard, tmp_path):
    tmp, _ = yard
    minx, miny, maxx, maxy = aoi_geom().bounds
    mid = (minx + maxx) / 2
    parts = [box(minx, miny, mid - 5, maxy), box(mid + 5, miny, maxx, maxy)]
    from shapely.geometry import MultiPolygon

    aoi = write_geojson(tmp_path / "two.geojson", [MultiPolygon(parts)])
    out = tmp_path / "out"
    r = run("count", tmp / IMG, "--aoi", aoi, "--out", out)
    assert r.exit_code == 0, r.output
    assert "Warning" not in r.stderr
    got = _layer(out, "aoi").geometry.iloc[0]
    assert got.geom_type == "MultiPolygon" and len(got.geoms) == 2
    assert got.area == pytest.approx(sum(p.area for p in parts), rel=1e-6)


def test_tracks_partly_outside_aoi_are_dropped_with_a_warning(yard, tmp_path):
    tmp, _ = yard
    far = translate(LINES[0], yoff=2000.0)
    tracks = write_geojson(
        tmp_path / "tracks.geojson",
        [LINES[0], LINES[1], far],
        props=[{"track_id": "A"}, {"track_id": "B"}, {"track_id": "FAR"}],
    )
    out = tmp_path / "out"
    r = run("count", tmp / IMG, "--aoi", tmp / "aoi.geojson", "--tracks", tracks, "--out", out)
    assert r.exit_code == 0, r.output
    assert f"Warning: {tracks}: 1 track(s) entirely outside the AOI ignored: FAR" in r.stderr
    assert sorted(_layer(out, "tracks")["track_id"]) == ["A", "B"]


# ----------------------------------------------------------------------------- bad: exit 2


def test_tracks_all_outside_aoi_exit_2(yard, tmp_path):
    tmp, _ = yard
    tracks = write_geojson(tmp_path / "far.geojson", [translate(LINES[0], xoff=5000.0)])
    r = run(
        "count",
        tmp / IMG,
        "--aoi",
        tmp / "aoi.geojson",
        "--tracks",
        tracks,
        "--out",
        tmp_path / "out",
    )
    msg = assert_clean_error(r, 2, str(tracks), "none of the 1 track(s) crosses the AOI")
    assert "CRS" in msg
    assert not (tmp_path / "out").exists()


def test_site_file_tracks_outside_aoi_exit_2(yard, tmp_path):
    tmp, _ = yard
    far = to_crs(translate(LINES[0], yoff=-3000.0), "EPSG:32652", "EPSG:4326")
    site = _site(tmp_path, f"aoi: {_aoi_inline()}\ntracks: {json.dumps(mapping(far))}\n")
    r = run("count", tmp / IMG, "--site", site, "--out", tmp_path / "out")
    assert_clean_error(r, 2, f"{site}: tracks: none of the 1 track(s) crosses the AOI")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "file is empty"),
        ('{"type": "FeatureCollection", "features": []}', "holds no geometry"),
        ("this is not json {", "not a readable vector file"),
    ],
)
def test_bad_aoi_file_exit_2(yard, tmp_path, content, problem):
    tmp, _ = yard
    aoi = tmp_path / "aoi.geojson"
    aoi.write_text(content)
    r = run("count", tmp / IMG, "--aoi", aoi, "--out", tmp_path / "out")
    assert_clean_error(r, 2, f"{aoi}: {problem}")


def test_aoi_of_lines_and_tracks_of_polygons_exit_2(yard, tmp_path):
    tmp, _ = yard
    lines = write_geojson(tmp_path / "lines.geojson", [LineString([(0, 0), (1, 1)])], epsg=None)
    r = run("count", tmp / IMG, "--aoi", lines, "--out", tmp_path / "o1")
    assert_clean_error(r, 2, f"{lines}: expected polygons, found LineString")
    polys = write_geojson(tmp_path / "polys.geojson", [aoi_geom()])
    r = run(
        "count",
        tmp / IMG,
        "--aoi",
        tmp / "aoi.geojson",
        "--tracks",
        polys,
        "--out",
        tmp_path / "o2",
    )
    assert_clean_error(r, 2, f"{polys}: expected lines, found Polygon")


SITE_CASES = [
    # (site file body, key, problem)  -- {AOI} is a valid inline AOI
    ("", None, "file is empty"),
    ("aoi: [unclosed\n", "line 2", "malformed YAML"),
    ("aoi: {AOI}\n\tname: tab\n", "line 2", "malformed YAML"),
    ("aoi: {AOI}\nevents: [{date: 2023-02-30}]\n", None, "malformed YAML value"),
    ("- just\n- a list\n", None, "expected a mapping"),
    ("name: yard\n", "aoi", "required key is missing"),
    ("aoi: null\n", "aoi", "required key is missing"),
    ("aoi: {AOI}\ncolour: red\n", "colour", "unknown key"),
    ("aoi: {AOI}\nquality: {max_clouds: 0.3}\n", "quality.max_clouds", "unknown key"),
    ("aoi: {AOI}\nbaseline: {modle: constant}\n", "baseline.modle", "unknown key"),
    ("aoi: {AOI}\nresolution_m: fine\n", "resolution_m", "must be a number"),
    ("aoi: {AOI}\nresolution_m: true\n", "resolution_m", "must be a number"),
    ("aoi: {AOI}\nmargin_m: .inf\n", "margin_m", "must be a number"),
    ("aoi: {AOI}\nmargin_m: 1" + "0" * 400 + "\n", "margin_m", "must be a number"),
    ("aoi: {AOI}\nname: 42\n", "name", "non-empty string"),
    ("aoi: 42\n", "aoi", "GeoJSON object or a path"),
    ("aoi: {type: Point, coordinates: [130.6, 42.4]}\n", "aoi", "Polygon or MultiPolygon"),
    (
        "aoi: {type: Polygon, coordinates: [[[600000, 4e6], [600100, 4e6], [600100, 4.1e6], "
        "[600000, 4e6]]]}\n",
        "aoi",
        "WGS84",
    ),
    ("aoi: {AOI}\nvehicles: 5\n", "vehicles", "must be a mapping"),
    ("aoi: {AOI}\nvehicles: {lengths_m: {tank: long}}\n", "vehicles.lengths_m.tank", "number"),
    ("aoi: {AOI}\nquality: {max_cloud: 2}\n", "quality.max_cloud", "between 0.0 and 1.0"),
    (
        "aoi: {AOI}\ndetection: {band_mapping: {red: one}}\n",
        "detection.band_mapping.red",
        "band number",
    ),
    (
        "aoi: {AOI}\ndetection: {band_mapping: [3, 2, 1]}\n",
        "detection.band_mapping",
        "must be a mapping",
    ),
    ("aoi: {AOI}\nevents: soon\n", "events", "must be a list"),
    ("aoi: {AOI}\nbaseline: {model: demand}\n", "baseline.towns", "at least one town"),
    ("aoi: {AOI}\nbaseline: {model: constant}\n", "baseline.value", "required"),
    ("aoi: {AOI}\ncrs: EPSG:4326\n", "crs", "projected"),
    ("aoi: {AOI}\ntracks: {type: Point, coordinates: [130.6, 42.4]}\n", "tracks[0]", "LineString"),
    ("aoi: no_such_aoi.geojson\n", "aoi", "file not found"),
]


@pytest.mark.parametrize(("body", "key", "problem"), SITE_CASES)
def test_bad_site_file_exit_2_names_file_and_key(yard, tmp_path, body, key, problem):
    tmp, _ = yard
    site = _site(tmp_path, body.replace("{AOI}", _aoi_inline()))
    r = run("count", tmp / IMG, "--site", site, "--out", tmp_path / "out")
    prefix = f"Error: {site}: {key}: " if key else f"Error: {site}: "
    msg = assert_clean_error(r, 2, problem)
    assert msg.startswith(prefix), msg
    assert not (tmp_path / "out").exists()


def test_missing_site_file_is_a_usage_error(yard, tmp_path):
    tmp, _ = yard
    r = run("count", tmp / IMG, "--site", tmp_path / "nope.yaml", "--out", tmp_path / "out")
    assert r.exit_code == 2 and "nope.yaml: file not found" in r.stderr
    assert "Traceback" not in r.output

import json

import pytest
from shapely.geometry import Polygon, mapping

from railwatch.errors import GeometryRepairedWarning, SiteConfigError, VectorReadError
from railwatch.site import load_aoi, load_site, make_grid, site_from_aoi, to_crs, utm_crs_for
from rasters import UTM52, X0, Y0, aoi_wgs84, write_aoi

AOI = aoi_wgs84(X0, Y0 - 100, X0 + 200, Y0)


def _write(tmp_path, text):
    p = tmp_path / "site.yaml"
    p.write_text(text)
    return p


def _aoi_yaml():
    return json.dumps(mapping(AOI))


def test_minimal_site(tmp_path):
    site = load_site(_write(tmp_path, f"name: yard\naoi: {_aoi_yaml()}\n"))
    assert site.name == "yard"
    assert site.tracks is None
    assert site.baseline.model == "none"
    assert site.vehicles.lengths_m["tank"] == pytest.approx(12.02)
    assert utm_crs_for(site.aoi).to_epsg() == 32652


def test_full_site(tmp_path):
    write_aoi(tmp_path / "aoi.geojson", AOI)
    text = """
name: Tumangang
aoi: aoi.geojson
crs: EPSG:32652
resolution_m: 0.5
margin_m: 20
vehicles:
  lengths_m: {tank: 12.0, open: 14.0}
  gap_m: 0.8
detection:
  min_confidence: 0.4
  band_mapping: {red: 3, green: 2, blue: 1}
quality: {max_cloud: 0.4}
baseline:
  model: reference
  reference_start: 2019-01-01
  reference_end: 2019-12-31
  statistic: mean
events:
  - {date: 2023-09-13, label: summit}
  - {date: 2020-01-31, label: border closed}
"""
    site = load_site(_write(tmp_path, text))
    assert site.crs == "EPSG:32652"
    assert site.vehicles.lengths_m == {"tank": 12.0, "open": 14.0}
    assert site.detection.band_mapping == {"red": 3, "green": 2, "blue": 1}
    assert site.quality.max_cloud == 0.4
    assert [e.label for e in site.events] == ["border closed", "summit"]
    assert site.baseline.reference_end.isoformat() == "2019-12-31"
    assert site.to_dict()["baseline"]["reference_start"] == "2019-01-01"


@pytest.mark.parametrize(
    ("body", "key", "problem"),
    [
        ("name: x\n", "aoi", "required key is missing"),
        ("aoi: {AOI}\ncolour: red\n", "colour", "unknown key"),
        ("aoi: {AOI}\nresolution_m: fine\n", "resolution_m", "must be a number"),
        ("aoi: {AOI}\nresolution_m: -1\n", "resolution_m", "between"),
        ("aoi: {AOI}\nvehicles: {lengths_m: {boat: 10}}\n", "vehicles.lengths_m.boat", "unknown"),
        ("aoi: {AOI}\nbaseline: {model: constant}\n", "baseline.value", "required"),
        ("aoi: {AOI}\nbaseline: {model: magic}\n", "baseline.model", "must be"),
        ("aoi: {AOI}\ncrs: EPSG:4326\n", "crs", "projected"),
        ("aoi: {AOI}\nevents: [{date: soon}]\n", "events[0].date", "must be a date"),
        ("aoi: {AOI}\ndetection: {band_mapping: {red: 0}}\n", "detection.band_mapping.red", ">= 1"),
        ("aoi: missing.geojson\n", "aoi", "file not found"),
        (
            "aoi: {AOI}\ndetection: {overpass_local_time: 10:30}\n",
            "detection.overpass_local_time",
            "quoted",
        ),
        (
            "aoi: {AOI}\ndetection: {overpass_local_time: '11:00-10:00'}\n",
            "detection.overpass_local_time",
            "ends before",
        ),
        (
            "aoi: {AOI}\ndetection: {overpass_local_time: 'noon'}\n",
            "detection.overpass_local_time",
            "HH:MM",
        ),
    ],
)
def test_errors_name_file_and_key(tmp_path, body, key, problem):
    p = _write(tmp_path, body.replace("{AOI}", _aoi_yaml()))
    with pytest.raises(SiteConfigError) as info:
        load_site(p)
    assert info.value.key == key
    assert problem in info.value.problem
    assert str(p) in str(info.value) and key in str(info.value)


def test_malformed_and_empty_yaml(tmp_path):
    with pytest.raises(SiteConfigError, match="malformed YAML"):
        load_site(_write(tmp_path, "aoi: [unclosed\n"))
    with pytest.raises(SiteConfigError, match="file is empty"):
        load_site(_write(tmp_path, ""))
    with pytest.raises(SiteConfigError, match="mapping"):
        load_site(_write(tmp_path, "- a\n- b\n"))


def test_aoi_file_in_other_crs_and_repair(tmp_path):
    utm = to_crs(AOI, "EPSG:4326", UTM52)
    p = tmp_path / "aoi_utm.geojson"
    fc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32652"}},
        "features": [{"type": "Feature", "properties": {}, "geometry": mapping(utm)}],
    }
    p.write_text(json.dumps(fc))
    geom = load_aoi(p)
    assert geom.symmetric_difference(AOI).area < 1e-12
    bowtie = Polygon([(130.60, 42.42), (130.61, 42.43), (130.61, 42.42), (130.60, 42.43)])
    write_aoi(tmp_path / "bowtie.geojson", bowtie)
    with pytest.warns(GeometryRepairedWarning):
        fixed = load_aoi(tmp_path / "bowtie.geojson")
    assert fixed.is_valid and fixed.area > 0


def test_empty_vector_file(tmp_path):
    (tmp_path / "empty.geojson").write_text("")
    with pytest.raises(VectorReadError, match="empty"):
        load_aoi(tmp_path / "empty.geojson")


def test_grid_snaps_to_pixels():
    site = site_from_aoi(AOI)
    grid = make_grid(site, 0.5)
    assert grid.crs == "EPSG:32652"
    assert grid.resolution_m == 0.5
    minx, miny, maxx, maxy = grid.bounds
    assert minx % 0.5 == 0 and maxy % 0.5 == 0
    # AOI 200 x 100 m plus 30 m margin each side, within a pixel of snapping.
    assert abs(grid.width - (200 + 60) / 0.5) <= 2
    assert abs(grid.height - (100 + 60) / 0.5) <= 2

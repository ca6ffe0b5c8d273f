"""Several sites in one run: one subfolder each, one pool, worst exit code."""

import json

import pandas as pd
from click.testing import CliRunner
from shapely import affinity
from shapely.geometry import mapping

from railwatch.cli.main import cli
from test_crash import _archive


def _site(path, name, geom):
    fc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32652"}},
        "features": [{"type": "Feature", "properties": {}, "geometry": mapping(geom)}],
    }
    (path.parent / f"{path.stem}_aoi.geojson").write_text(json.dumps(fc))
    path.write_text(f"name: {name}\naoi: {path.stem}_aoi.geojson\nresolution_m: 0.5\n")
    return path


def test_two_site_files_and_a_folder_of_sites(tmp_path):
    img = tmp_path / "img"
    scene = _archive(img, ["20240301", "20240302"])
    sites = tmp_path / "sites"
    sites.mkdir()
    west = scene.aoi.intersection(affinity.translate(scene.aoi, -75, 0))
    east = scene.aoi.intersection(affinity.translate(scene.aoi, 75, 0))
    _site(sites / "a.yaml", "West yard", west)
    _site(sites / "b.yaml", "East yard", east)
    out = tmp_path / "out"
    for args in (["--site", sites / "a.yaml", "--site", sites / "b.yaml"], ["--site", sites]):
        r = CliRunner().invoke(
            cli, ["count", str(img), *map(str, args), "--out", str(out), "--workers", "2"]
        )
        assert r.exit_code == 0, r.output
        assert "== West yard" in r.stdout and "== East yard" in r.stdout
        for sub in ("west-yard", "east-yard"):
            counts = pd.read_csv(out / sub / "counts.csv")
            assert list(counts["date"]) == ["2024-03-01", "2024-03-02"]
            assert (out / sub / "railcars.gpkg").exists()
    assert not (out / "counts.csv").exists()


def test_a_site_without_imagery_does_not_stop_the_others(tmp_path):
    img = tmp_path / "img"
    scene = _archive(img, ["20240301"])
    sites = tmp_path / "sites"
    sites.mkdir()
    _site(sites / "a.yaml", "Here", scene.aoi)
    _site(sites / "b.yaml", "Elsewhere", affinity.translate(scene.aoi, 5000, 5000))
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["count", str(img), "--site", str(sites), "--out", str(out)])
    assert r.exit_code == 3
    assert (out / "here" / "counts.csv").exists()
    assert not (out / "elsewhere" / "counts.csv").exists()
    assert "Error:" in r.stderr and "Traceback" not in r.output

"""Several sites in one run: one subfolder each, one pool, worst exit code."""

import json

import pandas as pd
from click.testing import CliRunner
from shapely import affinity
from shapely.geometry import box, mapping

from railwatch.cli.main import cli
from railwatch.pipeline import site_subdirs
from railwatch.site import Site
from railwatch.state import run_lock
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


def _count(*args):
    return CliRunner().invoke(cli, ["count", *map(str, args)])


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
    r = _count(img, "--site", sites / "a.yaml", "--site", sites / "b.yaml", "--out", out,
               "--workers", "2")  # fmt: skip
    assert r.exit_code == 0, r.output
    # One summary table per site on stdout, in the order given.
    assert r.stdout.index("== West yard (west-yard)") < r.stdout.index("== East yard (east-yard)")
    assert r.stdout.count("2024-03-01") == 2
    for sub in ("west-yard", "east-yard"):
        counts = pd.read_csv(out / sub / "counts.csv")
        assert list(counts["date"]) == ["2024-03-01", "2024-03-02"]
        assert (out / sub / "railcars.gpkg").exists()
        assert (out / sub / ".railwatch" / "state.sqlite").exists()
        run = json.loads((out / sub / "run.json").read_text())
        # The shared pool is recorded, not the defaults of a one-site run.
        assert run["parameters"]["workers"] == 2
    assert json.loads((out / "west-yard" / "run.json").read_text())["site"]["name"] == "West yard"
    assert not (out / "counts.csv").exists()

    # A folder gives the same layout; the second run analyses nothing again.
    r = _count(img, "--site", sites, "--out", out)
    assert r.exit_code == 0, r.output
    assert r.stderr.count("0 analysed now, 2 from earlier runs") == 2


def test_a_folder_of_one_site_still_uses_a_subfolder_and_one_file_does_not(tmp_path):
    img = tmp_path / "img"
    scene = _archive(img, ["20240301"])
    sites = tmp_path / "sites"
    sites.mkdir()
    _site(sites / "a.yaml", "Only yard", scene.aoi)
    r = _count(img, "--site", sites, "--out", tmp_path / "folder")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "folder" / "only-yard" / "counts.csv").exists()
    assert not (tmp_path / "folder" / "counts.csv").exists()
    # The same file given twice is one site; a single file writes straight into --out.
    r = _count(img, "--site", sites / "a.yaml", "--site", sites / "a.yaml", "--out",
               tmp_path / "file")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (tmp_path / "file" / "counts.csv").exists()
    assert r.stdout.count("2024-03-01") == 1


def test_a_failing_site_does_not_stop_the_others_and_sets_the_exit_code(tmp_path):
    img = tmp_path / "img"
    scene = _archive(img, ["20240301"])
    sites = tmp_path / "sites"
    sites.mkdir()
    _site(sites / "a.yaml", "Here", scene.aoi)
    _site(sites / "b.yaml", "Elsewhere", affinity.translate(scene.aoi, 5000, 5000))
    _site(sites / "c.yaml", "Busy", scene.aoi)
    out = tmp_path / "out"
    with run_lock(out / "busy"):
        r = _count(img, "--site", sites, "--out", out)
    assert r.exit_code == 3
    assert "Traceback" not in r.output
    assert (out / "here" / "counts.csv").exists()
    assert not (out / "elsewhere" / "counts.csv").exists()
    assert not (out / "busy" / "counts.csv").exists()
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
    # One line per failed site, then one summary line; each failure is named once.
    assert len(errors) == 3, r.stderr
    assert errors[0].startswith("Error: Elsewhere (elsewhere): ")
    assert errors[1].startswith("Error: Busy (busy): ") and "another railwatch run" in errors[1]
    assert errors[2] == "Error: 2 of 3 site(s) failed: elsewhere, busy"
    assert "== Here (here)" in r.stdout


def test_a_bad_site_file_stops_everything_before_work(tmp_path):
    img = tmp_path / "img"
    scene = _archive(img, ["20240301"])
    sites = tmp_path / "sites"
    sites.mkdir()
    _site(sites / "a.yaml", "Good", scene.aoi)
    (sites / "b.yaml").write_text("name: Bad\nresolution_m: fast\n")
    r = _count(img, "--site", sites, "--out", tmp_path / "out")
    assert r.exit_code == 2
    assert "b.yaml" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_site_subdirs_are_unique_slugs():
    aoi = box(130.6, 42.4, 130.61, 42.41)
    sites = [
        Site(name="Tumangang (DPRK)", aoi=aoi, path="cfg/tmg.yaml"),
        Site(name="Khasan", aoi=aoi, path="cfg/kh-1.yaml"),
        Site(name="Khasan", aoi=aoi, path="cfg/kh-2.yaml"),
        Site(name="Хасан", aoi=aoi, path="cfg/khasan_ru.yml"),
        Site(name="Хасан", aoi=aoi, path=None),
        Site(name="Хасан", aoi=aoi, path=None),
    ]
    assert site_subdirs(sites) == [
        "tumangang-dprk", "khasan-kh-1", "khasan-kh-2", "khasan-ru", "site", "site-2",
    ]  # fmt: skip

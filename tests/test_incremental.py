"""Incremental re-runs, asserted through the state database rather than timing.

Before each re-run every stored row is stamped with a sentinel ``processed_at`` (and
the stack with a sentinel ``built_at``): a row analysed again gets a fresh timestamp, a
row taken from the state keeps the sentinel.
"""

import io
import json
import os
import sqlite3

import pandas as pd
import pyogrio
from click.testing import CliRunner

from detect_fixtures import CRS, make_grid, render, straight_line, train
from railwatch.cli.main import cli
from rasters import write_geotiff
from test_crash import _aoi, _archive

STAMP = "sentinel"
TABLES = ("counts.csv", "weekly.csv", "scenes.csv")


def _count(img, aoi, out, *extra):
    r = CliRunner().invoke(cli, ["count", str(img), "--aoi", str(aoi), "--out", str(out), *extra])
    assert r.exit_code == 0, r.output
    return r


def _db(out):
    return sqlite3.connect(out / ".railwatch" / "state.sqlite")


def _stamp(out):
    with _db(out) as db:
        db.execute("UPDATE acquisitions SET processed_at = ?", (STAMP,))
        db.execute("UPDATE stack SET built_at = ?", (STAMP,))
    db.close()


def _rows(out):
    """acq_id -> (processed_at, stack_version), and [(stack version, built_at)]."""
    db = _db(out)
    acqs = {a: (p, v) for a, p, v in db.execute(
        "SELECT acq_id, processed_at, stack_version FROM acquisitions")}  # fmt: skip
    stack = db.execute("SELECT version, built_at FROM stack ORDER BY version").fetchall()
    db.close()
    return acqs, stack


def _analysed(out):
    return sorted(a for a, (p, _) in _rows(out)[0].items() if p != STAMP)


def test_rerun_add_one_and_change_one(tmp_path):
    img, out = tmp_path / "img", tmp_path / "out"
    scene = _archive(img, ["20240301", "20240308", "20240315"])
    aoi = _aoi(tmp_path / "aoi.geojson", scene)
    _count(img, aoi, out)
    acqs, stack = _rows(out)
    assert sorted(acqs) == ["20240301T000000", "20240308T000000", "20240315T000000"]
    assert [v for _, v in acqs.values()] == [1, 1, 1] and len(stack) == 1
    first = json.loads((out / "run.json").read_text())
    assert first["analysed_now"] == 3
    assert {"stack_read", "stack_shifts", "stack_tracks", "analysis"} <= set(first["timings_s"])
    before = {name: (out / name).read_bytes() for name in TABLES}
    cars_before = pyogrio.read_dataframe(out / "railcars.gpkg", layer="railcars")

    # Nothing new: no acquisition analysed, the stack is not rebuilt, and the rewritten
    # tables are byte-identical.
    _stamp(out)
    r = _count(img, aoi, out)
    assert _analysed(out) == []
    assert _rows(out)[1] == [(1, STAMP)]
    assert "0 analysed now, 3 from earlier runs" in r.stderr
    for name in TABLES:
        assert (out / name).read_bytes() == before[name], name
    cars = pyogrio.read_dataframe(out / "railcars.gpkg", layer="railcars")
    assert cars.drop(columns="geometry").equals(cars_before.drop(columns="geometry"))
    assert cars.geometry.geom_equals_exact(cars_before.geometry, 1e-9).all()

    # One new scene: exactly one acquisition analysed; the old rows keep their values.
    _archive(img, ["20240322"], seed0=50)
    _stamp(out)
    r = _count(img, aoi, out)
    assert _analysed(out) == ["20240322T000000"]
    assert _rows(out)[1] == [(1, STAMP)]
    assert "1 analysed now, 3 from earlier runs" in r.stderr
    old = pd.read_csv(io.BytesIO(before["counts.csv"]))
    new = pd.read_csv(out / "counts.csv")
    assert list(new["date"]) == [*old["date"], "2024-03-22"]
    pd.testing.assert_frame_equal(new.iloc[:3].reset_index(drop=True), old)
    run = json.loads((out / "run.json").read_text())
    assert run["stack"]["version"] == 1
    # The stack was kept: no stack step ran, one acquisition was analysed.
    assert run["analysed_now"] == 1
    assert set(run["timings_s"]) == {"setup", "analysis", "outputs"}
    assert all(v >= 0 for v in run["timings_s"].values())

    # A file replaced under the same name: that acquisition, and only it, again.
    grid = make_grid(300, 120, 0.5)
    lines = [straight_line(grid, 20.0), straight_line(grid, 40.0)]
    redo = render(grid, lines, train(0, 5.0, [13.92] * 6), seed=77)
    target = img / "20240308_yard.tif"
    stat = target.stat()
    write_geotiff(target, (redo.data * 255).round().astype("uint8"), crs=CRS,
                  transform=grid.transform)  # fmt: skip
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    _stamp(out)
    r = _count(img, aoi, out)
    assert _analysed(out) == ["20240308T000000"]
    assert "1 analysed now, 3 from earlier runs" in r.stderr
    run = json.loads((out / "run.json").read_text())
    from railwatch.outputs import sha256_file

    sums = {i["path"]: i["sha256"] for i in run["inputs"]}
    assert sums[str(target)] == sha256_file(target)


def test_force_and_a_changed_configuration_recompute_everything(tmp_path):
    img, out = tmp_path / "img", tmp_path / "out"
    scene = _archive(img, ["20240301", "20240308"])
    aoi = _aoi(tmp_path / "aoi.geojson", scene)
    _count(img, aoi, out)
    first = pd.read_csv(out / "counts.csv")

    _stamp(out)
    r = _count(img, aoi, out, "--force")
    assert _analysed(out) == ["20240301T000000", "20240308T000000"]
    assert [b for _, b in _rows(out)[1]] != [STAMP]
    assert "2 analysed now, 0 from earlier runs" in r.stderr
    # Recomputing from scratch is deterministic.
    pd.testing.assert_frame_equal(pd.read_csv(out / "counts.csv"), first)

    # A different working resolution is a different configuration: the state is reset.
    # (Finer, not coarser: two 0.5 m images resampled to 0.6 m blur the rails too much
    # for a line to be found, and a count without tracks stops with exit 3.)
    _stamp(out)
    _count(img, aoi, out, "--resolution", "0.4")
    assert _analysed(out) == ["20240301T000000", "20240308T000000"]
    assert json.loads((out / "run.json").read_text())["parameters"]["resolution_m"] == 0.4


def test_young_stack_is_rebuilt_when_the_archive_doubles(tmp_path):
    img, out = tmp_path / "img", tmp_path / "out"
    scene = _archive(img, ["20240301", "20240308"])
    aoi = _aoi(tmp_path / "aoi.geojson", scene)
    _count(img, aoi, out)
    assert [v for v, _ in _rows(out)[1]] == [1]

    # 2 -> 4 acquisitions: the stack products are rebuilt from all four and every
    # acquisition is analysed again with them, so all rows come from one version.
    _archive(img, ["20240315", "20240322"], seed0=60)
    _stamp(out)
    _count(img, aoi, out)
    acqs, stack = _rows(out)
    # The new products replace the old ones (only the newest are ever read).
    assert [v for v, _ in stack] == [2] and stack[0][1] != STAMP
    assert {v for _, v in acqs.values()} == {2}
    assert _analysed(out) == sorted(acqs) and len(acqs) == 4
    run = json.loads((out / "run.json").read_text())
    assert run["stack"] == {**run["stack"], "version": 2, "built_from_acquisitions": 4}


def test_state_of_another_build_is_not_reused(tmp_path, monkeypatch):
    # Same version string, other code: its stored results (pickled objects of another
    # layout) are not reused, every acquisition is analysed again.
    import railwatch.state

    img, out = tmp_path / "img", tmp_path / "out"
    scene = _archive(img, ["20240301", "20240308", "20240315"])
    aoi = _aoi(tmp_path / "aoi.geojson", scene)
    _count(img, aoi, out)
    _stamp(out)
    _count(img, aoi, out)
    assert _analysed(out) == []

    fingerprint = railwatch.state.software_fingerprint()
    assert fingerprint.startswith(railwatch.__version__ + "+")
    monkeypatch.setattr(railwatch.state, "software_fingerprint", lambda: fingerprint + "x")
    r = _count(img, aoi, out)
    assert _analysed(out) == ["20240301T000000", "20240308T000000", "20240315T000000"]
    assert "3 analysed now, 0 from earlier runs" in r.stderr


def test_a_scene_outside_the_stack_sample_is_placed_by_the_anchors(tmp_path, monkeypatch):
    # A stack built from a sample (3 of 4 here, 48 of a large archive): the anchors of its
    # shift solve are stored with it and place the scene left out, as close as the
    # stack's own solve places its scenes.
    import pickle

    import numpy as np

    import railwatch.pipeline
    from test_crash import GRID, LINES

    monkeypatch.setattr(railwatch.pipeline, "STACK_SAMPLE", 3)
    img, out = tmp_path / "img", tmp_path / "out"
    img.mkdir()
    days = ["20240301", "20240308", "20240315", "20240322"]
    offs = [(0.0, 0.0), (2.0, -1.5), (-3.5, 2.5), (1.5, 3.0)]  # east, north metres
    for k, (day, off) in enumerate(zip(days, offs, strict=True)):
        cars = train(0, 10.0 + 3 * k, [13.92] * (1 + k % 4)) + train(1, 60.0, [12.02] * 2)
        scene = render(GRID, LINES, cars, seed=k, offset_m=off)
        write_geotiff(img / f"{day}_yard.tif", np.round(scene.data * 255).astype(np.uint8),
                      crs=CRS, transform=GRID.transform)  # fmt: skip
    _count(img, _aoi(tmp_path / "aoi.geojson", scene), out)
    db = _db(out)
    products = pickle.loads(db.execute("SELECT payload FROM stack").fetchone()[0])
    shifts = {a: pickle.loads(p).shift_px for a, p in db.execute(
        "SELECT acq_id, payload FROM acquisitions")}  # fmt: skip
    db.close()
    assert sorted(products.shifts) == ["20240301T000000", "20240315T000000", "20240322T000000"]
    assert len(products.anchors) == 3
    shape = (products.grid.height, products.grid.width)
    assert all(a.edges.dtype == np.float16 and a.edges.shape == shape
               for a in products.anchors)  # fmt: skip
    # Moved back -x/res columns and +y/res rows, in the stack's frame.
    err = np.array([shifts[d + "T000000"] for d in days])
    err -= np.array([(y / 0.5, -x / 0.5) for x, y in offs])
    err -= np.median(err[[0, 2, 3]], axis=0)
    assert np.hypot(*err.T).max() < 0.5

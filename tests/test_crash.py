"""A run killed with SIGKILL loses nothing; two runs on one directory never interleave."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from detect_fixtures import CRS, make_grid, render, straight_line, train
from railwatch.cli.main import cli
from railwatch.state import run_lock
from rasters import write_geotiff

GRID = make_grid(300, 120, 0.5)
LINES = [straight_line(GRID, 20.0), straight_line(GRID, 40.0)]
OUTPUTS = ("counts.csv", "weekly.csv", "scenes.csv", "run.json", "railcars.gpkg")


def _archive(folder, days, seed0=0):
    folder.mkdir(exist_ok=True)
    for k, day in enumerate(days):
        cars = train(0, 10.0 + 3 * k, [13.92] * (1 + k % 4)) + train(1, 60.0, [12.02] * 2)
        scene = render(GRID, LINES, cars, seed=seed0 + k)
        dn = np.round(scene.data * 255).astype(np.uint8)
        write_geotiff(folder / f"{day}_yard.tif", dn, crs=CRS, transform=GRID.transform)
    return scene


def _aoi(path, scene):
    import json

    from shapely.geometry import mapping

    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32652"}},
                "features": [{"type": "Feature", "properties": {}, "geometry": mapping(scene.aoi)}],
            }
        )
    )
    return path


def _n_done(out):
    db = out / ".railwatch" / "state.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute("SELECT count(*) FROM acquisitions").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_sigkill_mid_run_keeps_previous_outputs_and_next_run_finishes(tmp_path):
    img = tmp_path / "img"
    scene = _archive(img, [f"202401{d:02d}" for d in range(1, 4)])
    aoi = _aoi(tmp_path / "aoi.geojson", scene)
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["count", str(img), "--aoi", str(aoi), "--out", str(out)])
    assert r.exit_code == 0, r.output
    before = {name: (out / name).read_bytes() for name in OUTPUTS}

    # Many more acquisitions: the archive has more than doubled, so all are re-analysed.
    _archive(img, [f"202402{d:02d}" for d in range(1, 25)], seed0=100)
    cmd = [sys.executable, "-m", "railwatch", "count", str(img)]
    cmd += ["--aoi", str(aoi), "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    killed_at = None
    while time.monotonic() < deadline and proc.poll() is None:
        n = _n_done(out)
        if n >= 5:
            os.kill(proc.pid, signal.SIGKILL)
            killed_at = n
            break
        time.sleep(0.05)
    proc.wait(timeout=30)
    assert killed_at is not None, "the run ended before it could be killed"
    assert proc.returncode == -signal.SIGKILL

    # Previous outputs untouched: the run had not reached its writing stage.
    for name in OUTPUTS:
        assert (out / name).read_bytes() == before[name], name

    r = CliRunner().invoke(cli, ["count", str(img), "--aoi", str(aoi), "--out", str(out)])
    assert r.exit_code == 0, r.output
    import pandas as pd

    counts = pd.read_csv(out / "counts.csv")
    assert len(counts) == 27
    assert _n_done(out) == 27
    # Work finished before the kill was kept: fewer than all were analysed again.
    assert "from earlier runs" in r.stderr
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.is_file()]


def test_second_run_on_the_same_directory_is_refused(tmp_path):
    img = tmp_path / "img"
    scene = _archive(img, ["20240101"])
    aoi = _aoi(tmp_path / "aoi.geojson", scene)
    out = tmp_path / "out"
    with run_lock(out):
        r = CliRunner().invoke(cli, ["count", str(img), "--aoi", str(aoi), "--out", str(out)])
    assert r.exit_code == 3
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(out) in lines[0] and str(os.getpid()) in lines[0]
    assert "Traceback" not in r.output
    assert not (out / "counts.csv").exists()
    # Once the first run is done, the second goes ahead.
    r = CliRunner().invoke(cli, ["count", str(img), "--aoi", str(aoi), "--out", str(out)])
    assert r.exit_code == 0, r.output

"""Per-acquisition tasks on a local process pool and on a real Dask cluster (scheduler and
worker on 127.0.0.1) give the serial results."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from click.testing import CliRunner

from railwatch.cli.main import cli
from test_crash import _aoi, _archive

distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster():
    if not (BIN / "dask").exists():
        pytest.skip(f"no 'dask' command next to {sys.executable}")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    common = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sched = subprocess.Popen(
        [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--dashboard-address", ":0"], **common,
    )  # fmt: skip
    worker = subprocess.Popen(
        [BIN / "dask", "worker", address, "--nthreads", "1", "--nworkers", "1",
         "--no-dashboard", "--host", "127.0.0.1"], **common,
    )  # fmt: skip
    try:
        ready = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not ready:
            try:
                with distributed.Client(address, timeout="2s") as client:
                    ready = bool(client.scheduler_info()["workers"])
            except OSError:
                pass
            if not ready:
                time.sleep(0.5)
        if not ready:
            pytest.fail("the Dask scheduler and worker did not come up within 60 s")
        yield address
    finally:
        for p in (worker, sched):
            p.terminate()
        for p in (worker, sched):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def _serial_and(tmp_path, *extra):
    """counts.csv and railcars.gpkg of a serial run and of a run with ``extra`` options,
    on a five-date archive with an AOI only (tracks extracted on the executor too)."""
    img = tmp_path / "img"
    scene = _archive(img, [f"202403{d:02d}" for d in range(1, 6)])
    aoi = _aoi(tmp_path / "aoi.geojson", scene)
    runs = {}
    for name, opts in (("serial", []), ("other", list(extra))):
        out = tmp_path / name
        r = CliRunner().invoke(
            cli, ["count", str(img), "--aoi", str(aoi), "--out", str(out), *opts]
        )
        assert r.exit_code == 0, r.output
        runs[name] = out
    return runs["serial"], runs["other"]


def _assert_same_results(a_dir, b_dir):
    a = pd.read_csv(a_dir / "counts.csv")
    b = pd.read_csv(b_dir / "counts.csv")
    pd.testing.assert_frame_equal(a, b)
    assert a["railcars"].notna().all()
    for layer in ("railcars", "tracks"):
        va = gpd.read_file(a_dir / "railcars.gpkg", layer=layer)
        vb = gpd.read_file(b_dir / "railcars.gpkg", layer=layer)
        assert len(va) == len(vb) > 0
        assert va.drop(columns="geometry").equals(vb.drop(columns="geometry"))
        assert va.geometry.geom_equals_exact(vb.geometry, 1e-6).all()
    # The figure's formats are drawn as separate tasks on a pool: the same bytes.
    for name in ("timeseries.png", "timeseries.svg"):
        assert (a_dir / name).read_bytes() == (b_dir / name).read_bytes()


def test_local_pool_gives_the_serial_results(tmp_path):
    _assert_same_results(*_serial_and(tmp_path, "--workers", "2"))


@pytest.mark.dask
def test_dask_cluster_gives_the_serial_results(tmp_path, cluster):
    _assert_same_results(*_serial_and(tmp_path, "--scheduler", cluster))

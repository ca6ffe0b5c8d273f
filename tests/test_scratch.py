"""Scenes read by pool workers are handed on through a scratch folder, not pickled."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner

from railwatch import pipeline
from railwatch.cli.main import cli
from railwatch.imagery import discover, group_acquisitions, read_acquisition
from test_crash import GRID, _aoi, _archive


def test_a_scene_left_in_the_scratch_folder_loads_as_read(tmp_path):
    _archive(tmp_path / "img", ["20240301"])
    (acq,) = group_acquisitions(discover([tmp_path / "img"])[0])
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    ref, gray, valid, _ = pipeline._stack_read_task(acq, GRID, None, 10**7, str(scratch))
    read = read_acquisition(acq, GRID)
    assert isinstance(ref, pipeline.SceneRef)
    assert sorted(p.suffix for p in scratch.iterdir()) == [".npy", ".npy"]
    scene = ref.load()
    assert scene.data.dtype == np.float32 and scene.data.shape == (3, 120, 300)
    assert np.array_equal(scene.data, read.data) and np.array_equal(scene.valid, read.valid)
    assert (scene.datetime, scene.bands, scene.grid) == (read.datetime, read.bands, read.grid)
    assert np.array_equal(gray, read.gray()) and np.array_equal(valid, read.valid)
    # Copy-on-write: a task that writes into its scene does not change the next one's.
    scene.data[:] = 0
    assert np.array_equal(ref.load().data, read.data)
    # Without a scratch folder (serial runs, clusters) the scene itself travels.
    assert pipeline._stack_read_task(acq, GRID, None, 10**7)[0].data.shape == (3, 120, 300)


def test_a_pool_run_removes_its_scratch_folder_and_those_of_killed_runs(tmp_path, monkeypatch):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    killed = tmp / f"{pipeline.SCRATCH_PREFIX}{int(gone.stdout)}-x1"
    killed.mkdir()
    (killed / "0.data.npy").write_bytes(b"left by a SIGKILLed run")
    running = tmp / f"{pipeline.SCRATCH_PREFIX}{os.getppid()}-x2"
    running.mkdir()

    img = tmp_path / "img"
    scene = _archive(img, [f"202403{d:02d}" for d in range(1, 5)])
    aoi = _aoi(tmp_path / "aoi.geojson", scene)
    counts = {}
    for workers in ("1", "2"):
        out = tmp_path / f"out{workers}"
        args = ["count", str(img), "--aoi", str(aoi), "--out", str(out), "--workers", workers]
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 0, r.output
        counts[workers] = pd.read_csv(out / "counts.csv")
    pd.testing.assert_frame_equal(counts["1"], counts["2"])
    assert sorted(p.name for p in tmp.iterdir()) == [running.name]
    assert Path(running).is_dir()


def test_each_site_clears_its_scenes_from_a_shared_pools_scratch_folder(tmp_path, monkeypatch):
    from railwatch.site import site_from_aoi

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    img = tmp_path / "img"
    scene = _archive(img, [f"202403{d:02d}" for d in range(1, 5)])
    site = site_from_aoi(_aoi(tmp_path / "aoi.geojson", scene))
    released = []
    release = pipeline._release
    monkeypatch.setattr(pipeline, "_release", lambda s: (released.append(list(s)), release(s)))
    with pipeline.Executor(workers=2) as ex:
        for name in ("a", "b"):
            result = pipeline.run_count([img], site, tmp_path / name, executor=ex, report=False)
            assert len(result.counts) == 4
            # The four scenes went through the folder, and none is left for the next site.
            assert [type(s) for s in released.pop()] == [pipeline.SceneRef] * 4
            assert Path(ex.scratch).is_dir() and not any(Path(ex.scratch).iterdir())
        folder = ex.scratch
    assert not Path(folder).exists()

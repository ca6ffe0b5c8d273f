"""SIGKILL while the outputs are being replaced, and two real runs on one directory.

tests/test_crash.py kills a run while it analyses acquisitions. Here the kill lands in
the output-writing stage itself: the subprocess kills itself with SIGKILL at the N-th
rename of a finished temporary file over an output, the worst moment for a reader.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyogrio
import pytest
from click.testing import CliRunner

from railwatch.cli.main import cli
from test_crash import OUTPUTS, _aoi, _archive

# ``railwatch count`` with os.replace patched: at the N-th rename the process either
# kills itself (kill) or announces itself and waits for a file to appear (wait).
WRAPPER = """
import os, signal, sys, time
action, n, flag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
real, calls = os.replace, [0]
def replace(src, dst, **kw):
    calls[0] += 1
    if calls[0] == n:
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        print("writing", flush=True)
        while not os.path.exists(flag):
            time.sleep(0.05)
    return real(src, dst, **kw)
os.replace = replace
from railwatch.cli.main import cli
cli(sys.argv[4:], prog_name="railwatch")
"""


def _wrapped(action, n, flag, *args):
    cmd = [sys.executable, "-c", WRAPPER, action, str(n), str(flag), "count", *map(str, args)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _valid(out):
    """Every output parses: the tables, the GeoPackage layers and run.json."""
    for name in ("counts.csv", "weekly.csv", "scenes.csv"):
        assert len(pd.read_csv(out / name)) > 0, name
    layers = {name for name, _ in pyogrio.list_layers(out / "railcars.gpkg")}
    assert layers == {"railcars", "tracks", "aoi", "footprints"}
    pyogrio.read_dataframe(out / "railcars.gpkg", layer="railcars")
    json.loads((out / "run.json").read_text())


def _temps(out):
    return sorted(p.name for p in out.iterdir() if p.is_file() and p.name.startswith("."))


@pytest.mark.parametrize("nth", [1, 3])
def test_sigkill_while_replacing_outputs(tmp_path, nth):
    img, out = tmp_path / "img", tmp_path / "out"
    scene = _archive(img, ["20240301", "20240308", "20240315"])
    aoi = _aoi(tmp_path / "aoi.geojson", scene)
    args = [img, "--aoi", aoi, "--out", out, "--no-progress"]
    r = CliRunner().invoke(cli, ["count", *map(str, args)])
    assert r.exit_code == 0, r.output
    before = {name: (out / name).read_bytes() for name in OUTPUTS}

    _archive(img, ["20240322"], seed0=40)
    proc = _wrapped("kill", nth, tmp_path / "unused", *args)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL

    # Every file is whole: the old version or the new one, never a mixture. Outputs
    # written in order railcars.gpkg, scenes.csv, counts.csv, ...: the nth and later
    # are still the previous run's, byte for byte.
    _valid(out)
    order = ["railcars.gpkg", "scenes.csv", "counts.csv", "weekly.csv"]
    for name in order[nth - 1 :]:
        assert (out / name).read_bytes() == before[name], name
    assert (out / "run.json").read_bytes() == before["run.json"]
    assert len(pd.read_csv(out / "counts.csv")) == 3
    # The killed writer's temporary file is left behind, under a hidden name.
    assert len(_temps(out)) == 1 and _temps(out)[0].startswith(f".{order[nth - 1]}.")

    # The next run finds the new acquisition already analysed, rewrites every output
    # and removes the stale temporary file.
    r = CliRunner().invoke(cli, ["count", *map(str, args)])
    assert r.exit_code == 0, r.output
    assert "0 analysed now, 4 from earlier runs" in r.stderr
    _valid(out)
    assert len(pd.read_csv(out / "counts.csv")) == 4
    assert _temps(out) == []


def test_a_second_real_run_is_refused_while_the_first_writes(tmp_path):
    img, out = tmp_path / "img", tmp_path / "out"
    scene = _archive(img, ["20240301", "20240308"])
    aoi = _aoi(tmp_path / "aoi.geojson", scene)
    args = [img, "--aoi", aoi, "--out", out, "--no-progress"]
    go = tmp_path / "go"
    first = _wrapped("wait", 1, go, *args)
    try:
        # The first run is in its writing stage, holding the lock, until ``go`` exists.
        assert first.stdout.readline().strip() == "writing"
        holder = (out / ".railwatch" / "lock").read_text()
        assert f"pid {first.pid} since" in holder
        t0 = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "railwatch", "count", *map(str, args)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert second.returncode == 3
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, second.stderr
        assert lines[0].startswith("Error: ") and f"pid {first.pid}" in lines[0]
        assert str(out) in lines[0] and "another railwatch run" in lines[0]
        assert second.stdout == ""
        # Refused at once, not after waiting for the lock.
        assert time.monotonic() - t0 < 60
        go.touch()
        stdout, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, stderr
    assert "2024-03-08" in stdout
    _valid(out)
    assert len(pd.read_csv(out / "counts.csv")) == 2
    assert _temps(out) == []


# ``railwatch count`` whose per-acquisition analysis (in the pool workers, forked after
# this patch) announces itself with a file and then takes a minute.
SLOW_ANALYSIS = """
import functools, sys, time
from pathlib import Path
import railwatch.pipeline as pipeline
flag, real = Path(sys.argv[1]), pipeline._process_task
@functools.wraps(real)
def slow(*args, **kwargs):
    flag.touch()
    time.sleep(60)
    return real(*args, **kwargs)
pipeline._process_task = slow
from railwatch.cli.main import cli
cli(sys.argv[2:], prog_name="railwatch")
"""


def _children(pid):
    """Live (not zombie) processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _pool_run_analysing(tmp_path):
    """A real ``count --workers 2`` subprocess, returned once its pool is analysing."""
    img, out = tmp_path / "img", tmp_path / "out"
    scene = _archive(img, ["20240301", "20240308", "20240315"])
    aoi = _aoi(tmp_path / "aoi.geojson", scene)
    args = [img, "--aoi", aoi, "--out", out, "--no-progress"]
    flag = tmp_path / "analysing"
    cmd = [sys.executable, "-c", SLOW_ANALYSIS, flag, "count", *args, "--workers", "2"]
    proc = subprocess.Popen(list(map(str, cmd)), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not flag.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the pool never started analysing: {proc.communicate()}")
        time.sleep(0.05)
    return proc, args, out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_a_pool_run_ends_its_workers_and_frees_the_lock(tmp_path):
    proc, args, out = _pool_run_analysing(tmp_path)
    workers = _children(proc.pid)
    try:
        assert len(workers) == 2
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 20
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(w) for w in workers), "pool workers outlived the run"
    finally:
        for w in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(w, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
    # The lock went with them: the next run (cron's next week) is not refused.
    r = CliRunner().invoke(cli, ["count", *map(str, args)])
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(out / "counts.csv")) == 3


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_pool_worker_killed_mid_run_is_one_clear_error(tmp_path):
    # As the kernel's OOM killer would: one worker of a --workers run gets SIGKILL.
    proc, args, out = _pool_run_analysing(tmp_path)
    try:
        os.kill(_children(proc.pid)[0], signal.SIGKILL)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, stderr
    assert stderr.strip().splitlines() == [
        "Error: a worker process ended abruptly (killed, perhaps by the system for lack of "
        "memory); acquisitions finished before are kept: run again to finish, with fewer "
        "--workers if memory is short"
    ]
    r = CliRunner().invoke(cli, ["count", *map(str, args)])
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(out / "counts.csv")) == 3

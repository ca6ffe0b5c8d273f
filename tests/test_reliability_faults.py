"""Reliability, faults while writing (issue 6): nothing is lost, nothing half-written.

Each test starts from the outputs of a successful run, adds a new acquisition, and breaks
the re-run: a read-only output directory, a full disk (a real per-process file size limit
in a child, and ENOSPC at a chosen file in-process), Ctrl-C inside the run and SIGINT to a
child process. Afterwards: the documented exit code, one ``Error:`` line naming the file,
no traceback, no temporary file, and the previous outputs still readable.
(SIGKILL-then-rerun lives in tests/test_kill.py.)
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from reliability import (
    OUTPUT_FILES,
    assert_clean_error,
    child_command,
    cli_subprocess,
    copy_outputs,
    leftovers,
    run,
    snapshot,
    without_root_file_powers,
    write_aoi,
    write_yard,
)


@pytest.fixture(scope="module")
def previous(tmp_path_factory):
    """A finished output directory for one acquisition, and a folder with a second one."""
    tmp = tmp_path_factory.mktemp("faults")
    img = tmp / "img"
    img.mkdir()
    write_yard(img / "20240617_yard.tif")
    aoi = write_aoi(tmp / "aoi.geojson")
    out = tmp / "out"
    r = run("count", img, "--aoi", aoi, "--out", out)
    assert r.exit_code == 0, r.output
    write_yard(img / "20240624_yard.tif", seed=2)  # what the next (broken) run adds
    return img, aoi, out


@pytest.fixture
def prev_copy(previous, tmp_path):
    img, aoi, out = previous
    mine = copy_outputs(out, tmp_path / "out")
    return img, aoi, mine, snapshot(mine)


def _readable(out):
    for name in OUTPUT_FILES:
        assert (out / name).stat().st_size > 0
    assert len(pd.read_csv(out / "counts.csv")) == 1


def _chmod_tree(path, mode_dir, mode_file, *, skip=".railwatch"):
    for p in [path, *path.rglob("*")]:
        if skip in p.parts:
            continue
        os.chmod(p, mode_dir if p.is_dir() else mode_file)


# ----------------------------------------------------------------------------- read-only


def test_read_only_output_directory(prev_copy):
    """The state stays writable, the output folder does not: writing fails cleanly."""
    img, aoi, out, before = prev_copy
    _chmod_tree(out, 0o555, 0o444)
    try:
        r = cli_subprocess(
            ["count", img, "--aoi", aoi, "--out", out, "--no-progress"],
            preexec_fn=without_root_file_powers,
        )
    finally:
        _chmod_tree(out, 0o755, 0o644)
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        f"Error: {out / 'railcars.gpkg'}: output location is not writable; previous outputs "
        "are intact"
    ]
    assert snapshot(out) == before
    assert leftovers(out) == []
    # Once the folder is writable again the same command completes.
    r = run("count", img, "--aoi", aoi, "--out", out)
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(out / "counts.csv")) == 2


# ----------------------------------------------------------------------------- disk full


def _file_size_limit(limit):  # pragma: no cover - runs in the child before exec
    def apply():
        # With SIGXFSZ ignored, writes past the limit fail with EFBIG like a full disk.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_file_size_limit_while_writing_keeps_previous_outputs(prev_copy):
    """A real kernel write failure (EFBIG) in whatever writes first past 40 kB.

    That is the run-state database (its pages outgrow the limit first); it must become
    one clean error, not an sqlite3 traceback.
    """
    img, aoi, out, before = prev_copy
    r = cli_subprocess(
        ["count", img, "--aoi", aoi, "--out", out, "--no-progress"],
        preexec_fn=_file_size_limit(40_000),
    )
    assert r.returncode == 3, r.stderr
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, r.stderr
    assert errors[0].startswith(f"Error: {out / '.railwatch' / 'state.sqlite'}: ")
    assert "previous outputs are intact" in errors[0], errors
    assert snapshot(out) == before
    assert leftovers(out) == []
    _readable(out)


class _FullDisk:
    """A file opened for writing whose writes fail with ENOSPC, as on a full disk."""

    def __init__(self, fh):
        self.fh = fh

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()

    def write(self, b):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def flush(self):
        self.fh.flush()

    def fileno(self):
        return self.fh.fileno()


def test_disk_full_on_counts_csv(prev_copy, monkeypatch):
    import builtins

    import railwatch.outputs

    img, aoi, out, before = prev_copy
    real_open = builtins.open

    def open_(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        if "w" in mode and os.path.basename(str(file)).startswith(".counts.csv."):
            return _FullDisk(fh)
        return fh

    monkeypatch.setattr(railwatch.outputs, "open", open_, raising=False)
    r = run("count", img, "--aoi", aoi, "--out", out)
    assert_clean_error(
        r, 3, f"{out / 'counts.csv'}: no space left on device; previous outputs are intact"
    )
    after = snapshot(out)
    assert after["counts.csv"] == before["counts.csv"]
    assert after["weekly.csv"] == before["weekly.csv"]
    assert after["run.json"] == before["run.json"]
    assert leftovers(out) == []
    _readable(out)


# ----------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_during_analysis_exits_130_then_rerun_completes(prev_copy, monkeypatch):
    import railwatch.pipeline

    img, aoi, out, before = prev_copy

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(railwatch.pipeline, "analyse_scene", interrupted)
    r = run("count", img, "--aoi", aoi, "--out", out)
    assert r.exit_code == 130
    assert "Aborted: interrupted; outputs of completed steps are intact." in r.stderr
    assert "Traceback" not in r.output
    assert snapshot(out) == before
    assert leftovers(out) == []
    monkeypatch.undo()
    r = run("count", img, "--aoi", aoi, "--out", out)
    assert r.exit_code == 0, r.output
    assert len(pd.read_csv(out / "counts.csv")) == 2


def test_ctrl_c_while_a_file_is_half_written(prev_copy, monkeypatch):
    """The interrupt arrives between writing a temporary file and renaming it."""
    img, aoi, out, before = prev_copy
    seen = []

    def fsync(fd):
        seen.append(fd)
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", fsync)
    r = run("count", img, "--aoi", aoi, "--out", out)
    assert r.exit_code == 130 and seen
    assert leftovers(out) == []
    assert snapshot(out)["scenes.csv"] == before["scenes.csv"]
    assert snapshot(out)["counts.csv"] == before["counts.csv"]


@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")],
    ids=["SIGINT", "SIGTERM"],
)
def test_signal_to_a_running_process(prev_copy, tmp_path, sig, code, word):
    """A real SIGINT / SIGTERM to a child held inside an atomic write (a slow disk)."""
    img, aoi, out, before = prev_copy
    marker = tmp_path / "writing"
    prelude = (
        "import faulthandler, os, signal, time\n"
        # A shell's background job (`cmd &`, as CI scripts start the suite) inherits
        # SIGINT ignored, and Python keeps it so: a user's Ctrl-C reaches a foreground run.
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        # On a hang the test asks for every thread's stack (SIGUSR1) before killing.
        "faulthandler.register(signal.SIGUSR1)\n"
        "def slow_fsync(fd):\n"
        f"    open({str(marker)!r}, 'w').close()\n"
        "    time.sleep(60)\n"
        "os.fsync = slow_fsync\n"
    )
    proc = subprocess.Popen(
        child_command(["count", img, "--aoi", aoi, "--out", out, "--no-progress"], prelude),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the child never started writing"
            time.sleep(0.05)
        temp_files = leftovers(out)
        assert temp_files, "a temporary file exists while the write is held"
        proc.send_signal(sig)
        try:
            _, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            # Intermittent in full-suite runs (issue 5): keep where the child hangs and
            # its blocked / ignored signal masks (SIGINT is bit 2, mask 0x2).
            status = Path(f"/proc/{proc.pid}/status")
            masks = [ln for ln in status.read_text().splitlines() if ln.startswith("Sig")]
            proc.send_signal(signal.SIGUSR1)
            time.sleep(1)
            proc.kill()
            _, stderr = proc.communicate()
            tail = stderr[-4000:]
            pytest.fail(f"still running 30 s after {sig.name}; {masks}; its stderr:\n{tail}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, stderr
    assert f"Aborted: {word}; outputs of completed steps are intact." in stderr
    assert "Traceback" not in stderr
    assert leftovers(out) == []
    after = snapshot(out)
    for name in ("counts.csv", "weekly.csv", "run.json", "scenes.csv"):
        assert after[name] == before[name], name


def test_disk_full_inside_gdal_while_writing_the_geopackage(prev_copy, monkeypatch):
    """GDAL reports a full disk with its own exception type, not OSError."""
    import geopandas
    import pyogrio.errors

    img, aoi, out, before = prev_copy

    def to_file(self, path, *args, **kwargs):
        with open(path, "wb") as fh:  # a partial file, as GDAL leaves one
            fh.write(b"SQLite format 3\x00 partial")
        raise pyogrio.errors.DataSourceError(f"{path}: No space left on device")

    monkeypatch.setattr(geopandas.GeoDataFrame, "to_file", to_file)
    r = run("count", img, "--aoi", aoi, "--out", out)
    assert_clean_error(
        r, 3, f"{out / 'railcars.gpkg'}: no space left on device; previous outputs are intact"
    )
    assert snapshot(out) == before
    assert leftovers(out) == []

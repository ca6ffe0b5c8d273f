import errno
import os
import subprocess
import sys
import time

import pytest

from railwatch.errors import OutputError
from railwatch.outputs import write_text
from railwatch.state import RunLocked, State, config_fingerprint, run_lock

HOLD = """
import sys, time
from railwatch.state import run_lock
with run_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(30)
"""


def test_second_run_is_refused_while_first_holds_lock(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        with (
            pytest.raises(RunLocked, match="another railwatch run is writing here"),
            run_lock(tmp_path),
        ):
            pass
    finally:
        proc.kill()
        proc.wait()
    # The kernel drops the lock with the killed process: no stale lock.
    deadline = time.time() + 5
    while True:
        try:
            with run_lock(tmp_path):
                break
        except RunLocked:
            assert time.time() < deadline
            time.sleep(0.1)


def test_state_roundtrip_and_reset(tmp_path):
    s = State(tmp_path)
    assert s.latest_stack() is None
    with s.transaction():
        v = s.save_stack(3, {"tracks": [1, 2]})
    assert v == 1
    with s.transaction():
        s.save_acquisition("20240101T000000", "abc", v, {"railcars": 4})
    assert s.fingerprints() == {"20240101T000000": ("abc", 1)}
    assert s.stored()["20240101T000000"].payload == {"railcars": 4}
    assert s.latest_stack()[0:2] == (1, 3)
    # A rebuilt stack replaces the old one and numbers on.
    with s.transaction():
        assert s.save_stack(6, {"tracks": [1]}) == 2
    assert s.db.execute("SELECT version FROM stack").fetchall() == [(2,)]
    assert s.latest_stack()[0:2] == (2, 6)
    s.reset()
    assert s.fingerprints() == {} and s.latest_stack() is None
    s.close()


def test_checksums_are_cached_by_size_and_mtime(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"hello")
    s = State(tmp_path / "out")
    h1 = s.sha256([str(f)])[str(f)]
    assert h1 == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    f.write_bytes(b"hello!")
    assert s.sha256([str(f)])[str(f)] != h1
    s.close()


def test_config_fingerprint_changes_with_version_and_config():
    a = config_fingerprint({"x": 1}, "0.1.0")
    assert a == config_fingerprint({"x": 1}, "0.1.0")
    assert a != config_fingerprint({"x": 2}, "0.1.0")
    assert a != config_fingerprint({"x": 1}, "0.2.0")


@pytest.mark.parametrize(
    ("err", "message"),
    [(errno.ENOSPC, "no space left on device"), (errno.EROFS, "not writable")],
)
def test_failed_write_keeps_previous_file_and_leaves_no_temp(tmp_path, monkeypatch, err, message):
    target = tmp_path / "counts.csv"
    write_text(target, "old\n")

    def fail(*args, **kwargs):
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr("railwatch.outputs.os.replace", fail)
    with pytest.raises(OutputError, match=message) as info:
        write_text(target, "new\n")
    assert str(target) in str(info.value)
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counts.csv"]

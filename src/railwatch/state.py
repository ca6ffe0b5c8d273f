"""Run state kept in the output directory: an SQLite database and a lock.

The database (``DIR/.railwatch/state.sqlite``) stores, per acquisition, the result of its
analysis with the fingerprint of its inputs, and the stack-level products (reference
image, tracks, empty-track model) they were analysed with. A re-run processes only
acquisitions whose fingerprint is new or changed. See docs/operations.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import functools
import hashlib
import json
import os
import pickle
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from railwatch.errors import OutputError, RailwatchError

__all__ = ["RunLocked", "State", "run_lock", "file_fingerprint", "config_fingerprint"]

STATE_DIR = ".railwatch"
SCHEMA_VERSION = 1


class RunLocked(RailwatchError):
    """Another railwatch run holds the output directory."""


@contextlib.contextmanager
def run_lock(out_dir: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out_dir`` for the duration of a run.

    The lock is an ``flock`` on ``DIR/.railwatch/lock``; the kernel releases it when the
    process ends, however it ends, so a killed run never leaves a stale lock.

    Raises
    ------
    RunLocked
        When another process holds the lock.
    """
    d = Path(out_dir) / STATE_DIR
    try:
        d.mkdir(parents=True, exist_ok=True)
        fh = open(d / "lock", "a+")  # noqa: SIM115 - held open for the whole run
    except OSError as exc:
        raise OutputError(out_dir, f"cannot create the run lock ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                raise RunLocked(
                    f"{out_dir}: another railwatch run is writing here ({holder}); "
                    "try again when it has finished"
                ) from None
            raise
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}\n")
        fh.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


def file_fingerprint(path: str) -> tuple[str, int, int]:
    """(path, size, mtime_ns) - a cheap identity for a local file; remote paths hash the URL."""
    if path.startswith("/vsi"):
        return (path, -1, -1)
    st = os.stat(path)
    return (os.path.realpath(path), st.st_size, st.st_mtime_ns)


@functools.cache
def software_fingerprint() -> str:
    """The version plus a hash of the package's own source files.

    A development build keeps its version string while its detector changes; results and
    stack products stored by other code (whose pickled objects may lack fields the new
    code reads) must not be reused. Hashed once per process (about a millisecond).
    """
    from railwatch._version import __version__

    h = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return f"{__version__}+{h.hexdigest()[:16]}"


def config_fingerprint(config: dict[str, Any], version: str) -> str:
    """Hash of the resolved configuration and software version."""
    blob = json.dumps({"config": config, "version": version}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredAcquisition:
    """One stored per-acquisition result."""

    acq_id: str
    fingerprint: str
    stack_version: int
    payload: Any


class State:
    """The run-state database of one output directory."""

    def __init__(self, out_dir: str | Path) -> None:
        self.path = Path(out_dir) / STATE_DIR / "state.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._init()
        except sqlite3.DatabaseError as exc:
            raise OutputError(
                self.path, f"state database unusable ({exc}); delete it or use --force"
            ) from None

    def _init(self) -> None:
        self.db.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
            CREATE TABLE IF NOT EXISTS acquisitions (
                acq_id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL,
                stack_version INTEGER NOT NULL, processed_at TEXT NOT NULL, payload BLOB);
            CREATE TABLE IF NOT EXISTS stack (
                version INTEGER PRIMARY KEY, built_at TEXT NOT NULL,
                n_acquisitions INTEGER NOT NULL, payload BLOB);
            CREATE TABLE IF NOT EXISTS checksums (
                path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT);
            """
        )
        if self.get_meta("schema") is None:
            self.set_meta("schema", str(SCHEMA_VERSION))

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    # -- meta
    def get_meta(self, key: str) -> str | None:
        """Value stored under ``key``, or None."""
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``."""
        with self._errors():
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def reset(self) -> None:
        """Forget every stored result (``--force`` or a changed configuration)."""
        with self.transaction():
            self.db.execute("DELETE FROM acquisitions")
            self.db.execute("DELETE FROM stack")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes so a killed run leaves either all or none of them.

        Database failures (disk full, read-only file, I/O error) become
        :class:`OutputError` naming the database; the transaction is rolled back.
        """
        with self._errors():
            self.db.execute("BEGIN IMMEDIATE")
        try:
            with self._errors():
                yield
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            raise
        try:
            with self._errors():
                self.db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn SQLite failures into :class:`OutputError` naming the database."""
        try:
            yield
        except sqlite3.Error as exc:
            text = str(exc)
            if "full" in text or "too large" in text:
                problem = f"cannot write the run state ({text}); previous outputs are intact"
            elif "readonly" in text or "read-only" in text:
                problem = "run state is read-only; previous outputs are intact"
            else:
                problem = f"cannot use the run state ({text}); previous outputs are intact"
            raise OutputError(self.path, problem) from None

    # -- stack products
    def latest_stack(self) -> tuple[int, int, Any] | None:
        """(version, n_acquisitions, products) of the newest stack, or None."""
        row = self.db.execute(
            "SELECT version, n_acquisitions, payload FROM stack ORDER BY version DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return int(row[0]), int(row[1]), pickle.loads(row[2])

    def save_stack(self, n_acquisitions: int, products: Any) -> int:
        """Store new stack products, replacing older ones; returns their version number.

        Only the newest products are ever read (acquisitions analysed with older ones are
        analysed again), so older versions are dropped: each holds the reference image
        and the anchors' edge images, megabytes on a yard's grid.
        """
        row = self.db.execute("SELECT MAX(version) FROM stack").fetchone()
        version = 1 if row[0] is None else int(row[0]) + 1
        self.db.execute(
            "INSERT INTO stack VALUES (?, ?, ?, ?)",
            (version, _now(), n_acquisitions, pickle.dumps(products, protocol=5)),
        )
        self.db.execute("DELETE FROM stack WHERE version < ?", (version,))
        return version

    # -- acquisitions
    def stored(self) -> dict[str, StoredAcquisition]:
        """Every stored acquisition by id."""
        out = {}
        for acq_id, fp, sv, payload in self.db.execute(
            "SELECT acq_id, fingerprint, stack_version, payload FROM acquisitions"
        ):
            out[acq_id] = StoredAcquisition(acq_id, fp, int(sv), pickle.loads(payload))
        return out

    def fingerprints(self) -> dict[str, tuple[str, int]]:
        """acq_id -> (fingerprint, stack_version), without loading payloads."""
        return {
            a: (fp, int(sv))
            for a, fp, sv in self.db.execute(
                "SELECT acq_id, fingerprint, stack_version FROM acquisitions"
            )
        }

    def save_acquisition(
        self, acq_id: str, fingerprint: str, stack_version: int, payload: Any
    ) -> None:
        """Store (or replace) one acquisition's result."""
        self.db.execute(
            "INSERT OR REPLACE INTO acquisitions VALUES (?, ?, ?, ?, ?)",
            (acq_id, fingerprint, stack_version, _now(), pickle.dumps(payload, protocol=5)),
        )

    # -- checksums
    def sha256(self, paths: Sequence[str]) -> dict[str, str]:
        """SHA-256 of each local file, recomputed only when its size or mtime changed."""
        from railwatch.outputs import sha256_file

        out: dict[str, str] = {}
        for p in paths:
            if p.startswith("/vsi"):
                continue
            st = os.stat(p)
            row = self.db.execute(
                "SELECT size, mtime_ns, sha256 FROM checksums WHERE path=?", (p,)
            ).fetchone()
            if row is not None and row[0] == st.st_size and row[1] == st.st_mtime_ns:
                out[p] = row[2]
                continue
            digest = sha256_file(p)
            with self._errors():
                self.db.execute(
                    "INSERT OR REPLACE INTO checksums VALUES (?, ?, ?, ?)",
                    (p, st.st_size, st.st_mtime_ns, digest),
                )
            out[p] = digest
        return out


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

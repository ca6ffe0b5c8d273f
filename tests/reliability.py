"""Shared builders and checks for the tests/test_reliability_*.py modules (issue 6).

A *yard* is the clean rendered fixture of tests/detect_fixtures.py written as an 8-bit
RGB GeoTIFF, with its AOI as a GeoJSON in UTM 52N. Everything is a few hundred pixels.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner, Result
from shapely.geometry import mapping

from detect_fixtures import CRS, make_grid, render, straight_line, train
from railwatch.cli.main import cli
from rasters import write_geotiff

GRID = make_grid(240, 100, 0.5)
LINES = [straight_line(GRID, 18.0), straight_line(GRID, 34.0)]
CARS = train(0, 15.0, [13.92, 13.92, 12.02, 15.35]) + train(1, 50.0, [13.92, 13.92])
SCENES_COLUMNS = ["path", "status", "reason", "datetime", "crs", "gsd_m"]
OUTPUT_FILES = ("counts.csv", "weekly.csv", "scenes.csv", "railcars.gpkg", "run.json")


def yard_dn(seed: int = 1) -> np.ndarray:
    """(3, H, W) uint8 rendering of the fixture yard on GRID."""
    scene = render(GRID, LINES, CARS, seed=seed)
    return np.round(scene.data * 255).astype(np.uint8)


def write_yard(path: Path, seed: int = 1, **kwargs) -> Path:
    """The yard as an 8-bit RGB GeoTIFF on GRID (extra kwargs go to write_geotiff)."""
    kwargs.setdefault("crs", CRS)
    kwargs.setdefault("transform", GRID.transform)
    return write_geotiff(path, yard_dn(seed), **kwargs)


def aoi_geom():
    """The yard AOI (UTM 52N): the grid less 2 m on each side."""
    minx, miny, maxx, maxy = GRID.bounds
    from shapely.geometry import box

    return box(minx + 2, miny + 2, maxx - 2, maxy - 2)


def write_geojson(path: Path, geoms, *, epsg: int | None = 32652, props=None) -> Path:
    """Features of ``geoms`` as GeoJSON, declaring ``epsg`` (None: plain WGS84)."""
    fc: dict = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": (props or [{}] * len(geoms))[i], "geometry": g}
            for i, g in enumerate(mapping(g) for g in geoms)
        ],
    }
    if epsg is not None:
        fc["crs"] = {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}"}}
    path.write_text(json.dumps(fc))
    return path


def write_aoi(path: Path) -> Path:
    """The yard AOI as GeoJSON in UTM 52N."""
    return write_geojson(path, [aoi_geom()])


def run(*args) -> Result:
    """``railwatch ARGS`` in-process, stdout and stderr kept apart."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def scenes(out: Path) -> pd.DataFrame:
    """scenes.csv with empty cells as ''."""
    df = pd.read_csv(out / "scenes.csv", keep_default_na=False)
    assert list(df.columns) == SCENES_COLUMNS
    return df


def rows_by_name(out: Path) -> dict[str, tuple[str, str]]:
    """File name -> (status, reason) from scenes.csv."""
    return {
        os.path.basename(p): (s, r) for p, s, r in scenes(out)[["path", "status", "reason"]].values
    }


def assert_clean_error(r: Result, code: int, *names: str) -> str:
    """Exit ``code``, no traceback, and exactly one ``Error:`` line naming every name."""
    assert r.exit_code == code, (r.exit_code, r.output, r.exception)
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, r.stderr
    for n in names:
        assert n in errors[0], (n, errors[0])
    return errors[0]


def snapshot(out: Path) -> dict[str, bytes]:
    """Bytes of every file under ``out`` except the run state."""
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and ".railwatch" not in p.parts
    }


def leftovers(out: Path) -> list[str]:
    """Temporary files an atomic writer would leave behind (names starting with '.')."""
    return sorted(
        str(p.relative_to(out))
        for p in out.rglob(".*")
        if p.is_file() and ".railwatch" not in p.parts
    )


def copy_outputs(src: Path, dst: Path) -> Path:
    """A private copy of a finished output directory (state included)."""
    shutil.copytree(src, dst)
    return dst


@dataclass
class Proc:
    """A finished ``railwatch`` subprocess."""

    returncode: int
    stdout: str
    stderr: str


PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2


def without_root_file_powers() -> None:  # pragma: no cover - runs in the child before exec
    """Drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the bounding set.

    After exec even uid 0 obeys file modes, so chmod really refuses reads and writes:
    permission tests run unmocked as root too. A no-op for other users.
    """
    if os.geteuid() != 0:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def child_command(args, prelude: str = "") -> list[str]:
    """argv running ``railwatch ARGS`` in a fresh interpreter after ``prelude`` code."""
    code = f"{prelude}\nfrom railwatch.cli.main import cli\ncli()"
    return [sys.executable, "-c", code, *map(str, args)]


def cli_subprocess(
    args, *, timeout=120, env=None, preexec_fn=None, cwd=None, prelude: str = ""
) -> Proc:
    """``railwatch ARGS`` in a fresh interpreter (after ``prelude`` code)."""
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run(
        child_command(args, prelude),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=e,
        preexec_fn=preexec_fn,
        cwd=cwd,
    )
    return Proc(p.returncode, p.stdout, p.stderr)

"""The counting pipeline: per-acquisition tasks and the stack-level reductions between them.

Data flows one way (DESIGN.md): discover -> group -> read (per acquisition) -> align ->
tracks and empty-track model (reductions over the stack) -> analyse (per acquisition) ->
tables -> outputs. Reading and analysing are independent tasks that run in a local
process pool.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from railwatch import align as align_mod
from railwatch._version import __version__
from railwatch.detect import SceneAnalysis, analyse_scene, learn_background
from railwatch.errors import NoUsableScenes, SceneReadError
from railwatch.imagery import (
    MAX_WINDOW_PIXELS,
    Acquisition,
    Rejection,
    Scene,
    SceneFile,
    discover,
    duplicate_files,
    finest_gsd,
    group_acquisitions,
    iso_utc,
    read_acquisition,
    warn_if_disjoint,
)
from railwatch.site import Site, SiteGrid, aoi_in_grid, make_grid, tracks_in_grid
from railwatch.tracks import Track, extract_tracks, tracks_from_lines
from railwatch.types import VEHICLE_TYPES

__all__ = ["AcquisitionResult", "RunResult", "run_count", "process_stack"]

logger = logging.getLogger(__name__)

MAX_SHIFT_M = 15.0
"""Largest georeferencing error searched for during alignment."""


@dataclass(frozen=True, slots=True)
class AcquisitionResult:
    """Everything railwatch concluded about one acquisition."""

    acquisition: Acquisition
    scene: Scene
    shift_px: tuple[float, float]
    analysis: SceneAnalysis

    @property
    def shift_m(self) -> float:
        """Length of the co-registration shift, metres."""
        return float(math.hypot(*self.shift_px) * self.scene.grid.resolution_m)

    def to_record(self) -> dict[str, Any]:
        """Row of ``counts.csv`` before baseline columns are added."""
        a, q = self.analysis, self.analysis.quality
        observable = a.railcars is not None
        rec: dict[str, Any] = {
            "date": self.acquisition.datetime.astimezone(dt.UTC).date(),
            "datetime": self.acquisition.datetime.astimezone(dt.UTC),
            "railcars": a.railcars,
            "railcars_low": a.railcars_low,
            "railcars_high": a.railcars_high,
            "status": q.status,
            "coverage": round(float(q.coverage), 4),
            "cloud": round(float(q.cloud), 4),
            "gsd_m": round(float(self.scene.gsd_m), 3),
            "shift_m": round(self.shift_m, 2),
            "n_tiles": len(self.acquisition.files),
        }
        for t in VEHICLE_TYPES:
            rec[t] = int(a.by_type.get(t, 0)) if observable else None
        rec["scenes"] = ";".join(os.path.basename(f.path) for f in self.acquisition.files)
        return rec


@dataclass(frozen=True, slots=True)
class StackResult:
    """Results of :func:`process_stack`."""

    grid: SiteGrid
    tracks: tuple[Track, ...]
    results: tuple[AcquisitionResult, ...]
    rejected: tuple[Rejection, ...]
    used_files: tuple[SceneFile, ...]


@dataclass(frozen=True, slots=True)
class RunResult:
    """What :func:`run_count` wrote, as tables."""

    out_dir: Path
    counts: pd.DataFrame
    weekly: pd.DataFrame
    scenes: pd.DataFrame
    n_rejected: int
    stack: StackResult = field(repr=False)


# ----------------------------------------------------------------------------- tasks


def _read_task(
    acq: Acquisition, grid: SiteGrid, band_mapping: dict[str, int] | None, max_pixels: int
) -> Scene | Rejection:
    try:
        return read_acquisition(acq, grid, band_mapping=band_mapping, max_pixels=max_pixels)
    except SceneReadError as exc:
        return Rejection(exc.path, exc.reason, acq.datetime)


def _analyse_task(
    scene: Scene,
    tracks: Sequence[Track],
    aoi: Any,
    site: Site,
    background: Any,
) -> SceneAnalysis:
    return analyse_scene(
        scene.data, scene.bands, scene.valid, scene.grid, tracks, aoi, site, background=background
    )


def _map(func: Callable[..., Any], args: list[tuple[Any, ...]], workers: int) -> list[Any]:
    if workers <= 1 or len(args) <= 1:
        return [func(*a) for a in args]
    with ProcessPoolExecutor(max_workers=min(workers, len(args))) as pool:
        futures = [pool.submit(func, *a) for a in args]
        return [f.result() for f in futures]


# ----------------------------------------------------------------------------- stack


def _shift_scene(scene: Scene, shift: tuple[float, float]) -> Scene:
    if shift == (0.0, 0.0):
        return scene
    data, valid = align_mod.apply_shift(scene.data, scene.valid, shift)
    return Scene(
        datetime=scene.datetime,
        data=data,
        valid=valid,
        grid=scene.grid,
        bands=scene.bands,
        sources=scene.sources,
        crs=scene.crs,
        gsd_m=scene.gsd_m,
    )


def align_scenes(scenes: Sequence[Scene]) -> list[tuple[float, float]]:
    """Co-registration shift (dy, dx) in pixels for every scene against the stack reference.

    The reference is rebuilt once from the aligned stack, so a reference blurred by the
    first round's misregistration does not bias the result.
    """
    if len(scenes) < 2:
        return [(0.0, 0.0)] * len(scenes)
    grid = scenes[0].grid
    max_px = int(math.ceil(MAX_SHIFT_M / grid.resolution_m))
    grays = [s.gray() for s in scenes]
    valids = [s.valid for s in scenes]
    shifts = [(0.0, 0.0)] * len(scenes)
    for _ in range(2):
        shifted = [
            align_mod.apply_shift(g, v, sh) if sh != (0.0, 0.0) else (g, v)
            for g, v, sh in zip(grays, valids, shifts, strict=True)
        ]
        ref = align_mod.build_reference([g for g, _ in shifted], [v for _, v in shifted])
        ref_valid = np.any(np.stack([v for _, v in shifted]), axis=0)
        shifts = [
            align_mod.estimate_shift(ref, g, valid=v, ref_valid=ref_valid, max_shift_px=max_px)
            for g, v in zip(grays, valids, strict=True)
        ]
        # The reference frame is the site's: remove the stack's mean shift so an unbiased
        # set of georeferencing errors stays centred on the site coordinates.
        mean = np.median(np.array(shifts), axis=0)
        shifts = [(float(dy - mean[0]), float(dx - mean[1])) for dy, dx in shifts]
    return shifts


def process_stack(
    inputs: Sequence[str | Path],
    site: Site,
    *,
    resolution_m: float | None = None,
    workers: int = 1,
    max_pixels: int = MAX_WINDOW_PIXELS,
) -> StackResult:
    """Run the whole analysis on ``inputs`` and return results in memory.

    Parameters
    ----------
    inputs : sequence of str or Path
        Image files, folders, STAC documents (see :func:`railwatch.imagery.discover`).
    site : Site
    resolution_m : float, optional
        Working resolution; default the site's, else the finest input GSD.
    workers : int
        Local processes for the per-acquisition tasks.
    max_pixels : int
        Pixel budget of one read window.

    Returns
    -------
    StackResult

    Raises
    ------
    NoUsableScenes
        When no acquisition can be read over the AOI.
    """
    files, rejected = discover(inputs)
    if not files:
        reasons = "; ".join(f"{r.path}: {r.reason}" for r in rejected[:3])
        raise NoUsableScenes(f"no usable imagery among the inputs ({reasons})")
    warn_if_disjoint(files, site.aoi)
    acqs = group_acquisitions(files)
    for acq in acqs:
        for dup in duplicate_files(acq):
            logger.info("%s: duplicate of another file of the same acquisition", dup.path)
    res = resolution_m or site.resolution_m or finest_gsd(files)
    grid = make_grid(site, res)
    if grid.width * grid.height > max_pixels:
        raise NoUsableScenes(
            f"site grid of {grid.width}x{grid.height} px at {res} m exceeds the pixel budget "
            f"({max_pixels} px); use a coarser --resolution or a smaller AOI"
        )
    aoi = aoi_in_grid(site, grid)
    inside = grid.rasterize(aoi)
    logger.info("site grid %s, %dx%d px at %.2f m", grid.crs, grid.width, grid.height, res)

    read = _map(
        _read_task,
        [(a, grid, site.detection.band_mapping, max_pixels) for a in acqs],
        workers,
    )
    pairs: list[tuple[Acquisition, Scene]] = []
    for acq, got in zip(acqs, read, strict=True):
        if isinstance(got, Rejection):
            rejected += [
                Rejection(f.path, got.reason, f.datetime, f.crs, f.gsd_m) for f in acq.files
            ]
        elif not got.valid.any():
            rejected += [
                Rejection(f.path, "no valid data over the AOI", f.datetime, f.crs, f.gsd_m)
                for f in acq.files
            ]
        else:
            pairs.append((acq, got))
    if not pairs:
        reasons = "; ".join(f"{os.path.basename(r.path)}: {r.reason}" for r in rejected[:3])
        raise NoUsableScenes(f"no acquisition covers the AOI ({reasons})")

    # Alignment and the stack products use only scenes that observe some of the AOI.
    scenes = [s for _, s in pairs]
    shifts = align_scenes(scenes)
    aligned = [_shift_scene(s, sh) for s, sh in zip(scenes, shifts, strict=True)]

    site_lines = tracks_in_grid(site, grid)
    if site_lines:
        tracks = tracks_from_lines(site_lines)
    else:
        tracks = extract_tracks(
            [s.gray() for s in aligned],
            [s.valid & inside for s in aligned],
            grid,
            aoi,
            spacing_m=site.detection.track_spacing_m,
        )
    logger.info("%d track(s) %s", len(tracks), "from the site file" if site_lines else "extracted")
    background = learn_background([(s.data, s.bands, s.valid) for s in aligned], grid, tracks)
    analyses = _map(_analyse_task, [(s, tracks, aoi, site, background) for s in aligned], workers)
    results = tuple(
        AcquisitionResult(acq, s, sh, an)
        for (acq, _), s, sh, an in zip(pairs, aligned, shifts, analyses, strict=True)
    )
    used = tuple(f for acq, _ in pairs for f in acq.files)
    return StackResult(grid, tuple(tracks), results, tuple(rejected), used)


# ----------------------------------------------------------------------------- tables


def scenes_table(stack: StackResult) -> pd.DataFrame:
    """``scenes.csv``: one row per input file, used or rejected, sorted by path."""
    rows = [
        {
            "path": f.path,
            "status": "used",
            "reason": "",
            "datetime": iso_utc(f.datetime) if f.datetime else "",
            "crs": f.crs,
            "gsd_m": round(f.gsd_m, 3),
        }
        for f in stack.used_files
    ]
    rows += [
        {
            "path": r.path,
            "status": "rejected",
            "reason": r.reason,
            "datetime": iso_utc(r.datetime) if r.datetime else "",
            "crs": r.crs or "",
            "gsd_m": "" if r.gsd_m is None else round(r.gsd_m, 3),
        }
        for r in stack.rejected
    ]
    df = pd.DataFrame(rows, columns=["path", "status", "reason", "datetime", "crs", "gsd_m"])
    return df.sort_values(["path", "status"], kind="stable").reset_index(drop=True)


def vehicles_frame(stack: StackResult) -> Any:
    """GeoDataFrame of every vehicle (layer ``railcars``), in the grid CRS."""
    import geopandas as gpd

    rows, geoms = [], []
    for r in stack.results:
        a = r.analysis
        if a.railcars is None:
            continue
        for v in a.vehicles:
            rows.append(
                {
                    "datetime": iso_utc(r.acquisition.datetime),
                    "date": r.acquisition.datetime.astimezone(dt.UTC).date().isoformat(),
                    "track_id": v.track_id,
                    "type": v.type,
                    "length_m": round(float(v.length_m), 2),
                    "confidence": round(float(v.confidence), 3),
                    "counted": bool(getattr(v, "counted", v.confidence >= 0)),
                }
            )
            geoms.append(v.polygon)
    cols = ["datetime", "date", "track_id", "type", "length_m", "confidence", "counted"]
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=cols), geometry=geoms, crs=stack.grid.crs)


def footprints_frame(stack: StackResult) -> Any:
    """GeoDataFrame of each acquisition's observed area (layer ``footprints``)."""
    import geopandas as gpd
    from rasterio.features import shapes
    from shapely.geometry import shape
    from shapely.ops import unary_union

    rows, geoms = [], []
    for r in stack.results:
        polys = [
            shape(g)
            for g, v in shapes(
                r.scene.valid.astype(np.uint8), mask=r.scene.valid, transform=stack.grid.transform
            )
            if v == 1
        ]
        geom = unary_union(polys).simplify(stack.grid.resolution_m)
        rows.append(
            {
                "datetime": iso_utc(r.acquisition.datetime),
                "date": r.acquisition.datetime.astimezone(dt.UTC).date().isoformat(),
                "status": r.analysis.quality.status,
                "coverage": round(float(r.analysis.quality.coverage), 4),
                "n_tiles": len(r.acquisition.files),
            }
        )
        geoms.append(geom)
    cols = ["datetime", "date", "status", "coverage", "n_tiles"]
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=cols), geometry=geoms, crs=stack.grid.crs)


def write_geopackage(target: Path, layers: dict[str, Any]) -> Path:
    """Write several GeoDataFrames as layers of one GeoPackage, atomically."""
    from railwatch.outputs import atomic_path

    with atomic_path(target) as tmp:
        tmp.unlink()  # GDAL refuses to append layers to an empty non-GeoPackage file
        for name, gdf in layers.items():
            gdf.to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
    return target


def write_quicklooks(stack: StackResult, site: Site, out_dir: Path) -> list[Path]:
    """One PNG per acquisition: image, AOI, tracks, vehicles by type, unobserved hatched."""
    from railwatch import plot

    aoi = aoi_in_grid(site, stack.grid)
    lines = [(t.track_id, t.line) for t in stack.tracks]
    paths = []
    for r in stack.results:
        a = r.analysis
        vehicles = [(v.polygon, v.type, float(v.confidence)) for v in a.vehicles]
        n = "—" if a.railcars is None else f"{a.railcars} [{a.railcars_low}–{a.railcars_high}]"
        title = (
            f"{iso_utc(r.acquisition.datetime)}  {a.quality.status}  railcars {n}  "
            f"coverage {a.quality.coverage:.0%}"
        )
        fig_ax = plot.quicklook(
            r.scene.rgb(),
            stack.grid.transform,
            aoi=aoi,
            tracks=lines,
            vehicles=vehicles,
            unobserved=a.unobserved,
            title=title,
        )
        fig = fig_ax.figure
        target = out_dir / "quicklooks" / f"{r.acquisition.id}.png"
        plot.save_figure(fig, target)
        import matplotlib.pyplot as plt

        plt.close(fig)
        paths.append(target)
    return paths


def run_count(
    inputs: Sequence[str | Path],
    site: Site,
    out_dir: str | Path,
    *,
    resolution_m: float | None = None,
    workers: int = 1,
    max_pixels: int = MAX_WINDOW_PIXELS,
    report: bool = True,
) -> RunResult:
    """Count railcars on ``inputs`` and write every output file of DESIGN.md to ``out_dir``.

    Parameters
    ----------
    inputs : sequence of str or Path
        Image files, folders or STAC documents.
    site : Site
        From :func:`railwatch.site.load_site` or :func:`railwatch.site.site_from_aoi`.
    out_dir : str or Path
        Output directory; created when missing. Files are replaced atomically.
    resolution_m : float, optional
        Working resolution override.
    workers : int
        Local worker processes.
    max_pixels : int
        Pixel budget of one read window.
    report : bool
        Draw quicklooks, the time-series figure and report.html.

    Returns
    -------
    RunResult
    """
    from railwatch import outputs, timeseries
    from railwatch.outputs import sha256_file

    out = Path(out_dir)
    stack = process_stack(
        inputs, site, resolution_m=resolution_m, workers=workers, max_pixels=max_pixels
    )
    records = [r.to_record() for r in stack.results]
    counts = timeseries.counts_table(records, site.baseline)
    weekly = timeseries.weekly_table(counts, site.baseline)
    scenes = scenes_table(stack)

    import geopandas as gpd

    from railwatch.site import WGS84, to_crs

    out.mkdir(parents=True, exist_ok=True)
    aoi_frame = gpd.GeoDataFrame(
        {"name": [site.name]},
        geometry=[to_crs(site.aoi, WGS84, stack.grid.crs)],
        crs=stack.grid.crs,
    )
    tracks_frame = gpd.GeoDataFrame(
        {"track_id": [t.track_id for t in stack.tracks]},
        geometry=[t.line for t in stack.tracks],
        crs=stack.grid.crs,
    )
    write_geopackage(
        out / "railcars.gpkg",
        {
            "railcars": vehicles_frame(stack),
            "tracks": tracks_frame,
            "aoi": aoi_frame,
            "footprints": footprints_frame(stack),
        },
    )
    outputs.write_csv(out / "scenes.csv", scenes)
    outputs.write_csv(out / "counts.csv", counts)
    outputs.write_csv(out / "weekly.csv", weekly)
    inputs_meta = []
    for f in sorted({f.path for f in stack.used_files}):
        entry: dict[str, Any] = {"path": f}
        if not f.startswith("/vsi"):
            entry["size"] = os.path.getsize(f)
            entry["sha256"] = sha256_file(f)
        inputs_meta.append(entry)
    run = {
        "version": __version__,
        "site": site.to_dict(),
        "grid": stack.grid.to_dict(),
        "inputs": inputs_meta,
        "rejected": [{"path": r.path, "reason": r.reason} for r in stack.rejected],
        "parameters": {
            "resolution_m": stack.grid.resolution_m,
            "workers": workers,
            "max_pixels": max_pixels,
            "tracks_source": "site" if site.tracks else "extracted",
        },
        "created": iso_utc(dt.datetime.now(dt.UTC)),
    }
    outputs.write_json(out / "run.json", run)
    if report:
        from railwatch.report import build_report

        write_quicklooks(stack, site, out)
        build_report(out)
    return RunResult(out, counts, weekly, scenes, len(stack.rejected), stack)

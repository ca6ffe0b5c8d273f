"""The counting pipeline: per-acquisition tasks and the stack-level reductions between them.

Data flows one way (DESIGN.md): discover -> group -> read -> align -> tracks and
empty-track model (reductions over the stack) -> analyse -> tables -> outputs.

Reading, aligning and analysing one acquisition is one independent task
(:func:`process_acquisition`) that takes paths and parameters and returns a small
:class:`AcquisitionOutcome`; it runs in-process, in a local process pool or on a Dask
cluster. The stack products (site grid, reference image, tracks, empty-track model) are
built from a sample of the stack and kept in the output directory's state database, so a
re-run analyses only new or changed acquisitions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import math
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from shapely.affinity import translate
from shapely.geometry.base import BaseGeometry

from railwatch import align as align_mod
from railwatch._version import __version__
from railwatch.detect import (
    SceneAnalysis,
    analyse_scene,
    background_sample,
    combine_background,
)
from railwatch.errors import NoUsableScenes, RailwatchError, SceneReadError, WorkerLost
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
from railwatch.quicklook import Quicklook, thumbnail_jpeg
from railwatch.site import Site, SiteGrid, aoi_in_grid, make_grid, tracks_in_grid
from railwatch.sun import sun_position
from railwatch.tracks import Track, extract_tracks, tracks_from_lines
from railwatch.types import VEHICLE_TYPES

__all__ = [
    "AcquisitionOutcome",
    "StackProducts",
    "RunResult",
    "run_count",
    "run_sites",
    "site_subdirs",
    "SiteRun",
    "process_acquisition",
    "build_stack",
]

logger = logging.getLogger(__name__)

MAX_SHIFT_M = 15.0
"""Largest georeferencing error searched for during alignment."""

ALONG_SEARCH_M = 4.0
"""Largest correction along the tracks of the whole-image registration of a stack to its
surveyed tracks (:func:`railwatch.align.register_to_tracks`); that registration was off
by up to 1.3 m along them on the tuning archives."""

OVERPASS_MAX_AZIMUTH_SPREAD_DEG = 10.0
"""Largest half-range of the sun's azimuth over the site's overpass window for a
date-only product to take the sun at the window's middle. Well inside the detector's
15 deg along-track margin (``detect.SUN_ACROSS_MIN``), so the shadow side it names holds
over the whole window."""

STACK_SAMPLE = 48
"""At most this many acquisitions (spread over time) build the stack products."""

PLACE_VOTERS = 8
"""Stack scenes kept (their edge images) to place each acquisition outside the stack's
sample by their vote (:func:`railwatch.align.place_scene`). The solve's own 5 anchors
are too few: they favour high edge energy, which snowy scenes have (white roofs against
dark ballast), and two snowy anchors of one stack agreed on the same wrong peak for a
snowy scene, 17 m along the tracks; more voters, of every season, outvote them."""

PLACE_MIN_SCORE = 0.5
"""Least anchor score (share usable times edge energy up to the typical, relative to the
best scene's) of a voter: at least half as complete and sharp as the best scene, so the
clear scenes of lower contrast vote too, not cloud or haze."""

UNSEARCHED_MIN_SHARE = 0.01
"""An AOI share left unimaged by the whole stack below this (edge pixels) is ignored."""

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total)."""


@dataclass(frozen=True, slots=True, weakref_slot=True)
class StackProducts:
    """Reductions over the stack that every acquisition is analysed with."""

    grid: SiteGrid
    aoi: BaseGeometry
    reference: np.ndarray
    """Gray reference image in the site frame (acquisitions are aligned to it)."""
    ref_valid: np.ndarray
    tracks: tuple[Track, ...]
    tracks_source: str
    """``site`` or ``extracted``."""
    background: Any
    n_acquisitions: int
    """How many acquisitions the products were built from."""
    shifts: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Shift (pixels) of each acquisition the stack was built from, by id: solved jointly
    over the stack, better than registering one scene to the reference alone."""
    unsearched: BaseGeometry | None = None
    """With extracted tracks, the AOI part no image of the stack covered (grid CRS):
    tracks there could not be found, so no acquisition has seen it."""
    anchors: tuple[align_mod.AnchorEdges, ...] = ()
    """Edge images of up to :data:`PLACE_VOTERS` stack scenes and their shifts: a scene
    outside the sample is placed by their vote and the reference's
    (:func:`railwatch.align.place_scene`), not by one match that nothing can outvote.
    Float16, each two bytes per grid pixel (1.4 MB on a 1226 x 591 grid)."""


@dataclass(frozen=True, slots=True)
class AcquisitionOutcome:
    """Everything railwatch concluded about one acquisition; small enough to store."""

    acquisition: Acquisition
    gsd_m: float
    shift_px: tuple[float, float]
    resolution_m: float
    analysis: SceneAnalysis
    footprint: BaseGeometry
    quicklook_png: bytes | None = None
    thumbnail_jpeg: bytes | None = None
    """Reduced copy of the quicklook for the report (made where the quicklook is)."""

    @property
    def shift_m(self) -> float:
        """Length of the co-registration shift, metres."""
        return float(math.hypot(*self.shift_px) * self.resolution_m)

    def to_record(self) -> dict[str, Any]:
        """Row of ``counts.csv`` before baseline columns are added."""
        a, q = self.analysis, self.analysis.quality
        observable = a.railcars is not None
        t = self.acquisition.datetime.astimezone(dt.UTC)
        rec: dict[str, Any] = {
            "date": t.date(),
            "datetime": t,
            "railcars": a.railcars,
            "railcars_low": a.railcars_low,
            "railcars_high": a.railcars_high,
            "status": q.status,
            "coverage": round(float(q.coverage), 4),
            "cloud": round(float(q.cloud), 4),
            "gsd_m": round(float(self.gsd_m), 3),
            "shift_m": round(self.shift_m, 2),
            "n_tiles": len(self.acquisition.files),
        }
        for vt in VEHICLE_TYPES:
            rec[vt] = int(a.by_type.get(vt, 0)) if observable else None
        rec["scenes"] = ";".join(os.path.basename(f.path) for f in self.acquisition.files)
        return rec


@dataclass(frozen=True, slots=True)
class RunResult:
    """What :func:`run_count` wrote, as tables."""

    out_dir: Path
    counts: pd.DataFrame
    weekly: pd.DataFrame
    scenes: pd.DataFrame
    n_rejected: int
    n_processed: int
    """Acquisitions analysed in this run (the rest came from the state)."""
    stack_version: int
    outcomes: tuple[AcquisitionOutcome, ...] = field(repr=False)


# ----------------------------------------------------------------------------- alignment


def _offset_m(shift: tuple[float, float], grid: SiteGrid) -> tuple[float, float]:
    """(east, north) metres that :func:`align.apply_shift` with ``shift`` moves content."""
    t = grid.transform
    return (float(shift[1]) * t.a, float(shift[0]) * t.e)


def _moved(analysis: SceneAnalysis, off: tuple[float, float]) -> SceneAnalysis:
    """Analysis results translated by ``off`` (east, north) metres."""
    from dataclasses import replace

    vehicles = tuple(
        replace(v, polygon=translate(v.polygon, off[0], off[1])) for v in analysis.vehicles
    )
    return replace(
        analysis, vehicles=vehicles, unobserved=translate(analysis.unobserved, off[0], off[1])
    )


def _max_shift_px(grid: SiteGrid) -> int:
    return int(math.ceil(MAX_SHIFT_M / grid.resolution_m))


# ----------------------------------------------------------------------------- tasks


def _read_task(
    acq: Acquisition, grid: SiteGrid, band_mapping: dict[str, int] | None, max_pixels: int
) -> Scene | Rejection:
    try:
        scene = read_acquisition(acq, grid, band_mapping=band_mapping, max_pixels=max_pixels)
    except SceneReadError as exc:
        return Rejection(exc.path, exc.reason, acq.datetime)
    if not scene.valid.any():
        return Rejection(acq.files[0].path, "no valid data over the AOI", acq.datetime)
    return scene


def _stack_read_task(
    acq: Acquisition,
    grid: SiteGrid,
    band_mapping: dict[str, int] | None,
    max_pixels: int,
    scratch: str | None = None,
) -> tuple[Scene | SceneRef, np.ndarray, np.ndarray, align_mod.EdgeSpectrum] | Rejection:
    """Read one stack scene in the worker.

    Returns the scene (or where it was left in ``scratch``), its gray image and valid
    mask (all that the stack reductions need of it) and its edge spectrum.
    """
    got = _read_task(acq, grid, band_mapping, max_pixels)
    if isinstance(got, Rejection):
        return got
    gray = got.gray()
    spectrum = align_mod.edge_spectrum(gray, got.valid, max_shift_px=_max_shift_px(grid))
    return _leave(got, scratch), gray, got.valid, spectrum


@dataclass(frozen=True, slots=True)
class SceneRef:
    """A scene a pool worker left in the executor's scratch folder.

    Handed from task to task instead of the scene: a yard scene is about 12 MB of pixels,
    pickled and copied through a pipe at every hand-over (stack read, empty-track sample,
    analysis); the files are mapped, not copied. ``meta`` is the scene without its arrays.
    """

    path: str
    meta: Scene

    def load(self) -> Scene:
        """The scene, its arrays mapped copy-on-write from the files."""
        return replace(
            self.meta,
            data=np.load(self.path + ".data.npy", mmap_mode="c"),
            valid=np.load(self.path + ".valid.npy", mmap_mode="c"),
        )


def _leave(scene: Scene, scratch: str | None) -> Scene | SceneRef:
    """``scene`` written to the scratch folder (when there is one), as a reference."""
    if scratch is None:
        return scene
    path = os.path.join(scratch, uuid.uuid4().hex)
    try:
        np.save(path + ".data.npy", scene.data)
        np.save(path + ".valid.npy", scene.valid)
    except OSError as exc:  # a full or read-only temp disk costs speed, not the run
        logger.info("scratch folder %s not usable (%s): scenes are pickled", scratch, exc)
        return scene
    empty = np.zeros((0,), np.float32)
    return SceneRef(path, replace(scene, data=empty, valid=empty.astype(bool)))


def _scene(scene: Scene | SceneRef | None) -> Scene | None:
    return scene.load() if isinstance(scene, SceneRef) else scene


def _release(scenes: Sequence[Scene | SceneRef | None]) -> None:
    """Delete the scratch files of the scenes that are references."""
    for sc in scenes:
        if isinstance(sc, SceneRef):
            for suffix in (".data.npy", ".valid.npy"):
                with contextlib.suppress(OSError):
                    os.remove(sc.path + suffix)


def _shifted_gray_task(
    gray: np.ndarray, valid: np.ndarray, shift: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """A scene's gray image and valid mask moved onto the site (reference, extraction)."""
    return align_mod.apply_shift(gray, valid, shift)


def _background_task(
    scene: Scene | SceneRef, offset: tuple[float, float], grid: SiteGrid, tracks: Sequence[Track]
) -> Any:
    sc = _scene(scene)
    assert sc is not None
    return background_sample(sc.data, sc.bands, sc.valid, grid, tracks, offset)


def _process_task(acq: Acquisition, scene: Scene | SceneRef | None, **kw: Any) -> Any:
    return process_acquisition(acq, scene=_scene(scene), **kw)


def _footprint(valid: np.ndarray, grid: SiteGrid) -> BaseGeometry:
    from rasterio.features import shapes
    from shapely.geometry import shape
    from shapely.ops import unary_union

    polys = [
        shape(g)
        for g, v in shapes(valid.astype(np.uint8), mask=valid, transform=grid.transform)
        if v == 1
    ]
    return unary_union(polys).simplify(grid.resolution_m)


def _unsearched(
    inside: np.ndarray, seen: np.ndarray, grid: SiteGrid, aoi: BaseGeometry
) -> BaseGeometry | None:
    """The AOI part (``inside``) no stack image covers (``seen``), or None when negligible."""
    gap = inside & ~seen
    if not inside.any() or gap.sum() < UNSEARCHED_MIN_SHARE * inside.sum():
        return None
    return _footprint(gap, grid).intersection(aoi)


def render_quicklook(
    scene: Scene,
    products: StackProducts,
    analysis: SceneAnalysis,
    offset_m: tuple[float, float] = (0.0, 0.0),
) -> bytes:
    """PNG bytes of the acquisition's quicklook (deterministic for identical input).

    ``offset_m`` (east, north) is how far the scene's content must move to lie on the
    site: the image is drawn as read and the site geometry placed over it, so nothing is
    resampled for display either.
    """
    return _draw_quicklook(scene, products, analysis, offset_m).png()


def _draw_quicklook(
    scene: Scene,
    products: StackProducts,
    analysis: SceneAnalysis,
    offset_m: tuple[float, float],
) -> Quicklook:
    from affine import Affine

    from railwatch.quicklook import quicklook

    a = analysis
    n = (
        "not observable"
        if a.railcars is None
        else (f"{a.railcars} railcars [{a.railcars_low}–{a.railcars_high}]")
    )
    title = (
        f"{iso_utc(scene.datetime)} · {a.quality.status} · {n} · coverage "
        f"{a.quality.coverage:.0%} · cloud {a.quality.cloud:.0%} · snow {a.quality.snow:.0%}"
    )
    return quicklook(
        scene.rgb(),
        Affine.translation(*offset_m) @ products.grid.transform,
        aoi=products.aoi,
        tracks=[(t.track_id, t.line) for t in products.tracks],
        vehicles=[(v.polygon, v.type, float(v.confidence)) for v in a.vehicles],
        unobserved=a.unobserved,
        title=title,
    )


def _sun_at(acq: Acquisition, site: Site) -> dict[str, float]:
    """Sun azimuth and elevation at the AOI's centroid for :func:`analyse_scene`.

    When the product gave only the date, its midnight is no acquisition time: the sun is
    taken from the site's usual overpass (``detection.overpass_local_time``) when there
    is one and it names the sun's direction closely enough, else nothing is passed (a
    guessed hour would name a shadow side the scene may contradict).
    """
    lon, lat = site.aoi.centroid.coords[0]
    if acq.time_known:
        azimuth_deg, elevation_deg = sun_position(acq.datetime, lon, lat)
        return {"sun_azimuth_deg": azimuth_deg, "sun_elevation_deg": elevation_deg}
    window = site.detection.overpass_hours()
    if window is None:
        return {}
    day = dt.datetime.combine(acq.datetime.astimezone(dt.UTC).date(), dt.time(), dt.UTC)
    # Local solar time runs ahead of UTC by the longitude / 15 hours.
    first, mid, last = (
        sun_position(day + dt.timedelta(hours=h - lon / 15.0), lon, lat)
        for h in (window[0], sum(window) / 2, window[1])
    )
    spread = abs((last[0] - first[0] + 180.0) % 360.0 - 180.0) / 2
    if spread > OVERPASS_MAX_AZIMUTH_SPREAD_DEG or mid[1] <= 0:
        logger.info(
            "%s: the overpass window leaves the sun's azimuth open by +/-%.0f deg; the "
            "shadow side is learned from the scene",
            acq.id,
            spread,
        )
        return {}
    return {"sun_azimuth_deg": mid[0], "sun_elevation_deg": mid[1]}


_PLACERS: dict[int, align_mod.ScenePlacer] = {}
"""Each live StackProducts' placer in this process, by id (dropped with the products)."""


def _placer(products: StackProducts) -> align_mod.ScenePlacer:
    """The stack's :class:`~railwatch.align.ScenePlacer`, built once per products object.

    A pool's chunk and a serial run analyse their acquisitions with one products object,
    so the reference's and anchors' spectra are transformed once, not once per scene.
    """
    key = id(products)
    placer = _PLACERS.get(key)
    if placer is None:
        placer = align_mod.ScenePlacer.of_stack(
            products.reference,
            products.ref_valid,
            products.anchors,
            max_shift_px=_max_shift_px(products.grid),
        )
        _PLACERS[key] = placer
        weakref.finalize(products, _PLACERS.pop, key, None)
    return placer


def process_acquisition(
    acq: Acquisition,
    products: StackProducts,
    site: Site,
    *,
    scene: Scene | None = None,
    max_pixels: int = MAX_WINDOW_PIXELS,
    quicklook: bool = True,
) -> AcquisitionOutcome | Rejection:
    """Read, align and analyse one acquisition against the stack products.

    Parameters
    ----------
    acq : Acquisition
        Paths and time; the files are opened inside the task.
    products : StackProducts
    site : Site
    scene : Scene, optional
        Already read (local runs reuse the read of the stack stage).
    max_pixels : int
        Pixel budget of one read window.
    quicklook : bool
        Render the quicklook PNG.

    Returns
    -------
    AcquisitionOutcome or Rejection
    """
    grid = products.grid
    if scene is None:
        got = _read_task(acq, grid, site.detection.band_mapping, max_pixels)
        if isinstance(got, Rejection):
            return got
        scene = got
    if acq.id in products.shifts:
        shift = products.shifts[acq.id]
    elif products.n_acquisitions > 1:
        # Outside the sample: matched to the reference, and the anchors vote as they do
        # for the stack's scenes.
        shift = _placer(products).place(scene.gray(), scene.valid)
    else:
        shift = (0.0, 0.0)
    # The scene is not resampled for the analysis: a fractional shift would blur it
    # (bilinear), and rails are a pixel wide. The site geometry moves into the scene's
    # frame instead, and the results move back.
    off = _offset_m(shift, grid)
    analysis = analyse_scene(
        scene.data,
        scene.bands,
        scene.valid,
        grid,
        [Track(t.track_id, translate(t.line, -off[0], -off[1])) for t in products.tracks],
        translate(products.aoi, -off[0], -off[1]),
        site,
        background=products.background,
        unsearched=None
        if products.unsearched is None
        else translate(products.unsearched, -off[0], -off[1]),
        **_sun_at(acq, site),
    )
    analysis = _moved(analysis, off)
    png = thumb = None
    if quicklook:
        drawn = _draw_quicklook(scene, products, analysis, off)
        png, thumb = drawn.png(), thumbnail_jpeg(drawn)
    return AcquisitionOutcome(
        acquisition=acq,
        gsd_m=scene.gsd_m,
        shift_px=shift,
        resolution_m=grid.resolution_m,
        analysis=analysis,
        footprint=translate(_footprint(scene.valid, grid), off[0], off[1]),
        quicklook_png=png,
        thumbnail_jpeg=thumb,
    )


# ----------------------------------------------------------------------------- execution


class Executor:
    """Runs independent tasks serially, in a local process pool, or on a Dask cluster."""

    def __init__(self, workers: int = 1, scheduler: str | None = None) -> None:
        self.workers = max(1, int(workers))
        self.scheduler = scheduler
        self._client: Any = None
        self._pool: ProcessPoolExecutor | None = None
        self.scratch: str | None = None
        """Folder where pool workers leave the scenes they read (see :class:`SceneRef`)."""

    def __enter__(self) -> Executor:
        if self.scheduler:
            try:
                from distributed import Client
            except ImportError:
                raise NoUsableScenes(
                    "--scheduler needs dask.distributed: pip install 'railwatch[dask]'"
                ) from None
            try:
                self._client = Client(self.scheduler, timeout="20s")
            except Exception as exc:
                raise NoUsableScenes(
                    f"cannot connect to the Dask scheduler at {self.scheduler} ({exc})"
                ) from None
        elif self.workers > 1:
            self.scratch = _make_scratch()
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, initializer=_pool_worker_init, initargs=(os.getpid(),)
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
        if self._client is not None:
            self._client.close()

    @property
    def threads(self) -> int:
        """Threads the main process may use in a serial step (the pool's size), else one.

        The pool's workers wait while the main process solves the stack's shifts.
        """
        return self.workers if self._pool is not None else 1

    def submit_local(self, func: Callable[..., Any], *args: Any) -> Future:
        """Run ``func(*args)`` beside the caller on the local pool (now, without one).

        For work on local files (the output directory), which cluster workers on other
        machines may not see.
        """
        if self._pool is not None:
            return self._pool.submit(func, *args)
        return _done_future(func, *args)

    def map(
        self,
        func: Callable[..., Any],
        args: list[tuple[Any, ...]],
        *,
        shared: dict[str, Any] | None = None,
        on_result: Callable[[int, Any], None] | None = None,
    ) -> list[Any]:
        """``[func(*a, **shared) for a in args]`` in order, using the configured backend.

        ``on_result(i, value)`` is called as each task finishes (in completion order on a
        cluster), so callers can store results before the whole batch is done.
        """
        shared = shared or {}
        out: list[Any] = [None] * len(args)

        def done(i: int, value: Any) -> None:
            out[i] = value
            if on_result:
                on_result(i, value)

        if self._client is not None and args:
            from distributed import as_completed

            # Large shared inputs (stack products) travel to each worker once.
            scattered = {k: self._client.scatter(v, broadcast=True) for k, v in shared.items()}
            futures = [self._client.submit(func, *a, **scattered, pure=False) for a in args]
            index = {f.key: i for i, f in enumerate(futures)}
            for f in as_completed(futures):
                done(index[f.key], f.result())
        elif self._pool is not None and len(args) > 1:
            # A few chunks per worker: the shared stack products are pickled once per
            # chunk rather than once per acquisition, and each worker process imports
            # and warms up once.
            n_chunks = min(len(args), 8 * self.workers)
            chunks = [list(range(k, len(args), n_chunks)) for k in range(n_chunks)]
            futures = {
                self._pool.submit(_run_chunk, func, [args[i] for i in idx], shared): idx
                for idx in chunks
            }
            from concurrent.futures import as_completed as pool_completed

            for f in pool_completed(futures):
                for i, value in zip(futures[f], pool_result(f), strict=True):
                    done(i, value)
        else:
            for i, a in enumerate(args):
                done(i, func(*a, **shared))
        return out


def _done_future(func: Callable[..., Any], *args: Any) -> Future:
    fut: Future = Future()
    try:
        fut.set_result(func(*args))
    except BaseException as exc:  # re-raised by .result(), as a pool would
        fut.set_exception(exc)
    return fut


def pool_result(future: Future) -> Any:
    """``future.result()``; a pool worker that died on it becomes :class:`WorkerLost`."""
    try:
        return future.result()
    except BrokenProcessPool:
        raise WorkerLost(
            "a worker process ended abruptly (killed, perhaps by the system for lack of "
            "memory); acquisitions finished before are kept: run again to finish, with "
            "fewer --workers if memory is short"
        ) from None


SCRATCH_PREFIX = "railwatch-scenes-"


def _make_scratch() -> str | None:
    """A fresh scratch folder in the temp directory, named after this process.

    Folders left by runs that were killed (their process is gone) are removed first: a
    SIGKILL gives no chance to clean up, and each holds up to a stack's worth of scenes.
    """
    tmp = Path(tempfile.gettempdir())
    for old in tmp.glob(f"{SCRATCH_PREFIX}*"):
        pid = old.name[len(SCRATCH_PREFIX) :].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    try:
        return tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-")
    except OSError as exc:
        logger.info("no scratch folder in %s (%s): scenes are pickled", tmp, exc)
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _pool_worker_init(parent_pid: int) -> None:
    """Make a pool worker end with the run that started it.

    A worker forked from a run killed with SIGKILL (or SIGTERM) would otherwise wait on
    its task queue for ever, holding the run lock it inherited: every later run on that
    directory would be refused.
    """
    import signal

    # The run's own SIGTERM handler (cli.options) is not the worker's: a worker just ends.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))
    if os.getppid() != parent_pid:  # the run ended before the line above took effect
        os._exit(1)


def _run_chunk(
    func: Callable[..., Any], args: list[tuple[Any, ...]], shared: dict[str, Any]
) -> list[Any]:
    return [func(*a, **shared) for a in args]


def _sample(items: Sequence[Any], k: int) -> list[Any]:
    if len(items) <= k:
        return list(items)
    idx = np.unique(np.linspace(0, len(items) - 1, k).round().astype(int))
    return [items[i] for i in idx]


class StageTimes:
    """Wall-clock seconds per stage of one run, written to ``run.json`` (``timings_s``).

    With a pool or cluster a stage's time is that of the whole stage, not a sum over
    workers: what a user waits for.
    """

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            took = time.perf_counter() - t0
            self.seconds[stage] = round(self.seconds.get(stage, 0.0) + took, 3)


def build_stack(
    acqs: Sequence[Acquisition],
    site: Site,
    grid: SiteGrid,
    executor: Executor,
    *,
    max_pixels: int = MAX_WINDOW_PIXELS,
    progress: Progress | None = None,
    timer: StageTimes | None = None,
    background: bool = True,
) -> tuple[StackProducts | None, dict[str, Scene | SceneRef], dict[str, Rejection]]:
    """Build the stack products from (a sample of) ``acqs``.

    Returns the products (None when no sampled acquisition covers the AOI), the scenes
    read on the way (reused by local runs), and rejections by acquisition id. ``timer``
    collects the time of each step. Without ``background`` the empty-track appearance is
    not learned (``railwatch tracks`` needs only the lines).
    """
    timer = timer if timer is not None else StageTimes()
    aoi = aoi_in_grid(site, grid)
    inside = grid.rasterize(aoi)
    sample = _sample(acqs, STACK_SAMPLE)
    # Every per-scene step runs on the executor; only the steps that need the whole
    # stack at once (solving the shifts, the median reference, track extraction,
    # combining the empty-track model) run here.
    with timer("stack_read"):
        read = executor.map(
            _stack_read_task,
            [(a, grid, site.detection.band_mapping, max_pixels, executor.scratch) for a in sample],
            on_result=(lambda i, _: progress("reading", i + 1, len(sample))) if progress else None,
        )
    scenes: dict[str, Scene | SceneRef] = {}
    grays: list[tuple[np.ndarray, np.ndarray]] = []
    spectra: list[align_mod.EdgeSpectrum] = []
    rejected: dict[str, Rejection] = {}
    for a, got in zip(sample, read, strict=True):
        if isinstance(got, Rejection):
            rejected[a.id] = got
        else:
            scenes[a.id], gray, valid, spectrum = got
            grays.append((gray, valid))
            spectra.append(spectrum)
    del read
    if not scenes:
        return None, scenes, rejected
    ordered = list(scenes.values())
    with timer("stack_shifts"):
        shifts = align_mod.solve_shifts(
            spectra,
            (grid.height, grid.width),
            max_shift_px=_max_shift_px(grid),
            workers=executor.threads,
        )
        # Kept to place the scenes outside the sample (process_acquisition).
        kept = {
            i: align_mod.anchor_edges(
                spectra[i], (grid.height, grid.width), max_shift_px=_max_shift_px(grid)
            )
            for i in align_mod.select_anchors(
                spectra, n_anchors=PLACE_VOTERS, min_score=PLACE_MIN_SCORE
            )
        }
    del spectra
    with timer("stack_reference"):
        # Only the gray image travels to the workers, not the bands.
        moved = executor.map(
            _shifted_gray_task,
            [(g, v, sh) for (g, v), sh in zip(grays, shifts, strict=True)],
        )
        del grays
        ref = align_mod.build_reference([g for g, _ in moved], [v for _, v in moved])
        ref_valid = np.any(np.stack([v for _, v in moved]), axis=0)
    with timer("stack_tracks"):
        site_lines = tracks_in_grid(site, grid)
        if site_lines:
            del moved
            # The stack is centred on the median georeferencing of its scenes; surveyed track
            # lines are true positions. Register the stack to them, so every scene lands on
            # its tracks however biased the provider's georeferencing.
            # Lines cut at the AOI run on beyond it: not bed ends to register to.
            template = align_mod.track_template(
                (grid.height, grid.width),
                grid.transform,
                align_mod.extend_clipped_ends([ln for _, ln in site_lines], aoi),
            )
            delta = align_mod.register_to_tracks(
                template,
                ref,
                valid=ref_valid,
                max_shift_px=_max_shift_px(grid),
                max_along_px=ALONG_SEARCH_M / grid.resolution_m,
                # One bed end (a 3.5 m bed) at the least.
                min_along_edge_px=2 * align_mod.BED_HALF_WIDTH_M / grid.resolution_m,
            )
            logger.info(
                "stack registered to the site tracks: %.2f m",
                math.hypot(*delta) * grid.resolution_m,
            )
            shifts = [(dy + delta[0], dx + delta[1]) for dy, dx in shifts]
            ref, ref_valid = align_mod.apply_shift(ref, ref_valid, delta)
            tracks = align_mod.centre_tracks(ref, ref_valid, grid, tracks_from_lines(site_lines))
        else:
            # Extraction works on the stack as a whole, on the scenes moved onto the site.
            tracks = extract_tracks(
                [g for g, _ in moved],
                [v & inside for _, v in moved],
                grid,
                aoi,
                spacing_m=site.detection.track_spacing_m,
                mapper=executor.map,
            )
            del moved
    logger.info("%d track(s) %s", len(tracks), "from the site" if site_lines else "extracted")
    empty_model = None
    if background and len(ordered) >= 3 and tracks:
        with timer("stack_background"):
            samples = executor.map(
                _background_task,
                [(sc, _offset_m(sh, grid)) for sc, sh in zip(ordered, shifts, strict=True)],
                shared={"grid": grid, "tracks": tuple(tracks)},
            )
            empty_model = combine_background(samples, tracks)
    products = StackProducts(
        grid=grid,
        aoi=aoi,
        reference=ref,
        ref_valid=ref_valid,
        tracks=tuple(tracks),
        tracks_source="site" if site_lines else "extracted",
        unsearched=None if site_lines else _unsearched(inside, ref_valid, grid, aoi),
        background=empty_model,
        n_acquisitions=len(ordered),
        shifts={
            a_id: (float(sh[0]), float(sh[1]))
            for a_id, sh in zip(scenes.keys(), shifts, strict=True)
        },
        anchors=tuple(
            align_mod.AnchorEdges(e, (float(shifts[i][0]), float(shifts[i][1])))
            for i, e in kept.items()
        ),
    )
    return products, scenes, rejected


def _acq_fingerprint(acq: Acquisition) -> str:
    from railwatch.state import file_fingerprint

    parts = sorted(repr(file_fingerprint(f.path)) for f in acq.files)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _needs_new_stack(latest: tuple[int, int, Any] | None, n_usable: int, grid: SiteGrid) -> bool:
    if latest is None:
        return True
    _, n_built, products = latest
    if getattr(products, "grid", None) != grid:
        return True
    # A young stack is rebuilt each time the archive doubles; once built from a full
    # sample it stays, so a new scene costs one scene.
    return n_built < STACK_SAMPLE and n_usable >= 2 * n_built


# ----------------------------------------------------------------------------- tables


def scenes_table(used: Sequence[SceneFile], rejected: Sequence[Rejection]) -> pd.DataFrame:
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
        for f in used
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
        for r in rejected
    ]
    df = pd.DataFrame(rows, columns=["path", "status", "reason", "datetime", "crs", "gsd_m"])
    return df.sort_values(["path", "status"], kind="stable").reset_index(drop=True)


def vehicles_frame(outcomes: Sequence[AcquisitionOutcome], crs: str, min_confidence: float) -> Any:
    """GeoDataFrame of every vehicle (layer ``railcars``), in the grid CRS.

    ``counted`` says whether the vehicle is part of ``railcars`` (confident enough and
    mostly inside the observed AOI).
    """
    import geopandas as gpd

    rows, geoms = [], []
    for o in outcomes:
        a = o.analysis
        if a.railcars is None:
            continue
        t = o.acquisition.datetime.astimezone(dt.UTC)
        for v in a.vehicles:
            counted = getattr(v, "counted", None)
            rows.append(
                {
                    "datetime": iso_utc(t),
                    "date": t.date().isoformat(),
                    "track_id": v.track_id,
                    "type": v.type,
                    "length_m": round(float(v.length_m), 2),
                    "confidence": round(float(v.confidence), 3),
                    "counted": bool(v.confidence >= min_confidence if counted is None else counted),
                }
            )
            geoms.append(v.polygon)
    cols = ["datetime", "date", "track_id", "type", "length_m", "confidence", "counted"]
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=cols), geometry=geoms, crs=crs)


def footprints_frame(outcomes: Sequence[AcquisitionOutcome], crs: str) -> Any:
    """GeoDataFrame of each acquisition's observed area (layer ``footprints``)."""
    import geopandas as gpd

    rows = []
    for o in outcomes:
        t = o.acquisition.datetime.astimezone(dt.UTC)
        rows.append(
            {
                "datetime": iso_utc(t),
                "date": t.date().isoformat(),
                "status": o.analysis.quality.status,
                "coverage": round(float(o.analysis.quality.coverage), 4),
                "n_tiles": len(o.acquisition.files),
            }
        )
    cols = ["datetime", "date", "status", "coverage", "n_tiles"]
    # Observed = imaged, less the stretches of track hidden by cloud or heavy haze: the
    # area a partial count covers (evaluation restricts the truth to it).
    geoms = [
        o.footprint.difference(o.analysis.unobserved)
        if o.analysis.unobserved is not None and not o.analysis.unobserved.is_empty
        else o.footprint
        for o in outcomes
    ]
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=cols), geometry=geoms, crs=crs)


def write_geopackage(target: Path, layers: dict[str, Any]) -> Path:
    """Write several GeoDataFrames as layers of one GeoPackage, atomically."""
    from railwatch.outputs import atomic_path

    with atomic_path(target) as tmp:
        tmp.unlink()
        for name, gdf in layers.items():
            gdf.to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
    return target


# ----------------------------------------------------------------------------- run


def run_count(
    inputs: Sequence[str | Path],
    site: Site,
    out_dir: str | Path,
    *,
    resolution_m: float | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    force: bool = False,
    max_pixels: int = MAX_WINDOW_PIXELS,
    report: bool = True,
    progress: Progress | None = None,
    executor: Executor | None = None,
) -> RunResult:
    """Count railcars on ``inputs`` and write every output file of DESIGN.md to ``out_dir``.

    Parameters
    ----------
    inputs : sequence of str or Path
        Image files, folders or STAC documents.
    site : Site
        From :func:`railwatch.site.load_site` or :func:`railwatch.site.site_from_aoi`.
    out_dir : str or Path
        Output directory; created when missing. Files are replaced atomically and a lock
        keeps two runs apart.
    resolution_m : float, optional
        Working resolution override.
    workers : int
        Local worker processes.
    scheduler : str, optional
        Address of a Dask distributed scheduler to run the tasks on.
    force : bool
        Recompute every acquisition and the stack products.
    max_pixels : int
        Pixel budget of one read window.
    report : bool
        Write quicklooks, the time-series figure and report.html.
    progress : callable, optional
        ``progress(stage, done, total)``.
    executor : Executor, optional
        An open executor to share between runs (several sites on one pool or cluster);
        ``workers`` and ``scheduler`` are then ignored.

    Returns
    -------
    RunResult

    Raises
    ------
    NoUsableScenes
        Nothing among the inputs could be processed; previous outputs are left as they were.
    RunLocked
        Another run holds the output directory.
    """
    from railwatch.state import State, config_fingerprint, run_lock, software_fingerprint

    out = Path(out_dir)
    timer = StageTimes()
    started = time.perf_counter()
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
    logger.info("site grid %s, %dx%d px at %.2f m", grid.crs, grid.width, grid.height, res)

    own = executor is None
    with (
        run_lock(out),
        Executor(workers, scheduler) if own else contextlib.nullcontext(executor) as ex,
    ):
        from railwatch.outputs import remove_stale_temps

        for stale in remove_stale_temps(out):
            logger.info("removed %s, left by an interrupted run", stale.name)
        state = State(out)
        try:
            # The software fingerprint hashes the package's code: results stored by a
            # different build (same version string, other detector) are not reused.
            cfg = config_fingerprint(
                {"site": site.to_dict(), "grid": grid.to_dict(), "max_pixels": max_pixels},
                software_fingerprint(),
            )
            if force or state.get_meta("config") != cfg:
                if not force and state.get_meta("config") is not None:
                    logger.info("configuration or software changed: every acquisition is redone")
                state.reset()
                state.set_meta("config", cfg)
            stored_fp = state.fingerprints()
            fps = {a.id: _acq_fingerprint(a) for a in acqs}
            latest = state.latest_stack()
            known_ok = sum(1 for a in acqs if a.id in stored_fp and stored_fp[a.id][0] == fps[a.id])
            scenes: dict[str, Scene | SceneRef] = {}
            if _needs_new_stack(latest, max(known_ok, len(acqs)), grid):
                timer.seconds["setup"] = round(time.perf_counter() - started, 3)
                products, scenes, stack_rej = build_stack(
                    acqs, site, grid, ex, max_pixels=max_pixels, progress=progress, timer=timer
                )
                if products is None:
                    reasons = "; ".join(
                        f"{os.path.basename(r.path)}: {r.reason}" for r in stack_rej.values()
                    )
                    raise NoUsableScenes(f"no acquisition covers the AOI ({reasons[:300]})")
                if not products.tracks:
                    # Every count would be a confident 0: a yard whose tracks were not
                    # found is not an empty yard.
                    names = ", ".join(sorted({os.path.basename(f.path) for f in files}))
                    raise NoUsableScenes(
                        f"no track found in the imagery inside the AOI ({names[:300]}); "
                        "give the track centre lines (--tracks or the site file's tracks) "
                        "or check the AOI"
                    )
                with state.transaction():
                    version = state.save_stack(products.n_acquisitions, products)
                stored_fp = {}
            else:
                assert latest is not None
                version, _, products = latest
            todo = [a for a in acqs if stored_fp.get(a.id) != (fps[a.id], version)]
            logger.info(
                "%d acquisition(s) to analyse, %d from the state", len(todo), len(acqs) - len(todo)
            )
            # The anchors' edge images (most of the products' size) only place scenes
            # outside the stack's sample: workers get them only when there are such.
            shipped = products
            if products.anchors and all(a.id in products.shifts for a in todo):
                shipped = replace(products, anchors=())
            task_kw = {
                "products": shipped,
                "site": site,
                "max_pixels": max_pixels,
                "quicklook": report,
            }

            # Each result is committed as soon as it exists: a run killed half-way keeps
            # what it finished, and the next run does only the rest.
            n_saved = 0

            def save(i: int, result: Any) -> None:
                nonlocal n_saved
                with state.transaction():
                    state.save_acquisition(todo[i].id, fps[todo[i].id], version, result)
                n_saved += 1
                if progress:
                    # Results arrive in completion order on a pool or cluster.
                    progress("analysing", n_saved, len(todo))

            timer.seconds.setdefault("setup", round(time.perf_counter() - started, 3))
            with timer("analysis"):
                handed = [sc for sc in scenes.values() if isinstance(sc, SceneRef)]
                if ex.scheduler:
                    # A cluster gets paths and parameters; its workers read the imagery.
                    args = [(a, None) for a in todo]
                else:
                    # Locally the scenes read for the stack are handed on, not read again.
                    args = [(a, scenes.get(a.id)) for a in todo]
                scenes.clear()
                try:
                    ex.map(_process_task, args, shared=task_kw, on_result=save)
                finally:
                    # Sites sharing one pool share its scratch folder: each clears its own.
                    _release(handed)
            stored = state.stored()
            outcomes: list[AcquisitionOutcome] = []
            acq_rejections: list[Rejection] = []
            for a in acqs:
                r = stored[a.id].payload
                if isinstance(r, Rejection):
                    acq_rejections += [
                        Rejection(f.path, r.reason, f.datetime, f.crs, f.gsd_m) for f in a.files
                    ]
                else:
                    outcomes.append(r)
            if not outcomes:
                reasons = "; ".join(
                    f"{os.path.basename(r.path)}: {r.reason}" for r in acq_rejections[:3]
                )
                raise NoUsableScenes(f"no acquisition covers the AOI ({reasons})")
            checksums = state.sha256(
                sorted({f.path for o in outcomes for f in o.acquisition.files})
            )
            counts, weekly = _write_outputs(
                out,
                site,
                products,
                version,
                outcomes,
                rejected + acq_rejections,
                checksums,
                {
                    "resolution_m": grid.resolution_m,
                    "workers": ex.workers,
                    "scheduler": ex.scheduler,
                    "max_pixels": max_pixels,
                },
                report=report,
                timer=timer,
                analysed=len(todo),
                executor=ex,
            )
        finally:
            state.close()

    return RunResult(
        out_dir=out,
        counts=counts,
        weekly=weekly,
        scenes=scenes_table(
            [f for o in outcomes for f in o.acquisition.files], rejected + acq_rejections
        ),
        n_rejected=len(rejected) + len(acq_rejections),
        n_processed=len(todo),
        stack_version=version,
        outcomes=tuple(outcomes),
    )


# ----------------------------------------------------------------------------- many sites


@dataclass(frozen=True, slots=True)
class SiteRun:
    """Outcome of one site of :func:`run_sites`: its result, or the error that stopped it."""

    site: Site
    out_dir: Path
    result: RunResult | None
    error: RailwatchError | None = None

    @property
    def ok(self) -> bool:
        """True when the site's outputs were written."""
        return self.error is None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _tagged(progress: Progress | None, tag: str) -> Progress | None:
    """``progress`` with its stage names prefixed by ``tag``."""
    if progress is None:
        return None
    report = progress

    def tagged(stage: str, done: int, total: int) -> None:
        report(f"{tag}: {stage}", done, total)

    return tagged


def site_subdirs(sites: Sequence[Site]) -> list[str]:
    """One output subfolder name per site, unique within ``sites``.

    The name is the site's ``name`` as a lower-case ASCII slug; a site whose name gives
    no slug uses its file's name. Sites that would share a folder are told apart by
    their file's name, then by a number.

    Parameters
    ----------
    sites : sequence of Site

    Returns
    -------
    list of str

    Examples
    --------
    >>> from shapely.geometry import box
    >>> a = Site(name="Tumangang yard", aoi=box(0, 0, 1, 1), path="configs/a.yaml")
    >>> b = Site(name="Tumangang yard", aoi=box(0, 0, 1, 1), path="configs/b.yaml")
    >>> c = Site(name="Хасан", aoi=box(0, 0, 1, 1), path="configs/khasan.yaml")
    >>> site_subdirs([a, b, c])
    ['tumangang-yard-a', 'tumangang-yard-b', 'khasan']
    """
    stems = [_slug(Path(s.path).stem) if s.path else "" for s in sites]
    names = [_slug(s.name) or stem or "site" for s, stem in zip(sites, stems, strict=True)]
    names = [
        f"{n}-{stem}" if names.count(n) > 1 and stem and stem != n else n
        for n, stem in zip(names, stems, strict=True)
    ]
    out: list[str] = []
    for n in names:
        k, unique = 1, n
        while unique in out:
            k += 1
            unique = f"{n}-{k}"
        out.append(unique)
    return out


def run_sites(
    inputs: Sequence[str | Path],
    sites: Sequence[Site],
    out_dir: str | Path,
    *,
    subdirs: Sequence[str] | None = None,
    resolution_m: float | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    force: bool = False,
    max_pixels: int = MAX_WINDOW_PIXELS,
    report: bool = True,
    progress: Progress | None = None,
) -> Iterator[SiteRun]:
    """Count railcars for several sites on the same imagery, one subfolder each.

    Every site runs :func:`run_count` into ``out_dir / subdir`` with its own lock, state
    and outputs; all of them share one process pool or one Dask client. A site that
    fails (nothing usable over its AOI, its folder locked by another run, an output
    that cannot be written) is yielded with its error and the others go on.

    Parameters
    ----------
    inputs : sequence of str or Path
        Image files, folders or STAC documents, searched for every site.
    sites : sequence of Site
    out_dir : str or Path
        Parent output directory.
    subdirs : sequence of str, optional
        Subfolder of each site; default :func:`site_subdirs`.
    resolution_m, workers, scheduler, force, max_pixels, report
        As for :func:`run_count`.
    progress : callable, optional
        ``progress(stage, done, total)``; stages are prefixed with the subfolder name.

    Yields
    ------
    SiteRun
        One per site, in order, as soon as the site is done.

    Raises
    ------
    NoUsableScenes
        The Dask scheduler cannot be reached (before any site starts).
    """
    names = list(subdirs) if subdirs is not None else site_subdirs(sites)
    if len(names) != len(sites) or len(set(names)) != len(names):
        raise ValueError("subdirs must give one distinct folder per site")
    parent = Path(out_dir)
    with Executor(workers, scheduler) as ex:
        for site, name in zip(sites, names, strict=True):
            out = parent / name
            logger.info("site %s -> %s", site.name, out)
            try:
                result = run_count(
                    inputs,
                    site,
                    out,
                    resolution_m=resolution_m,
                    force=force,
                    max_pixels=max_pixels,
                    report=report,
                    progress=_tagged(progress, name),
                    executor=ex,
                )
            except RailwatchError as exc:
                logger.info("site %s failed: %s", site.name, exc)
                yield SiteRun(site, out, None, exc)
                continue
            yield SiteRun(site, out, result)


def _write_outputs(
    out: Path,
    site: Site,
    products: StackProducts,
    stack_version: int,
    outcomes: Sequence[AcquisitionOutcome],
    rejected: Sequence[Rejection],
    checksums: dict[str, str],
    parameters: dict[str, Any],
    *,
    report: bool,
    executor: Executor | None = None,
    timer: StageTimes | None = None,
    analysed: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write every output file; return the counts and weekly tables written."""
    t0 = time.perf_counter()
    import geopandas as gpd

    from railwatch import outputs, timeseries
    from railwatch.site import WGS84, to_crs

    grid = products.grid
    counts = timeseries.counts_table([o.to_record() for o in outcomes], site.baseline)
    weekly = timeseries.weekly_table(counts, site.baseline)
    used = [f for o in outcomes for f in o.acquisition.files]
    counts_csv = outputs.csv_text(counts)
    site_dict = site.to_dict()
    figures = []
    if report:
        # The figure needs only the counts: drawn beside the files written below, from
        # the very text of counts.csv, so `railwatch report` redraws the same bytes. One
        # task per format: on a pool the two drawings (the last serial step) run at once.
        ex = executor if executor is not None else Executor()
        name = str(site_dict.get("name") or out.resolve().name)
        figures = [
            ex.submit_local(_figure_task, counts_csv, site_dict, name, fmt)
            for fmt in ("png", "svg")
        ]
    # The GeoPackage first: if it cannot be written, no table has changed either.
    write_geopackage(
        out / "railcars.gpkg",
        {
            "railcars": vehicles_frame(outcomes, grid.crs, site.detection.min_confidence),
            "tracks": gpd.GeoDataFrame(
                {"track_id": [t.track_id for t in products.tracks]},
                geometry=[t.line for t in products.tracks],
                crs=grid.crs,
            ),
            "aoi": gpd.GeoDataFrame(
                {"name": [site.name]}, geometry=[to_crs(site.aoi, WGS84, grid.crs)], crs=grid.crs
            ),
            "footprints": footprints_frame(outcomes, grid.crs),
        },
    )
    outputs.write_csv(out / "scenes.csv", scenes_table(used, rejected))
    outputs.write_text(out / "counts.csv", counts_csv)
    outputs.write_csv(out / "weekly.csv", weekly)
    thumbnails = {}
    if report:
        for o in outcomes:
            if o.quicklook_png is not None:
                name = f"{o.acquisition.id}.png"
                target = out / "quicklooks" / name
                if not target.exists() or target.read_bytes() != o.quicklook_png:
                    outputs.write_bytes(target, o.quicklook_png)
                thumb = getattr(o, "thumbnail_jpeg", None)  # absent in older state files
                if thumb is not None:
                    thumbnails[name] = thumb
    run = {
        "version": __version__,
        "site": site_dict,
        "grid": grid.to_dict(),
        "inputs": [
            {"path": p, "size": os.path.getsize(p), "sha256": h}
            for p, h in sorted(checksums.items())
        ]
        + [{"path": f.path} for f in used if f.path.startswith("/vsi")],
        "rejected": [{"path": r.path, "reason": r.reason} for r in rejected],
        "parameters": parameters,
        "stack": {
            "version": stack_version,
            "built_from_acquisitions": products.n_acquisitions,
            "tracks_source": products.tracks_source,
            "n_tracks": len(products.tracks),
        },
        "created": iso_utc(dt.datetime.now(dt.UTC)),
    }
    if timer is not None:
        # Up to here; the report (figure, HTML) follows and is not included.
        run["timings_s"] = {
            **timer.seconds,
            "outputs": round(time.perf_counter() - t0, 3),
        }
        run["analysed_now"] = analysed
    outputs.write_json(out / "run.json", run)
    if figures:
        from railwatch.report import build_report

        png, svg = (pool_result(f) for f in figures)
        build_report(out, figures=(png, svg), thumbnails=thumbnails)
    return counts, weekly


def _figure_task(counts_csv: str, site: dict[str, Any], name: str, fmt: str) -> bytes:
    import io

    from railwatch.report import render_figures
    from railwatch.timeseries import read_counts

    (figure,) = render_figures(read_counts(io.StringIO(counts_csv)), site, name, (fmt,))
    return figure

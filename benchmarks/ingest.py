"""Ingest benchmark: reading the AOI from a large tiled GeoTIFF vs from a file cropped to it.

Prints one table. Each case runs in a fresh subprocess so its peak RSS is its own; the
cases run interleaved, several rounds, and the median is reported, because shared machines
are noisy. Target (issue 2): big/cropped time ratio <= 1.5, peak memory independent of
scene size.

    python benchmarks/ingest.py [--rounds 5] [--aoi-m 600x200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

X0, Y0, RES = 632_000.0, 4_697_000.0, 0.5
CRS = "EPSG:32652"

CHILD = r"""
import json, resource, sys, time
from railwatch.imagery import discover, group_acquisitions, read_acquisition
from railwatch.site import Site, make_grid
from shapely.geometry import box
from railwatch.site import to_crs
path, minx, miny, maxx, maxy = sys.argv[1], *map(float, sys.argv[2:6])
aoi = to_crs(box(minx, miny, maxx, maxy), "EPSG:32652", "EPSG:4326")
grid = make_grid(Site(name="b", aoi=aoi, margin_m=30.0), 0.5)
files, _ = discover([path])
acq = group_acquisitions(files)[0]
t0 = time.perf_counter()
scene = read_acquisition(acq, grid)
dt = time.perf_counter() - t0
assert scene.valid.mean() > 0.99
print(json.dumps({"seconds": dt, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def make_scene(path: Path, size: int, rng: np.random.Generator) -> None:
    """Tiled, DEFLATE-compressed 3-band uint8 GeoTIFF of ``size`` x ``size`` pixels."""
    profile = dict(
        driver="GTiff",
        width=size,
        height=size,
        count=3,
        dtype="uint8",
        crs=CRS,
        transform=Affine(RES, 0, X0, 0, -RES, Y0),
        tiled=True,
        blockxsize=512,
        blockysize=512,
        compress="deflate",
        predictor=2,
    )
    block = (60 + rng.normal(0, 12, (3, 512, 512))).clip(0, 255).astype(np.uint8)
    with rasterio.open(path, "w", **profile) as dst:
        dst.update_tags(ACQUISITIONDATETIME="2024-06-17T02:15:00Z")
        for r in range(0, size, 512):
            for c in range(0, size, 512):
                h, w = min(512, size - r), min(512, size - c)
                dst.write(block[:, :h, :w], window=rasterio.windows.Window(c, r, w, h))


def crop(src_path: Path, dst_path: Path, bounds: tuple[float, float, float, float]) -> None:
    """Copy the window of ``bounds`` (plus 40 m) into a new small file."""
    with rasterio.open(src_path) as src:
        win = (
            rasterio.windows.from_bounds(
                bounds[0] - 40, bounds[1] - 40, bounds[2] + 40, bounds[3] + 40, src.transform
            )
            .round_lengths()
            .round_offsets()
        )
        data = src.read(window=win)
        profile = src.profile | {
            "width": data.shape[2],
            "height": data.shape[1],
            "transform": src.window_transform(win),
        }
        with rasterio.open(dst_path, "w", **profile) as dst:
            dst.write(data)
            dst.update_tags(**src.tags())


def run_child(path: Path, bounds: tuple[float, ...]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), *map(str, bounds)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--aoi-m", default="600x200", help="AOI size in metres, WxH")
    args = ap.parse_args()
    aw, ah = map(float, args.aoi_m.split("x"))
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        sizes = [2000, 8000]
        # AOI in the middle of the smallest scene so every file covers it.
        cx, cy = X0 + 500.0, Y0 - 500.0
        bounds = (cx - aw / 2, cy - ah / 2, cx + aw / 2, cy + ah / 2)
        cases: dict[str, Path] = {}
        for s in sizes:
            p = d / f"scene_{s}.tif"
            make_scene(p, s, rng)
            cases[f"{s}x{s} tiled"] = p
        crop(cases["8000x8000 tiled"], d / "cropped.tif", bounds)
        cases["cropped to AOI"] = d / "cropped.tif"
        results: dict[str, list[dict[str, float]]] = {k: [] for k in cases}
        for _ in range(args.rounds):
            for name, p in cases.items():
                results[name].append(run_child(p, bounds))
    base = statistics.median(r["seconds"] for r in results["cropped to AOI"])
    print(f"AOI {aw:.0f} x {ah:.0f} m at {RES} m (+30 m margin); median of {args.rounds} rounds")
    print(f"{'input':<20} {'read s':>8} {'ratio':>7} {'peak RSS MB':>12}")
    for name, rs in results.items():
        sec = statistics.median(r["seconds"] for r in rs)
        mem = statistics.median(r["maxrss_mb"] for r in rs)
        print(f"{name:<20} {sec:>8.3f} {sec / base:>7.2f} {mem:>12.1f}")


if __name__ == "__main__":
    main()

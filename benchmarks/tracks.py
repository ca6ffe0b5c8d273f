"""Track extraction benchmark: extracted centre lines against the simulator's true tracks.

For every seed a 0.5 m simulated set is rendered (cached under ``--cache``), every
acquisition is read onto the site grid and put back on true ground coordinates with the
simulator's known georeferencing shift (so the figures measure extraction, not
co-registration), and :func:`railwatch.tracks.extract_tracks` runs on the whole stack and
on single clear images. Against ``truth/tracks.geojson`` clipped to the AOI it prints:
extracted vs true tracks, recall (share of true length within 1 m of an extracted line),
precision (share of extracted length within 1 m of a true line), fragments per true track
(extracted lines running >= 15 m along it) and run time.

Targets (issue 3): stack recall >= 0.95, precision >= 0.95, <= 1.5 fragments per track;
single image recall >= 0.85, precision >= 0.9. Seeds 1-5 were used for tuning; 101-103 are
held out.

    python benchmarks/tracks.py --seeds 101 102 103 [--dates 12] [--singles 3] [--png /tmp]
    python benchmarks/tracks.py --timing   # 1000 x 1000 px, 48 dates
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path

import numpy as np
from shapely.geometry import LineString, shape
from shapely.ops import unary_union

from railwatch.align import apply_shift
from railwatch.imagery import discover, group_acquisitions, read_acquisition
from railwatch.site import aoi_in_grid, make_grid, site_from_aoi, to_crs
from railwatch.tracks import extract_tracks

TOL_M = 1.0
RES_M = 0.5
FRAGMENT_MIN_M = 15.0


def render(seed: int, dates: int, cache: Path) -> Path:
    """Simulated set for ``seed`` (rendered once, then reused)."""
    from railwatch.simulate import simulate_yard

    out = cache / f"tracks_seed{seed}_d{dates}"
    if not (out / "truth" / "scenes.csv").exists():
        simulate_yard(out, rng=np.random.default_rng(seed), dates=dates, gsd_m=RES_M)
    return out


def load(folder: Path):
    """Grid, AOI and true tracks (grid CRS), and the scenes on true ground coordinates."""
    site = site_from_aoi(folder / "truth" / "aoi.geojson")
    grid = make_grid(site, RES_M)
    aoi = aoi_in_grid(site, grid)
    doc = json.loads((folder / "truth" / "tracks.geojson").read_text())
    truth = []
    for f in doc["features"]:
        ln = to_crs(shape(f["geometry"]), "EPSG:4326", grid.crs).intersection(aoi)
        if not ln.is_empty and ln.length > 0:
            truth.append(ln)
    rows = {r["files"].split(";")[0]: r for r in csv.DictReader(open(folder / "truth/scenes.csv"))}
    files, _ = discover([folder])
    scenes = []
    for acq in group_acquisitions(files):
        row = rows.get(Path(acq.files[0].path).name)
        if row is None:
            continue
        sc = read_acquisition(acq, grid)
        if not sc.valid.any():
            continue
        sx, sy = float(row["shift_x_m"]), float(row["shift_y_m"])
        gray, valid = apply_shift(sc.gray(), sc.valid, (sy / RES_M, -sx / RES_M))
        scenes.append((row, gray, valid, sc))
    return grid, aoi, truth, scenes


def score(lines: list[LineString], truth: list) -> dict[str, float]:
    """Recall, precision and fragments per (found) true track."""
    true_len = sum(t.length for t in truth)
    ext_len = sum(ln.length for ln in lines)
    if not lines:
        return {"n": 0, "recall": 0.0, "precision": 0.0, "frag": float("nan")}
    ext_zone = unary_union([ln.buffer(TOL_M) for ln in lines])
    true_zone = unary_union([t.buffer(TOL_M) for t in truth])
    recall = sum(t.intersection(ext_zone).length for t in truth) / true_len
    precision = sum(ln.intersection(true_zone).length for ln in lines) / ext_len
    frags = []
    for t in truth:
        zone = t.buffer(TOL_M)
        k = sum(1 for ln in lines if ln.intersection(zone).length >= FRAGMENT_MIN_M)
        if k:
            frags.append(k)
    frag = sum(frags) / len(frags) if frags else float("nan")
    return {"n": len(lines), "recall": recall, "precision": precision, "frag": frag}


def quicklook(path: Path, image: np.ndarray, grid, truth, lines, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = grid.transform
    h, w = image.shape
    fig, ax = plt.subplots(figsize=(7, 7 * h / w + 0.5), dpi=130)
    lo, hi = np.percentile(image, [1, 99])
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")

    def draw(ln, **kw):
        c = np.asarray(ln.coords)
        ax.plot((c[:, 0] - t.c) / t.a - 0.5, (c[:, 1] - t.f) / t.e - 0.5, **kw)

    for ln in truth:
        for part in getattr(ln, "geoms", [ln]):
            draw(part, color="lime", lw=2.5, alpha=0.5)
    for i, ln in enumerate(lines):
        draw(ln, color="red", lw=0.8)
        c = np.asarray(ln.coords)[0]
        ax.text((c[0] - t.c) / t.a, (c[1] - t.f) / t.e, f"T{i + 1}", color="yellow", fontsize=6)
    ax.set_title(title, fontsize=8)
    ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def run_seed(seed: int, args: argparse.Namespace) -> list[dict]:
    folder = render(seed, args.dates, args.cache)
    grid, aoi, truth, scenes = load(folder)
    out = []
    grays = [g for _, g, _, _ in scenes]
    valids = [v for _, _, v, _ in scenes]
    t0 = time.perf_counter()
    tracks = extract_tracks(grays, valids, grid, aoi)
    dt = time.perf_counter() - t0
    lines = [tr.line for tr in tracks]
    out.append({"seed": seed, "mode": "stack", "true": len(truth), "s": dt, **score(lines, truth)})
    if args.png:
        med = np.nanmedian(
            np.stack([np.where(v, g, np.nan) for g, v in zip(grays, valids, strict=True)]), 0
        )
        quicklook(
            args.png / f"tracks_seed{seed}_stack.png",
            np.nan_to_num(med),
            grid,
            truth,
            lines,
            f"seed {seed}: stack of {len(grays)}, {len(lines)} lines (red) vs truth (green)",
        )
    singles = [s for s in scenes if s[0]["status"] == "ok" and s[0]["snow"] == "False"]
    for k, (row, gray, valid, _) in enumerate(singles[: args.singles]):
        t0 = time.perf_counter()
        tracks = extract_tracks([gray], [valid], grid, aoi)
        dt = time.perf_counter() - t0
        lines = [tr.line for tr in tracks]
        rec = {"seed": seed, "mode": f"single {row['date']}", "true": len(truth), "s": dt}
        out.append({**rec, **score(lines, truth), "cars": int(row["n_vehicles"])})
        if args.png and k == 0:
            quicklook(
                args.png / f"tracks_seed{seed}_single.png",
                gray,
                grid,
                truth,
                lines,
                f"seed {seed}: single {row['date']} ({row['n_vehicles']} vehicles), "
                f"{len(lines)} lines",
            )
    return out


def timing(args: argparse.Namespace) -> None:
    """Run time on a 1000 x 1000 px AOI stack of 48 dates (tiles of a simulated set)."""
    folder = render(args.seeds[0], args.dates, args.cache)
    grid, _, _, scenes = load(folder)
    from affine import Affine
    from shapely.geometry import box

    from railwatch.site import SiteGrid

    big = SiteGrid(grid.crs, Affine(RES_M, 0, 0, 0, -RES_M, 1000 * RES_M), 1000, 1000)
    grays, valids = [], []
    for k in range(48):
        g, v = scenes[k % len(scenes)][1:3]
        gg = np.resize(np.pad(g, ((0, 0), (0, max(0, 1000 - g.shape[1]))), mode="reflect"), g.shape)
        tile = np.zeros((1000, 1000), np.float32)
        vv = np.zeros((1000, 1000), bool)
        hh, ww = min(1000, g.shape[0]), min(1000, g.shape[1])
        tile[:hh, :ww] = g[:hh, :ww]
        vv[:hh, :ww] = v[:hh, :ww]
        tile[:hh, ww:] = gg[:hh, : 1000 - ww][:, ::-1] if ww < 1000 else 0
        vv[:hh, ww:] = v[:hh, : 1000 - ww][:, ::-1] if ww < 1000 else False
        grays.append(tile)
        valids.append(vv)
    aoi = box(10, 10, 490, 490)
    times = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        n = len(extract_tracks(grays, valids, big, aoi))
        times.append(time.perf_counter() - t0)
    print(
        f"1000x1000 px, 48 dates: {statistics.median(times):.2f} s (median of "
        f"{args.rounds}), {n} lines"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[101, 102, 103])
    ap.add_argument("--dates", type=int, default=12)
    ap.add_argument("--singles", type=int, default=3, help="single images scored per seed")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/railwatch-bench"))
    ap.add_argument("--png", type=Path, default=None, help="folder for one quicklook per seed")
    ap.add_argument("--timing", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.png:
        args.png.mkdir(parents=True, exist_ok=True)
    if args.timing:
        timing(args)
        return
    rows = [r for s in args.seeds for r in run_seed(s, args)]
    head = f"{'seed':>5} {'mode':<18} {'true':>4} {'found':>5} {'recall':>6} {'prec':>6} "
    print(head + f"{'frag':>5} {'sec':>5}")
    for r in rows:
        print(
            f"{r['seed']:>5} {r['mode']:<18} {r['true']:>4} {r['n']:>5} {r['recall']:6.3f} "
            f"{r['precision']:6.3f} {r['frag']:5.2f} {r['s']:5.1f}"
        )
    for mode in ("stack", "single"):
        sel = [r for r in rows if r["mode"].startswith(mode)]
        if sel:
            print(
                f"mean  {mode:<18} {'':>4} {'':>5} "
                f"{np.mean([r['recall'] for r in sel]):6.3f} "
                f"{np.mean([r['precision'] for r in sel]):6.3f} "
                f"{np.nanmean([r['frag'] for r in sel]):5.2f}"
            )


if __name__ == "__main__":
    main()

"""Detection and count accuracy on simulated yards the detector was not tuned on.

Renders held-out simulated archives (seeds 101-105; tuning used seeds 11-18 and 21-30 and
the bundled sample, seed 2024; see docs/accuracy.md), runs ``railwatch count`` on each and
scores the results with ``railwatch evaluate``. Prints one table, measured in one run:

* ``surveyed``: the site file gives the true track centre lines (as an analyst's
  digitised tracks would);
* ``extracted``: no tracks in the site file, centre lines found in the imagery; scored
  again with the archive's median georeferencing error taken out of the truth (without
  surveyed tracks the stack sits where the provider's georeferencing puts it on average);
* ``1.0 m``: every acquisition at 1.0 m (surveyed tracks);
* ``catenary``: the first held-out archive again, as an electrified yard (overhead-line
  portals and their shadows across the tracks; surveyed tracks): compare with its
  ``surveyed`` row;
* ``single``: one acquisition alone, ``--aoi`` only, no history, no tracks; scored
  against true ground and again with the scene's simulated georeferencing error taken out
  of the truth (a lone scene cannot be co-registered, so its vehicles are off by the
  provider's error, up to 10 m here, beyond the 3 m match distance).

``shift_1px_%`` is the share of observed acquisitions (``ok`` and ``partial``) whose
co-registration shift is within one pixel (of the scene's GSD) of the simulated
georeferencing error; ``shift_rel_1px_%`` the same after removing the archive's median
error, i.e. how well the scenes are registered to each other (all a stack without
surveyed tracks can do: its shifts have median zero).

``type_acc`` is the share of matched vehicles whose type agrees with the truth (every
scored acquisition; at 1.0 m types rest mostly on length, and only from 1.5 m on are they
``unknown``, which counts as wrong).

Run from the repository root::

    python benchmarks/accuracy.py            # all held-out seeds (about 10 minutes)
    python benchmarks/accuracy.py --quick    # one seed per setting

Results are recorded in docs/accuracy.md.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from railwatch import count
from railwatch.evaluate import evaluate_dir
from railwatch.simulate import simulate_yard

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "configs" / "tumangang.yaml"


def _site_file(tmp: Path, tracks: Path | None) -> Path:
    cfg = yaml.safe_load(SITE.read_text())
    cfg.pop("events", None)
    cfg.pop("tracks", None)
    if tracks is not None:
        cfg["tracks"] = str(tracks)
    path = tmp / ("site_surveyed.yaml" if tracks else "site.yaml")
    path.write_text(yaml.safe_dump(cfg))
    return path


def _score(out: Path, truth: Path) -> dict[str, float]:
    res = evaluate_dir(out, truth / "cars.geojson", truth_counts_path=truth / "counts.csv")
    rows = res.per_acquisition
    status = rows["status"].astype(str)
    gsd = pd.to_numeric(rows["gsd_m"], errors="coerce")
    ok_fine = rows[(status == "ok") & (gsd <= 0.55)]
    coarse = rows[(gsd >= 0.95) & status.isin(["ok", "partial"])]

    def f1(frame: pd.DataFrame) -> float:
        tp, fp, fn = (pd.to_numeric(frame[c], errors="coerce").sum() for c in ("tp", "fp", "fn"))
        return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan

    def mape(frame: pd.DataFrame) -> float:
        t = pd.to_numeric(frame["truth"], errors="coerce")
        e = pd.to_numeric(frame["abs_error"], errors="coerce")
        keep = t > 0
        return float((e[keep] / t[keep]).mean() * 100) if keep.any() else math.nan

    def wape(frame: pd.DataFrame) -> float:
        # Errors summed over the truth summed: a near-empty scene with 2 false cars
        # weighs 2 cars, not 100 %.
        t = pd.to_numeric(frame["truth"], errors="coerce")
        e = pd.to_numeric(frame["abs_error"], errors="coerce")
        return float(e.sum() / t.sum() * 100) if t.sum() > 0 else math.nan

    inside = rows["in_interval"].astype(str).str.lower()
    scored = inside.isin(["true", "false"])
    return {
        "n_acq": len(rows),
        "n_ok_fine": len(ok_fine),
        "f1_ok_fine": f1(ok_fine),
        "mape_ok_fine_%": mape(ok_fine),
        "wape_ok_fine_%": wape(ok_fine),
        "mape_1m_%": mape(coarse),
        "type_acc": res.type_accuracy,
        "false_numbers": res.n_false_numbers,
        "n_partial": int((status == "partial").sum()),
        "in_interval_%": float((inside[scored] == "true").mean() * 100)
        if scored.any()
        else math.nan,
    }


def _registration(out: Path, truth: Path) -> dict[str, float]:
    """Shares of observed acquisitions co-registered within one pixel, absolute and relative.

    Reads each acquisition's shift from the run's state database (the shift vector is not
    in the public outputs, only its length) and compares it with the simulator's error.
    """
    from railwatch.state import State

    scenes = pd.read_csv(truth / "scenes.csv", dtype={"date": str}).set_index("date")
    state = State(out)
    try:
        stored = state.stored()
    finally:
        state.close()
    err, gsd = [], []
    for item in stored.values():
        o = item.payload
        if not hasattr(o, "shift_px"):  # a rejected acquisition
            continue
        date = str(o.acquisition.datetime.date())
        if o.analysis.quality.status not in ("ok", "partial") or date not in scenes.index:
            continue
        sx, sy = scenes.loc[date, ["shift_x_m", "shift_y_m"]].astype(float)
        # shift_px (rows, columns) moves the scene onto the site; the simulated error
        # moved it by (east sx, north sy).
        dy, dx = (np.asarray(o.shift_px, float) * o.resolution_m) - (sy, -sx)
        err.append((dy, dx))
        gsd.append(max(float(o.gsd_m), o.resolution_m))
    if not err:
        return {"shift_1px_%": math.nan, "shift_rel_1px_%": math.nan}
    e, g = np.array(err), np.array(gsd)
    rel = e - np.median(e, axis=0)
    return {
        "shift_1px_%": float((np.hypot(*e.T) <= g).mean() * 100),
        "shift_rel_1px_%": float((np.hypot(*rel.T) <= g).mean() * 100),
    }


def _scored(setting: str, seed: int, inputs: Path, out: Path, truth: Path, **where) -> dict:
    """Run ``railwatch count`` on ``inputs`` and score it; ``where``: site= or aoi=."""
    t0 = time.perf_counter()
    count([inputs], out_dir=out, **where)
    row = {"setting": setting, "seed": seed, **_score(out, truth)}
    if "site" in where:  # a lone scene (aoi only) is not co-registered
        row.update(_registration(out, truth))
    row["seconds"] = round(time.perf_counter() - t0, 1)
    print(row, file=sys.stderr, flush=True)
    return row


def _truth_as_imaged(truth: Path, out: Path, scene: pd.Series) -> Path:
    """A copy of ``truth`` with the cars moved by a simulated georeferencing error.

    ``scene`` holds ``shift_x_m`` and ``shift_y_m``: one scene's error, or the median over
    an archive's scenes.
    """
    import geopandas as gpd

    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(truth / "counts.csv", out / "counts.csv")
    cars = gpd.read_file(truth / "cars.geojson")
    utm = cars.estimate_utm_crs()
    cars = cars.to_crs(utm)
    cars["geometry"] = cars.geometry.translate(float(scene["shift_x_m"]), float(scene["shift_y_m"]))
    cars.to_file(out / "cars.geojson", driver="GeoJSON")
    return out


def run(seeds: list[int], quick: bool) -> pd.DataFrame:
    rows = []
    with tempfile.TemporaryDirectory(prefix="railwatch-accuracy-") as tmpdir:
        tmp = Path(tmpdir)
        for seed in seeds:
            sim = tmp / f"sim{seed}"
            simulate_yard(sim, rng=np.random.default_rng(seed))
            truth = sim / "truth"
            for name, site in (
                ("surveyed", _site_file(tmp, truth / "tracks.geojson")),
                ("extracted", _site_file(tmp, None)),
            ):
                rows.append(_scored(name, seed, sim, tmp / f"out{seed}_{name}", truth, site=site))
            # Without surveyed tracks nothing ties the stack to true ground: it sits at the
            # median georeferencing of its scenes (the shifts are solved with median zero).
            # Scored again against the truth moved by that median (known only here).
            scenes = pd.read_csv(truth / "scenes.csv")
            bias = scenes.loc[scenes["status"] != "no_coverage", ["shift_x_m", "shift_y_m"]]
            moved = _truth_as_imaged(truth, tmp / f"truth{seed}_stack", bias.median())
            row = {"setting": "extracted, georef. bias removed", "seed": seed,
                   **_score(tmp / f"out{seed}_extracted", moved)}  # fmt: skip
            print(row, file=sys.stderr, flush=True)
            rows.append(row)
        # Every acquisition at 1.0 m, and an electrified yard (the first held-out archive
        # again, with overhead-line portals); surveyed tracks.
        variants = [(s + 3, "1.0 m", {"gsd_m": 1.0}) for s in seeds[: 1 if quick else 2]]
        variants.append((seeds[0], "catenary", {"catenary_portals": True}))
        for seed, name, kw in variants:
            sim = tmp / f"sim{seed}_{name.replace(' ', '')}"
            simulate_yard(sim, rng=np.random.default_rng(seed), **kw)
            truth = sim / "truth"
            site = _site_file(tmp, truth / "tracks.geojson")
            rows.append(_scored(name, seed, sim, tmp / f"out_{sim.name}", truth, site=site))
        # One acquisition alone: the busiest observable one of a held-out archive.
        seed = seeds[0] + 4
        sim = tmp / f"sim{seed}"
        simulate_yard(sim, rng=np.random.default_rng(seed))
        truth_counts = pd.read_csv(sim / "truth" / "scenes.csv")
        ok = truth_counts[truth_counts["status"] == "ok"]
        pick = ok.sort_values("n_vehicles").iloc[-1]
        single = tmp / "single"
        single.mkdir()
        for f in str(pick["files"]).split(";"):
            shutil.copy(sim / f, single / f)
        aoi = sim / "truth" / "aoi.geojson"
        rows.append(_scored("single", seed, single, tmp / "out_single", sim / "truth", aoi=aoi))
        # Alone, a scene cannot be co-registered: its vehicles lie where the provider's
        # georeferencing puts them, off by the simulated 0-10 m. Scored again against the
        # truth moved by that (known only here) error: what the detection itself found.
        moved = _truth_as_imaged(sim / "truth", tmp / "truth_as_imaged", pick)
        row = {"setting": "single, georef. error removed", "seed": seed,
               **_score(tmp / "out_single", moved)}  # fmt: skip
        print(row, file=sys.stderr, flush=True)
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one seed per setting")
    ap.add_argument("--seeds", type=int, nargs="*", default=None)
    args = ap.parse_args()
    seeds = args.seeds or ([101] if args.quick else [101, 102, 103])
    table = run(seeds, args.quick)
    pd.set_option("display.width", 200)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print()
    summary = table.groupby("setting", sort=False).agg(
        f1_ok_fine=("f1_ok_fine", "mean"),
        mape_ok_fine=("mape_ok_fine_%", "mean"),
        wape_ok_fine=("wape_ok_fine_%", "mean"),
        mape_1m=("mape_1m_%", "mean"),
        type_acc=("type_acc", "mean"),
        false_numbers=("false_numbers", "sum"),
        in_interval=("in_interval_%", "mean"),
        shift_1px=("shift_1px_%", "mean"),
        shift_rel_1px=("shift_rel_1px_%", "mean"),
    )
    print("Targets: F1 >= 0.95 and MAPE <= 3 % (ok, <= 0.5 m); MAPE <= 8 % at 1.0 m;")
    print("         (WAPE: summed absolute error / summed truth, for reading MAPE only)")
    print("         0 obscured acquisitions with a number; truth in interval >= 90 %;")
    print("         shifts of 0-10 m recovered within one pixel (shift_1px, % of observed).")
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()

"""Reliability, imagery family (issue 6): every bad image gets a clear, exact answer.

One mixed folder (a good yard plus every kind of bad file) is counted once; each bad file
must appear in scenes.csv as ``rejected`` with its exact reason while the good scene is
used. Each bad input alone must stop the run with exit 3, one ``Error:`` line naming the
file, no traceback, and the previous outputs left byte-identical. Unusual but valid
products (panchromatic, 16-bit 4-band, float32, 8 bands, BGR with a band mapping, EPSG:4326
across a UTM zone boundary) must be used and read correctly.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from rasterio.warp import Resampling, calculate_default_transform, reproject

from railwatch.imagery import discover, group_acquisitions, read_acquisition
from railwatch.site import Site, SiteGrid, make_grid, to_crs
from rasters import write_geotiff
from reliability import (
    GRID,
    assert_clean_error,
    cli_subprocess,
    copy_outputs,
    rows_by_name,
    run,
    scenes,
    snapshot,
    without_root_file_powers,
    write_aoi,
    write_geojson,
    write_yard,
    yard_dn,
)

GOOD = "20240617_yard.tif"

# file name -> exact reason in scenes.csv
EXPECTED_REASONS = {
    "20240101_empty.tif": "file is empty (0 bytes)",
    "20240102_truncated.tif": "file is truncated (image data end past end of file)",
    "20240103_photo.png": "not georeferenced (no CRS or geotransform)",
    "20240104_photo.jpg": "not georeferenced (no CRS or geotransform)",
    "20240105_nocrs.tif": "raster has no CRS",
    "yard_undated.tif": "no acquisition date in STAC, metadata or file name",
    "20240106_corrupt.tif": "pixels unreadable (truncated or corrupt file)",
    "20240107_nodata.tif": "no valid data over the AOI",
    "20240108_elsewhere.tif": "footprint does not overlap the AOI",
    "loop_a.tif": "symbolic link loop",
    "loop_b.tif": "symbolic link loop",
    "20240109_gone.tif": "broken symbolic link",
}


# ----------------------------------------------------------------------------- builders


def make_bad(kind: str, folder):
    """Write the bad input ``kind`` (a file name of EXPECTED_REASONS) into ``folder``."""
    p = folder / kind
    if kind == "20240101_empty.tif":
        p.write_bytes(b"")
    elif kind == "20240102_truncated.tif":
        write_yard(p)
        data = p.read_bytes()
        p.write_bytes(data[: len(data) // 2])
    elif kind in ("20240103_photo.png", "20240104_photo.jpg"):
        driver = "PNG" if kind.endswith(".png") else "JPEG"
        with rasterio.open(
            p, "w", driver=driver, width=64, height=48, count=3, dtype="uint8"
        ) as dst:
            dst.write(yard_dn()[:, :48, :64])
    elif kind == "20240105_nocrs.tif":
        write_yard(p, crs=None)
    elif kind == "yard_undated.tif":
        write_yard(p)
    elif kind == "20240106_corrupt.tif":
        # Header and block directory intact, compressed pixel data garbled.
        write_yard(p, tiled=True)
        with rasterio.open(p) as src:
            off = int(src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
            size = int(src.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=1))
        with open(p, "r+b") as fh:
            fh.seek(off + 2)
            fh.write(np.random.default_rng(0).integers(0, 256, size - 4, np.uint8).tobytes())
    elif kind == "20240107_nodata.tif":
        # Starts 100 m west of the yard; only its first 30 m hold data, far from the AOI.
        dn = np.zeros((3, GRID.height, GRID.width + 200), np.uint8)
        dn[:, :, :60] = 90
        t = GRID.transform
        write_geotiff(p, dn, crs=GRID.crs, transform=t @ Affine.translation(-200, 0), nodata=0)
    elif kind == "20240108_elsewhere.tif":
        write_yard(p, transform=GRID.transform @ Affine.translation(10_000, 0))
    elif kind == "loop_a.tif":
        os.symlink(folder / "loop_b.tif", p)
    elif kind == "loop_b.tif":
        os.symlink(folder / "loop_a.tif", p)
    elif kind == "20240109_gone.tif":
        os.symlink(folder / "never_written.tif", p)
    else:  # pragma: no cover - a typo in the table
        raise AssertionError(kind)
    return p


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """One count over a good yard plus every bad file, a duplicate and a folder loop."""
    tmp = tmp_path_factory.mktemp("mixed")
    img = tmp / "img"
    img.mkdir()
    write_yard(img / GOOD)
    shutil.copyfile(img / GOOD, img / "20240617_yard_copy.tif")
    for kind in EXPECTED_REASONS:
        make_bad(kind, img)
    (img / "notes.txt").write_text("not imagery, ignored")
    (img / "more").mkdir()
    os.symlink(img, img / "more" / "up")  # a folder loop: visited once, no row
    aoi = write_aoi(tmp / "aoi.geojson")
    out = tmp / "out"
    r = run("count", img, "--aoi", aoi, "--out", out)
    return tmp, img, aoi, out, r


@pytest.fixture(scope="module")
def previous(tmp_path_factory):
    """Outputs of a successful earlier run on the good yard, kept pristine."""
    tmp = tmp_path_factory.mktemp("previous")
    write_yard(tmp / GOOD)
    aoi = write_aoi(tmp / "aoi.geojson")
    r = run("count", tmp / GOOD, "--aoi", aoi, "--out", tmp / "out")
    assert r.exit_code == 0, r.output
    return tmp / "out", aoi


# ----------------------------------------------------------------------------- mixed folder


def test_mixed_folder_uses_the_good_scene_and_exits_0(mixed):
    _, img, _, out, r = mixed
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output
    rows = rows_by_name(out)
    assert rows[GOOD] == ("used", "")
    counts = pd.read_csv(out / "counts.csv")
    assert counts["date"].tolist() == ["2024-06-17"]
    assert counts["n_tiles"].tolist() == [1]  # the copy was not mosaicked twice
    assert f"{len(rows) - 1} file(s) rejected" in r.stderr


@pytest.mark.parametrize("name", sorted(EXPECTED_REASONS))
def test_mixed_folder_rejects_each_bad_file_with_its_reason(mixed, name):
    *_, out, _ = mixed
    assert rows_by_name(out)[name] == ("rejected", EXPECTED_REASONS[name])


def test_info_lists_every_bad_file_with_its_reason(mixed):
    _, img, aoi, _, _ = mixed
    r = run("info", img, "--aoi", aoi)
    assert r.exit_code == 0, r.output
    assert "Traceback" not in r.output
    status = {
        os.path.basename(line.split("\t")[0]): line.split("\t")[-1]
        for line in r.stdout.splitlines()[1:]
    }
    assert status[GOOD] == "ok"
    for name, reason in EXPECTED_REASONS.items():
        if name in ("20240106_corrupt.tif", "20240107_nodata.tif", "20240108_elsewhere.tif"):
            assert status[name] == "ok"  # readable metadata; the pixels decide in `count`
        else:
            assert status[name] == f"rejected: {reason}"


def test_fifo_named_like_an_image_is_not_opened(previous, tmp_path):
    _, aoi = previous
    d = tmp_path / "spool"
    d.mkdir()
    write_yard(d / GOOD)
    os.mkfifo(d / "20240625_pipe.tif")  # opening it would block forever
    out = tmp_path / "out"
    r = run("count", d, "--aoi", aoi, "--out", out)
    assert r.exit_code == 0, r.output
    assert rows_by_name(out)["20240625_pipe.tif"] == ("rejected", "not a regular file")


def test_duplicate_of_same_acquisition_is_rejected_once(mixed):
    _, img, _, out, _ = mixed
    df = scenes(out)
    row = df[df["path"].str.endswith("20240617_yard_copy.tif")].iloc[0]
    assert row["status"] == "rejected"
    assert row["reason"] == (f"duplicate of {img / GOOD} (same acquisition time and footprint)")
    assert row["datetime"] == "2024-06-17T00:00:00Z" and row["crs"] == "EPSG:32652"


def test_folder_loop_visits_each_file_once(mixed):
    *_, out, _ = mixed
    df = scenes(out)
    assert df["path"].is_unique
    assert not df["path"].str.contains("/up/").any()
    assert "notes.txt" not in rows_by_name(out)


def test_strict_exits_1_and_still_writes(mixed, tmp_path):
    _, img, aoi, _, _ = mixed
    out = tmp_path / "strict"
    r = run("count", img, "--aoi", aoi, "--out", out, "--strict")
    msg = assert_clean_error(r, 1, "scenes.csv")
    assert f"{len(EXPECTED_REASONS) + 1} input file(s) rejected" in msg
    assert (out / "counts.csv").exists()


# ----------------------------------------------------------------------------- alone: exit 3


@pytest.mark.parametrize(
    "name",
    [
        "20240101_empty.tif",
        "20240102_truncated.tif",
        "20240103_photo.png",
        "20240105_nocrs.tif",
        "yard_undated.tif",
        "20240106_corrupt.tif",
        "20240107_nodata.tif",
        "20240108_elsewhere.tif",
    ],
)
def test_bad_file_alone_exits_3_and_keeps_previous_outputs(previous, tmp_path, name):
    prev, aoi = previous
    out = copy_outputs(prev, tmp_path / "out")
    before = snapshot(out)
    bad = make_bad(name, tmp_path)
    r = run("count", bad, "--aoi", aoi, "--out", out)
    msg = assert_clean_error(r, 3, name, EXPECTED_REASONS[name])
    assert snapshot(out) == before, msg


def test_aoi_outside_every_scene_warns_and_exits_3(previous, tmp_path):
    _, aoi = previous
    bad = make_bad("20240108_elsewhere.tif", tmp_path)
    r = run("count", bad, "--aoi", aoi, "--out", tmp_path / "out")
    assert_clean_error(r, 3, "20240108_elsewhere.tif", "footprint does not overlap the AOI")
    assert "Warning: no image footprint touches the AOI" in r.stderr
    assert not (tmp_path / "out" / "counts.csv").exists()


def test_folder_without_imagery_exits_3(previous, tmp_path):
    _, aoi = previous
    empty = tmp_path / "delivery"
    empty.mkdir()
    (empty / "readme.txt").write_text("the provider forgot the files")
    r = run("count", empty, "--aoi", aoi, "--out", tmp_path / "out")
    assert_clean_error(r, 3, str(empty), "folder holds no imagery")
    assert not (tmp_path / "out").exists()


def test_folder_with_only_a_symlink_loop_exits_3(previous, tmp_path):
    _, aoi = previous
    d = tmp_path / "links"
    d.mkdir()
    make_bad("loop_a.tif", d)
    make_bad("loop_b.tif", d)
    os.symlink(d, d / "self")
    r = run("count", d, "--aoi", aoi, "--out", tmp_path / "out")
    assert_clean_error(r, 3, "loop_a.tif", "symbolic link loop")


def test_missing_input_path_exits_3(previous, tmp_path):
    _, aoi = previous
    r = run("count", tmp_path / "20240101_nowhere.tif", "--aoi", aoi, "--out", tmp_path / "o")
    assert_clean_error(r, 3, "20240101_nowhere.tif", "file not found")


def test_debug_shows_the_traceback(previous, tmp_path):
    _, aoi = previous
    bad = make_bad("20240101_empty.tif", tmp_path)
    r = run("--debug", "count", bad, "--aoi", aoi, "--out", tmp_path / "out")
    assert r.exit_code != 0
    assert type(r.exception).__name__ == "NoUsableScenes"


# ----------------------------------------------------------------------------- permissions


def test_unreadable_file_and_folder_are_rejected_not_fatal(tmp_path):
    """A chmod 000 file and folder. Nothing is mocked: as root the run is started without
    the capabilities that let root ignore file modes, so the kernel refuses the reads."""
    img = tmp_path / "img"
    img.mkdir()
    write_yard(img / GOOD)
    write_yard(img / "20240620_secret.tif", seed=3)
    locked = img / "locked"
    locked.mkdir()
    write_yard(locked / "20240621_inside.tif", seed=4)
    aoi = write_aoi(tmp_path / "aoi.geojson")
    os.chmod(img / "20240620_secret.tif", 0)
    os.chmod(locked, 0)
    out = tmp_path / "out"
    try:
        r = cli_subprocess(
            ["count", img, "--aoi", aoi, "--out", out, "--no-progress"],
            preexec_fn=without_root_file_powers,
        )
    finally:
        os.chmod(locked, 0o755)
        os.chmod(img / "20240620_secret.tif", 0o644)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    rows = rows_by_name(out)
    assert rows[GOOD] == ("used", "")
    assert rows["20240620_secret.tif"] == ("rejected", "permission denied")
    assert rows["locked"] == ("rejected", "permission denied")


# ----------------------------------------------------------------------------- valid variants


def _first_row(out):
    return pd.read_csv(out / "counts.csv", keep_default_na=False).iloc[0]


COMPARED = ["railcars", "railcars_low", "railcars_high", "status", "coverage", "cloud"]


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    """Each valid product variant counted alone; returns name -> (result, out)."""
    tmp = tmp_path_factory.mktemp("variants")
    aoi = write_aoi(tmp / "aoi.geojson")
    rgb = yard_dn()
    rng = np.random.default_rng(5)
    nir = (rgb.mean(axis=0) * 0.8 + 20).astype(np.uint8)
    ms16 = np.concatenate([rgb, nir[None]]).astype(np.uint16) * 257
    eight = rng.integers(0, 65535, (8, GRID.height, GRID.width)).astype(np.uint16)
    for band, k in {"blue": 1, "green": 2, "red": 4, "nir": 6}.items():  # WorldView order
        eight[k] = ms16[["red", "green", "blue", "nir"].index(band)]
    kw = {"crs": GRID.crs, "transform": GRID.transform}
    files = {
        "rgb": write_geotiff(tmp / "20240617_rgb.tif", rgb, **kw),
        "bgr": write_geotiff(tmp / "20240617_bgr.tif", rgb[::-1].copy(), **kw),
        "float32": write_geotiff(
            tmp / "20240617_f32.tif", (rgb / np.float32(255)).astype(np.float32), **kw
        ),
        "ms16": write_geotiff(tmp / "20240617_ms16.tif", ms16, **kw),
        "eight": write_geotiff(tmp / "20240617_8band.tif", eight, **kw),
        "pan": write_geotiff(tmp / "20240617_pan.tif", rgb.mean(axis=0).astype(np.uint8), **kw),
    }
    site = tmp / "bgr.yaml"
    site.write_text(
        f"name: bgr\naoi: {aoi}\ndetection:\n  band_mapping: {{red: 3, green: 2, blue: 1}}\n"
    )
    results = {}
    for name, f in files.items():
        out = tmp / f"out_{name}"
        where = ["--site", site] if name == "bgr" else ["--aoi", aoi]
        results[name] = (run("count", f, *where, "--out", out), out)
    return results, files


@pytest.mark.parametrize("name", ["rgb", "bgr", "float32", "ms16", "eight", "pan"])
def test_valid_variant_is_used(variants, name):
    results, files = variants
    r, out = results[name]
    assert r.exit_code == 0, r.output
    assert rows_by_name(out) == {files[name].name: ("used", "")}
    row = _first_row(out)
    assert row["date"] == "2024-06-17" and row["n_tiles"] == 1 and row["gsd_m"] == 0.5
    assert row["status"] in ("ok", "partial", "obscured", "no_coverage")


@pytest.mark.parametrize(
    ("name", "reference"), [("bgr", "rgb"), ("float32", "rgb"), ("eight", "ms16")]
)
def test_equivalent_products_give_identical_counts(variants, name, reference):
    """BGR + band mapping = RGB; float32 0-1 = 8-bit; 8-band WorldView order = 4-band."""
    results, _ = variants
    a, b = _first_row(results[name][1]), _first_row(results[reference][1])
    assert [a[c] for c in COMPARED] == [b[c] for c in COMPARED]


@pytest.mark.parametrize(
    ("name", "bands"),
    [
        ("pan", ("pan",)),
        ("ms16", ("red", "green", "blue", "nir")),
        ("eight", ("red", "green", "blue", "nir")),
        ("float32", ("red", "green", "blue")),
    ],
)
def test_variant_reads_to_0_1_with_named_bands(variants, name, bands):
    _, files = variants
    files_, rejected = discover([files[name]])
    assert rejected == []
    scene = read_acquisition(group_acquisitions(files_)[0], GRID)
    assert scene.bands == bands
    ref = yard_dn().astype(np.float32) / 255
    got = scene.data[: 3 if len(bands) > 1 else 1]
    want = ref if len(bands) > 1 else ref.mean(axis=0, keepdims=True)
    # 16-bit data are DN*257, so they scale back to exactly the 8-bit values.
    assert np.abs(got - want)[:, scene.valid].max() < 1 / 255 + 1e-6


def test_bgr_band_mapping_reads_red_from_band_3(variants):
    _, files = variants
    f, _ = discover([files["bgr"]])
    scene = read_acquisition(
        group_acquisitions(f)[0], GRID, band_mapping={"red": 3, "green": 2, "blue": 1}
    )
    np.testing.assert_allclose(scene.data, yard_dn().astype(np.float32) / 255, atol=1e-6)


# ----------------------------------------------------------------------------- UTM zone edge


def test_geographic_scene_across_utm_zones(tmp_path):
    """A yard on the 132 E meridian (UTM 52/53 boundary) delivered in EPSG:4326.

    The AOI's centroid lies in zone 53, the image was made in zone 52 and is delivered
    in lon/lat: the car pattern must land where the zone-52 original puts it.
    """
    # x such that the 132 E meridian crosses the grid 40 m from its west edge
    from shapely.geometry import Point, box

    y0 = 4_700_000.0
    x_mid = 750_000.0
    for _ in range(3):  # meridians converge in UTM: solve at the grid's latitude
        lat = to_crs(Point(x_mid, y0 - 25), "EPSG:32652", "EPSG:4326").y
        x_mid = to_crs(Point(132.0, lat), "EPSG:4326", "EPSG:32652").x
    x0 = round(x_mid - 40.0)
    g52 = SiteGrid("EPSG:32652", Affine(0.5, 0, x0, 0, -0.5, y0), GRID.width, GRID.height)
    dn = yard_dn()
    utm_path = write_geotiff(
        tmp_path / "20240617_utm52.tif", dn, crs=g52.crs, transform=g52.transform
    )
    left, bottom, right, top = g52.bounds
    tr, w, h = calculate_default_transform(
        g52.crs, "EPSG:4326", g52.width, g52.height, left, bottom, right, top
    )
    geo = np.zeros((3, h, w), np.uint8)
    for k in range(3):
        reproject(
            dn[k],
            geo[k],
            src_transform=g52.transform,
            src_crs=g52.crs,
            dst_transform=tr,
            dst_crs="EPSG:4326",
            resampling=Resampling.bilinear,
        )
    geo_path = write_geotiff(
        tmp_path / "20240618_wgs84.tif", geo, crs="EPSG:4326", transform=tr, nodata=0
    )
    aoi52 = box(left + 2, bottom + 2, right - 2, top - 2)  # centroid east of 132 E
    aoi_path = write_geojson(tmp_path / "aoi.geojson", [aoi52])
    aoi_wgs = to_crs(aoi52, "EPSG:32652", "EPSG:4326")
    assert aoi_wgs.bounds[0] < 132.0 < aoi_wgs.bounds[2] and aoi_wgs.centroid.x > 132.0

    r = run("count", geo_path, "--aoi", aoi_path, "--out", tmp_path / "out")
    assert r.exit_code == 0, r.output
    df = scenes(tmp_path / "out")
    assert df[["status", "crs"]].values.tolist() == [["used", "EPSG:4326"]]
    assert abs(float(df["gsd_m"].iloc[0]) - 0.5) < 0.1  # lon/lat pixels are not square
    run_json = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run_json["grid"]["crs"] == "EPSG:32653"

    grid53 = make_grid(Site(name="z", aoi=aoi_wgs, margin_m=0.0), 0.5)
    assert grid53.crs == "EPSG:32653"
    files, rejected = discover([utm_path, geo_path])
    assert rejected == []
    s_utm, s_geo = (read_acquisition(a, grid53) for a in group_acquisitions(files))
    both = s_utm.valid & s_geo.valid
    assert both.mean() > 0.8  # zone 53 grid north is rotated ~4 deg from zone 52
    a, b = s_utm.gray()[both], s_geo.gray()[both]
    assert np.corrcoef(a, b)[0, 1] > 0.95
    assert np.abs(a - b).mean() < 0.03

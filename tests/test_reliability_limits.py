"""Reliability, limits (issue 6): memory stays bounded by the AOI, not the scene.

A 40000 x 40000 scene (4.8 GB of pixels) costs a few MB on disk, as a sparse tiled
GeoTIFF or as a VRT around a small file. Counting a small AOI in it must keep the peak
resident memory of the process under 1 GB, and give the same counts as the small file.
A window larger than the pixel budget is refused with a clear message.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window
from shapely.geometry import box

from railwatch.errors import NoUsableScenes
from reliability import (
    GRID,
    assert_clean_error,
    cli_subprocess,
    run,
    scenes,
    write_aoi,
    write_geojson,
    write_yard,
    yard_dn,
)

SIZE = 40_000
OFF = 20_000  # the yard sits at this row and column of the big scene
BIG_TRANSFORM = GRID.transform @ Affine.translation(-OFF, -OFF)


def _sparse_tif(path):
    profile = {
        "driver": "GTiff", "width": SIZE, "height": SIZE, "count": 3, "dtype": "uint8",
        "crs": GRID.crs, "transform": BIG_TRANSFORM, "tiled": True, "blockxsize": 512,
        "blockysize": 512, "compress": "deflate", "sparse_ok": True, "bigtiff": "YES",
        "nodata": 0,  # absent tiles are unobserved, as around the small file
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(yard_dn(), window=Window(OFF, OFF, GRID.width, GRID.height))
    return path


def _vrt(path, small):
    w, h = GRID.width, GRID.height
    gt = ", ".join(repr(v) for v in BIG_TRANSFORM.to_gdal())
    bands = "".join(
        f"""
  <VRTRasterBand dataType="Byte" band="{b}">
    <ColorInterp>{("Red", "Green", "Blue")[b - 1]}</ColorInterp>
    <NoDataValue>0</NoDataValue>
    <SimpleSource>
      <SourceFilename relativeToVRT="1">{small.name}</SourceFilename>
      <SourceBand>{b}</SourceBand>
      <SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>
      <DstRect xOff="{OFF}" yOff="{OFF}" xSize="{w}" ySize="{h}"/>
    </SimpleSource>
  </VRTRasterBand>"""
        for b in (1, 2, 3)
    )
    with rasterio.open(small) as src:
        wkt = src.crs.to_wkt()
    path.write_text(
        f'<VRTDataset rasterXSize="{SIZE}" rasterYSize="{SIZE}">\n'
        f"  <SRS>{wkt.replace('&', '&amp;').replace('<', '&lt;')}</SRS>\n"
        f"  <GeoTransform>{gt}</GeoTransform>{bands}\n</VRTDataset>\n"
    )
    return path


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    assert yard_dn().min() > 0  # so 0 can mean "no data" in the big scenes
    tmp = tmp_path_factory.mktemp("big")
    small = write_yard(tmp / "20240617_small.tif")
    aoi = write_aoi(tmp / "aoi.geojson")
    ref = tmp / "ref"
    r = run("count", small, "--aoi", aoi, "--out", ref)
    assert r.exit_code == 0, r.output
    files = {
        "sparse": _sparse_tif(tmp / "20240617_big.tif"),
        "vrt": _vrt(tmp / "20240617_big.vrt", small),
    }
    return tmp, aoi, ref, files


PEAK = """
import atexit
def _peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open({path!r}, "w").write(line.split()[1])
atexit.register(_peak)
"""


@pytest.mark.parametrize("kind", ["sparse", "vrt"])
def test_small_aoi_in_40000px_scene_under_1_gb(big, tmp_path, kind):
    tmp, aoi, ref, files = big
    path = files[kind]
    with rasterio.open(path) as src:
        assert (src.width, src.height) == (SIZE, SIZE)
    assert path.stat().st_size < 5_000_000  # nothing like 4.8 GB on disk
    peak_file = tmp_path / "peak_kb"
    out = tmp_path / "out"
    r = cli_subprocess(
        ["count", path, "--aoi", aoi, "--out", out, "--no-progress"],
        prelude=PEAK.format(path=str(peak_file)),
    )
    assert r.returncode == 0, r.stderr
    peak_kb = int(peak_file.read_text())
    assert peak_kb < 1024 * 1024, f"peak RSS {peak_kb / 1024:.0f} MB"
    assert scenes(out)[["status", "crs", "gsd_m"]].values.tolist() == [["used", GRID.crs, 0.5]]
    cols = ["date", "railcars", "status", "coverage", "cloud", "shift_m"]
    got = pd.read_csv(out / "counts.csv", keep_default_na=False)[cols]
    want = pd.read_csv(ref / "counts.csv", keep_default_na=False)[cols]
    pd.testing.assert_frame_equal(got, want)


def _big_aoi(tmp_path):
    """A 2 km x 2 km AOI around the yard: 4000 x 4000 source pixels at 0.5 m."""
    minx, miny, maxx, maxy = GRID.bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    return write_geojson(
        tmp_path / "big_aoi.geojson", [box(cx - 1000, cy - 1000, cx + 1000, cy + 1000)]
    )


def test_window_over_pixel_budget_is_refused_by_the_library(big, tmp_path):
    from railwatch.pipeline import run_count
    from railwatch.site import site_from_aoi

    _, _, _, files = big
    site = site_from_aoi(_big_aoi(tmp_path))
    with pytest.raises(NoUsableScenes) as info:
        run_count(
            [files["sparse"]],
            site,
            tmp_path / "out",
            resolution_m=10.0,
            max_pixels=1_000_000,
            report=False,
        )
    msg = str(info.value)
    assert "20240617_big.tif" in msg
    assert "exceeds the pixel budget of 1000000 px" in msg
    assert "coarser --resolution or a smaller AOI" in msg


@pytest.fixture
def budget(monkeypatch):
    """A 1 Mpx budget for CLI runs (the library default is 400 Mpx)."""
    from railwatch import pipeline

    monkeypatch.setitem(pipeline.run_count.__kwdefaults__, "max_pixels", 1_000_000)


def test_window_over_pixel_budget_cli_exit_3(big, tmp_path, budget):
    _, _, _, files = big
    out = tmp_path / "out"
    r = run("count", files["sparse"], "--aoi", _big_aoi(tmp_path), "--resolution", 10, "--out", out)
    assert_clean_error(r, 3, "20240617_big.tif", "exceeds the pixel budget of 1000000 px")
    assert not (out / "counts.csv").exists()


def test_site_grid_over_pixel_budget_cli_exit_3(big, tmp_path, budget):
    _, _, _, files = big
    r = run("count", files["vrt"], "--aoi", _big_aoi(tmp_path), "--out", tmp_path / "out")
    msg = assert_clean_error(r, 3, "exceeds the pixel budget (1000000 px)")
    assert "coarser --resolution" in msg
    assert not (tmp_path / "out").exists()


def test_run_json_records_the_budget(big):
    _, _, ref, _ = big
    assert json.loads((ref / "run.json").read_text())["parameters"]["max_pixels"] == 400_000_000

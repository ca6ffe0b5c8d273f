import json
import os

import numpy as np
import pytest
import rasterio
from rasterio.enums import ColorInterp
from rasterio.warp import Resampling, calculate_default_transform, reproject
from scipy import ndimage

from railwatch.errors import SceneReadError
from railwatch.imagery import (
    band_indexes,
    datetime_from_name,
    datetime_from_tags,
    discover,
    group_acquisitions,
    inspect_file,
    read_acquisition,
)
from railwatch.site import Site, make_grid
from rasters import (
    UTM52,
    X0,
    Y0,
    aoi_wgs84,
    ground_pattern,
    t,
    utm_transform,
    write_geotiff,
)

# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("20230114_tumangang.tif", t(2023, 1, 14)),
        ("TMG_2022-11-03_pleiades.tif", t(2022, 11, 3)),
        ("x/y/SKYSAT_20240617T021530_ms.tif", t(2024, 6, 17, 2, 15)),
        ("2019_05_02_0930_00.tif", None),  # separators with a bad time still give the date
        ("scene_10300100ABCD_2021.tif", None),
        ("20231399_bad_month.tif", None),
    ],
)
def test_datetime_from_name(name, expected):
    got = datetime_from_name(name)
    if name.startswith("2019_05_02"):
        assert got is not None and got.date().isoformat() == "2019-05-02"
        return
    if expected is None:
        assert got is None
    else:
        assert got.replace(second=0) == expected


def test_datetime_from_tags_prefers_acquisition_over_tiff_datetime():
    tags = {
        "TIFFTAG_DATETIME": "2025:01:01 00:00:00",
        "ACQUISITIONDATETIME": "2023-06-17T02:15:00Z",
    }
    assert datetime_from_tags(tags) == t(2023, 6, 17, 2, 15)
    assert datetime_from_tags({"TIFFTAG_DATETIME": "2021:03:04 05:06:07"}).isoformat() == (
        "2021-03-04T05:06:07+00:00"
    )
    assert datetime_from_tags({"ACQUISITIONDATETIME": "2023-06-17T11:15:00+09:00"}) == t(
        2023, 6, 17, 2, 15
    )
    assert datetime_from_tags({"OTHER": "x"}) is None


def test_each_date_source(tmp_path):
    img = ground_pattern(20, 20)
    a = write_geotiff(tmp_path / "20230114_a.tif", img, transform=utm_transform())
    b = write_geotiff(
        tmp_path / "undated_b.tif",
        img,
        transform=utm_transform(),
        tags={"TIFFTAG_DATETIME": "2022:11:03 02:10:00"},
    )
    c = write_geotiff(
        tmp_path / "undated_c.tif",
        img,
        transform=utm_transform(),
        tags={"ACQUISITIONDATETIME": "2021-05-06T01:02:03Z"},
    )
    d = write_geotiff(tmp_path / "undated_d.tif", img, transform=utm_transform())
    assert inspect_file(a).date_source == "filename"
    assert inspect_file(a).datetime == t(2023, 1, 14)
    assert inspect_file(b).date_source == "metadata"
    assert inspect_file(b).datetime == t(2022, 11, 3, 2, 10)
    assert inspect_file(c).datetime.isoformat() == "2021-05-06T01:02:03+00:00"
    with pytest.raises(SceneReadError, match="no acquisition date"):
        inspect_file(d)


def test_stac_datetime_wins(tmp_path):
    img = ground_pattern(20, 20)
    write_geotiff(
        tmp_path / "20200101_x.tif",
        img,
        transform=utm_transform(),
        tags={"ACQUISITIONDATETIME": "2021-01-01T00:00:00Z"},
    )
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "scene-1",
        "geometry": None,
        "properties": {"datetime": "2024-06-17T02:15:00Z"},
        "links": [],
        "assets": {"visual": {"href": "20200101_x.tif", "type": "image/tiff"}},
    }
    coll = {"type": "FeatureCollection", "features": [item]}
    (tmp_path / "items.json").write_text(json.dumps(coll))
    files, rejected = discover([tmp_path / "items.json"])
    assert rejected == []
    assert len(files) == 1
    assert files[0].date_source == "stac"
    assert files[0].datetime == t(2024, 6, 17, 2, 15)


# --------------------------------------------------------------------------- discovery


def test_discover_folder_recursive_and_rejections(tmp_path):
    img = ground_pattern(20, 20)
    (tmp_path / "a" / "b").mkdir(parents=True)
    write_geotiff(tmp_path / "a" / "20230101.tif", img, transform=utm_transform())
    write_geotiff(tmp_path / "a" / "b" / "20230108.tif", img, transform=utm_transform())
    (tmp_path / "a" / "b" / "empty_20230115.tif").write_bytes(b"")
    write_geotiff(tmp_path / "a" / "20230122_nocrs.tif", img, crs=None, transform=utm_transform())
    (tmp_path / "a" / "notes.txt").write_text("not imagery")
    os.symlink(tmp_path / "a", tmp_path / "a" / "b" / "loop")
    files, rejected = discover([tmp_path / "a"])
    assert [f.datetime.date().isoformat() for f in files] == ["2023-01-01", "2023-01-08"]
    reasons = {os.path.basename(r.path): r.reason for r in rejected}
    assert reasons["empty_20230115.tif"] == "file is empty (0 bytes)"
    assert (
        "CRS" in reasons["20230122_nocrs.tif"] or "georeferenced" in reasons["20230122_nocrs.tif"]
    )


def test_discover_empty_folder(tmp_path):
    files, rejected = discover([tmp_path])
    assert files == []
    assert rejected[0].reason == "folder holds no imagery"


def test_png_without_georeferencing_rejected(tmp_path):
    p = tmp_path / "20230101_photo.png"
    with rasterio.open(p, "w", driver="PNG", width=8, height=8, count=3, dtype="uint8") as dst:
        dst.write(np.zeros((3, 8, 8), dtype=np.uint8))
    files, rejected = discover([p])
    assert files == []
    assert "georeferenced" in rejected[0].reason


# --------------------------------------------------------------------------- reading


def _site(minx, miny, maxx, maxy, res=0.5):
    return Site(name="t", aoi=aoi_wgs84(minx, miny, maxx, maxy), resolution_m=res, margin_m=0.0)


def _blob_centres(gray):
    lab, n = ndimage.label(gray > 0.6)
    return np.array(sorted(ndimage.center_of_mass(gray > 0.6, lab, range(1, n + 1))))


def test_utm_and_geographic_land_on_same_pixels(tmp_path):
    img = ground_pattern(200, 240)
    tr = utm_transform()
    write_geotiff(tmp_path / "20230101_utm.tif", img, transform=tr)
    # The same ground delivered in EPSG:4326, as some providers do.
    left, top = X0, Y0
    right, bottom = X0 + 240 * 0.5, Y0 - 200 * 0.5
    dst_tr, w, h = calculate_default_transform(
        UTM52, "EPSG:4326", 240, 200, left, bottom, right, top
    )
    geo = np.zeros((3, h, w), dtype=np.uint8)
    for k in range(3):
        reproject(
            img[k],
            geo[k],
            src_transform=tr,
            src_crs=UTM52,
            dst_transform=dst_tr,
            dst_crs="EPSG:4326",
            resampling=Resampling.bilinear,
        )
    write_geotiff(tmp_path / "20230102_geo.tif", geo, crs="EPSG:4326", transform=dst_tr)

    site = _site(X0 + 10, Y0 - 90, X0 + 110, Y0 - 10)
    grid = make_grid(site, 0.5)
    files, rejected = discover([tmp_path])
    assert not rejected
    acqs = group_acquisitions(files)
    assert len(acqs) == 2
    s_utm, s_geo = (read_acquisition(a, grid) for a in acqs)
    assert s_geo.crs == "EPSG:4326" and s_utm.crs == UTM52
    assert abs(s_geo.gsd_m - 0.5) < 0.1
    c_utm, c_geo = _blob_centres(s_utm.gray()), _blob_centres(s_geo.gray())
    assert len(c_utm) == len(c_geo) >= 2
    assert np.abs(c_utm - c_geo).max() < 1.0


def test_two_tiles_mosaic_without_seam(tmp_path):
    img = ground_pattern(200, 240)
    tr = utm_transform()
    tags = {"ACQUISITIONDATETIME": "2023-03-01T02:00:00Z"}
    write_geotiff(tmp_path / "tile_a.tif", img[:, :, :120], transform=tr, tags=tags)
    write_geotiff(
        tmp_path / "tile_b.tif", img[:, :, 120:], transform=tr @ tr.translation(120, 0), tags=tags
    )
    write_geotiff(tmp_path / "whole_20230302.tif", img, transform=tr)
    site = _site(X0 + 20, Y0 - 90, X0 + 100, Y0 - 10)
    grid = make_grid(site, 0.5)
    files, _ = discover([tmp_path])
    acqs = group_acquisitions(files)
    assert [len(a.files) for a in acqs] == [2, 1]
    mosaic, whole = read_acquisition(acqs[0], grid), read_acquisition(acqs[1], grid)
    assert mosaic.valid.all()
    assert len(mosaic.sources) == 2
    np.testing.assert_allclose(mosaic.data, whole.data, atol=1e-6)


def test_nodata_becomes_invalid_and_11bit_is_scaled(tmp_path):
    rng = np.random.default_rng(1)
    img = rng.integers(100, 2047, (4, 100, 100)).astype(np.uint16)
    img[:, :, :50] = 0
    write_geotiff(tmp_path / "20240101_ms.tif", img, transform=utm_transform(), nodata=0)
    site = _site(X0, Y0 - 50, X0 + 50, Y0)
    grid = make_grid(site, 0.5)
    files, _ = discover([tmp_path])
    scene = read_acquisition(group_acquisitions(files)[0], grid)
    assert scene.bands == ("red", "green", "blue", "nir")
    # The grid has one pixel of slack around the file; the nodata half stays unobserved.
    assert not scene.valid[:, :50].any() and scene.valid[2:-2, 53:-2].all()
    assert 0.04 < scene.data[:, scene.valid].min() and scene.data.max() <= 1.0


def test_band_mapping_and_colorinterp(tmp_path):
    img = ground_pattern(20, 20)
    bgr = img[::-1].copy()
    p = write_geotiff(
        tmp_path / "20240101_bgr.tif",
        bgr,
        transform=utm_transform(),
        colorinterp=[ColorInterp.blue, ColorInterp.green, ColorInterp.red],
    )
    sf = inspect_file(p)
    assert band_indexes(sf) == ((3, 2, 1), ("red", "green", "blue"))
    assert band_indexes(sf, {"red": 3, "green": 2, "blue": 1, "nir": 1})[1] == (
        "red",
        "green",
        "blue",
        "nir",
    )
    with pytest.raises(SceneReadError, match="band_mapping"):
        band_indexes(sf, {"red": 5})


def test_window_read_touches_only_aoi(tmp_path):
    """A big tiled file is read through a small window; the pixel budget guards memory."""
    big = np.full((1, 4000, 4000), 90, dtype=np.uint8)
    p = write_geotiff(tmp_path / "20240101_big.tif", big, transform=utm_transform(), tiled=True)
    site = _site(X0 + 1000, Y0 - 1050, X0 + 1050, Y0 - 1000)
    grid = make_grid(site, 0.5)
    files, _ = discover([p])
    scene = read_acquisition(group_acquisitions(files)[0], grid)
    assert scene.bands == ("pan",)
    assert scene.valid.all() and np.allclose(scene.data, 90 / 255)
    with pytest.raises(SceneReadError, match="pixel budget"):
        read_acquisition(group_acquisitions(files)[0], grid, max_pixels=1000)

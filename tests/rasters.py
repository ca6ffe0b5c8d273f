"""Small raster and vector builders shared by the tests (no fixtures on disk)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp
from shapely.geometry import box, mapping

from railwatch.site import WGS84, to_crs

UTM52 = "EPSG:32652"
# A point in the Tumangang area, snapped so 0.5 m pixels align with round numbers.
X0, Y0 = 632_000.0, 4_697_000.0


def write_geotiff(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = UTM52,
    transform: Affine | None = None,
    tags: dict[str, str] | None = None,
    nodata: float | None = None,
    colorinterp: list[ColorInterp] | None = None,
    tiled: bool = False,
) -> Path:
    """Write (bands, H, W) or (H, W) ``data`` as a GeoTIFF."""
    if data.ndim == 2:
        data = data[None]
    profile = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype,
    }
    if crs is not None:
        profile["crs"] = crs
    if transform is not None:
        profile["transform"] = transform
    if nodata is not None:
        profile["nodata"] = nodata
    if tiled:
        profile.update(tiled=True, blockxsize=256, blockysize=256, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if tags:
            dst.update_tags(**tags)
        if colorinterp:
            dst.colorinterp = colorinterp
    return path


def ground_pattern(height: int = 200, width: int = 240, seed: int = 0) -> np.ndarray:
    """uint8 RGB ground with a few bright rectangles at known places."""
    rng = np.random.default_rng(seed)
    img = (60 + rng.normal(0, 4, (3, height, width))).clip(0, 255)
    for r, c in [(40, 50), (120, 160), (150, 60)]:
        img[:, r : r + 10, c : c + 14] = 230
    return img.astype(np.uint8)


def utm_transform(res: float = 0.5, x0: float = X0, y0: float = Y0) -> Affine:
    """North-up transform at ``res`` m with the upper-left corner at (x0, y0)."""
    return Affine(res, 0, x0, 0, -res, y0)


def aoi_wgs84(minx: float, miny: float, maxx: float, maxy: float) -> object:
    """A UTM 52N rectangle as a WGS84 polygon."""
    return to_crs(box(minx, miny, maxx, maxy), UTM52, WGS84)


def write_aoi(path: Path, geom_wgs84: object) -> Path:
    """Write a WGS84 polygon as GeoJSON."""
    fc = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": mapping(geom_wgs84)}],
    }
    path.write_text(json.dumps(fc))
    return path


def t(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> dt.datetime:
    """UTC datetime shorthand."""
    return dt.datetime(y, m, d, hh, mm, tzinfo=dt.UTC)

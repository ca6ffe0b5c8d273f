"""Registering a stack to its surveyed tracks recovers a shift along the tracks too.

A yard throat whose tracks run obliquely to the grid (as the sample yard's, 18 degrees
off north): a running line, a turnout to a siding that ends at a buffer stop, a second
turnout to a track that runs on, cars on two of them. The beds' long edges fix the
position across the tracks; along them only the turnouts and the bed end do, and the
whole-image correlation of the bed template was 0.3-0.8 m off along the tracks there.
"""

import math

import numpy as np
import pytest
from affine import Affine
from rasterio.features import rasterize
from shapely import affinity
from shapely.geometry import LineString, Polygon, mapping
from shapely.ops import unary_union

from railwatch.align import extend_clipped_ends, register_to_tracks, track_template

RES = 0.5
H, W = 360, 240
TRANSFORM = Affine(RES, 0.0, 500000.0, 0.0, -RES, 4700000.0 + H * RES)
HEADING = math.radians(18.0)  # clockwise from north
ALONG = np.array([math.sin(HEADING), math.cos(HEADING)])  # east, north
ACROSS = np.array([ALONG[1], -ALONG[0]])  # to the right of the heading
ORIGIN = np.array([500000.0 + 0.35 * W * RES, 4700000.0])  # bottom edge


def _xy(s_m: float, v_m: float) -> tuple[float, float]:
    p = ORIGIN + s_m * ALONG + v_m * ACROSS
    return (float(p[0]), float(p[1]))


def _yard() -> tuple[list[LineString], list[Polygon]]:
    """Centre lines (station s along the yard, offset v across) and car bodies."""
    spacing = 5.3
    run = 6 * spacing  # 1:6 turnouts
    main = LineString([_xy(-20, 0), _xy(220, 0)])
    siding = LineString([_xy(40, 0), _xy(40 + run, spacing), _xy(150, spacing)])
    third = LineString([_xy(80, spacing), _xy(80 + run, 2 * spacing), _xy(220, 2 * spacing)])
    cars = []
    for v, s0, n in ((0.0, 95.0, 3), (spacing, 88.0, 2), (2 * spacing, 130.0, 3)):
        for k in range(n):
            a, b = s0 + 14.0 * k + 0.5, s0 + 14.0 * (k + 1) - 0.5
            cars.append(
                Polygon([_xy(a, v - 1.58), _xy(b, v - 1.58), _xy(b, v + 1.58), _xy(a, v + 1.58)])
            )
    return [main, siding, third], cars


def _render(offset_m: tuple[float, float], seed: int = 3) -> np.ndarray:
    """Gray image of the yard seen ``offset_m`` (east, north) off its true position."""
    lines, cars = _yard()
    k = 4
    fine = TRANSFORM @ Affine.scale(1.0 / k)
    shape = (H * k, W * k)

    def mask(geoms):
        moved = [affinity.translate(g, *offset_m) for g in geoms]
        return rasterize([(mapping(g), 1) for g in moved], out_shape=shape, transform=fine) > 0

    rng = np.random.default_rng(seed)
    ground = rng.standard_normal((H // 8 + 2, W // 8 + 2))
    img = 0.22 + 0.03 * np.kron(ground, np.ones((8 * k, 8 * k)))[: shape[0], : shape[1]]
    img[mask([ln.buffer(1.75, cap_style="flat") for ln in lines])] = 0.37
    rails = [ln.offset_curve(d).buffer(0.08) for ln in lines for d in (-0.78, 0.78)]
    img[mask(rails)] = 0.12
    img[mask(cars)] = 0.08
    gray = img.reshape(H, k, W, k).mean(axis=(1, 3))
    return (gray + 0.01 * rng.standard_normal(gray.shape)).astype(np.float32)


@pytest.mark.parametrize(
    "along_m, across_m", [(1.1, 0.3), (-0.9, -0.4), (0.6, 0.0), (2.3, 1.2), (0.3, 0.1)]
)
def test_shift_along_the_tracks_recovered(along_m, across_m):
    offset = along_m * ALONG + across_m * ACROSS
    gray = _render((float(offset[0]), float(offset[1])))
    lines, _ = _yard()
    template = track_template((H, W), TRANSFORM, lines)
    dy, dx = register_to_tracks(template, gray, max_shift_px=30, max_along_px=8.0)
    # The image must be moved back: -east/res columns, +north/res rows (rows grow south).
    err = np.array([dx * RES + offset[0], -dy * RES + offset[1]])
    # Whole-image correlation of the bed template: 0.3-0.7 m off along the tracks here.
    assert abs(err @ ALONG) < 0.25
    assert abs(err @ ACROSS) < 0.25


def test_template_is_the_cover_of_the_beds():
    lines, _ = _yard()
    t = track_template((H, W), TRANSFORM, lines)
    # A straight edge at 18 degrees, not a staircase: fractions between 0 and 1.
    assert 0.0 <= t.min() and t.max() == 1.0
    assert ((t > 0.05) & (t < 0.95)).sum() > 500
    # Its area is that of the beds (3.5 m wide; they overlap at the turnouts).
    area = t.sum() * RES * RES
    beds = unary_union([ln.buffer(1.75, cap_style="flat") for ln in lines])
    bed = beds.intersection(_grid_box()).area
    assert area == pytest.approx(bed, rel=0.01)


def _grid_box() -> Polygon:
    x0, y1 = TRANSFORM.c, TRANSFORM.f
    x1, y0 = x0 + W * RES, y1 - H * RES
    return Polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])


def test_only_lines_cut_at_the_aoi_run_on():
    from shapely.geometry import box

    aoi = box(0, 0, 200, 40)
    cut = LineString([(4, 10), (196, 10)])  # both ends 4 m inside the AOI's ends
    stop = LineString([(60, 10), (80, 20), (150, 20)])  # turnout, then a buffer stop
    side = LineString([(20, 36), (120, 36)])  # ends 4 m from the AOI's side: a stop too
    out = extend_clipped_ends([cut, stop, side], aoi)
    assert out[0].length == pytest.approx(cut.length + 2 * 500.0)
    assert out[0].covers(cut)
    assert out[1].equals(stop) and out[2].equals(side)

import numpy as np
import pytest
import shapely
from affine import Affine
from shapely.geometry import LineString, box

from railwatch.site import SiteGrid
from railwatch.tracks import RAIL_HALF_GAUGE_M, extract_tracks

RES = 0.5
WIDTH, HEIGHT = 400, 80  # 200 m x 40 m
GRID = SiteGrid("EPSG:32652", Affine(RES, 0, 0, 0, -RES, HEIGHT * RES), WIDTH, HEIGHT)
AOI = box(3.0, 3.0, 197.0, 37.0)


def _render(tracks, *, n=3, hidden=()):
    """``n`` dates of flat ground with dark rails one half gauge either side of each
    centre line in ``tracks``; rails are left out within ``hidden`` (x0, x1) metres."""
    rows, cols = np.mgrid[0:HEIGHT, 0:WIDTH]
    x = (cols + 0.5) * RES
    y = HEIGHT * RES - (rows + 0.5) * RES
    pts = shapely.points(x.ravel(), y.ravel())
    rails = np.zeros(x.shape)
    for line in tracks:
        d = shapely.distance(line, pts).reshape(x.shape)
        rails += np.exp(-0.5 * ((d - RAIL_HALF_GAUGE_M) / 0.2) ** 2)
    for x0, x1 in hidden:
        rails[(x >= x0) & (x <= x1)] = 0.0
    out = []
    for seed in range(n):
        noise = 0.01 * np.random.default_rng(seed).standard_normal(x.shape)
        out.append((0.5 - 0.3 * rails + noise).astype(np.float32))
    return out


def _extract(images):
    return [
        t.line
        for t in extract_tracks(images, [np.ones(im.shape, bool) for im in images], GRID, AOI)
    ]


def _curve(x0=5.0, x1=195.0, radius_m=300.0):
    x = np.arange(x0, x1 + 0.1, 1.0)
    return LineString(np.column_stack([x, 10.0 + (x - 100.0) ** 2 / (2 * radius_m)]))


def test_stack_joins_a_curved_track_across_hidden_rails():
    # A 300 m radius track whose rails are hidden for 18 m (a level crossing) on every
    # date: a stack's trace stops there, and the two pieces' ends (12 degrees apart)
    # are no straight continuation of each other; one curve fits both.
    track = _curve()
    lines = _extract(_render([track], hidden=[(91.0, 109.0)]))
    assert len(lines) == 1
    clipped = track.intersection(AOI)
    assert lines[0].hausdorff_distance(clipped) < 1.0
    assert lines[0].length > 0.9 * clipped.length


@pytest.mark.parametrize(
    "second",
    [
        # A parallel track one spacing (4.5 m) across, beyond the first one's end.
        LineString([(115.0, 14.5), (195.0, 14.5)]),
        # A straight branch at 8 degrees (no curve leads into it) beyond the end.
        LineString([(115.0, 10.0), (195.0, 10.0 + 80.0 * np.tan(np.radians(8.0)))]),
    ],
    ids=["parallel_4.5m", "branch_8deg"],
)
def test_stack_never_joins_another_track(second):
    first = LineString([(5.0, 10.0), (95.0, 10.0)])
    lines = sorted(_extract(_render([first, second])), key=lambda ln: ln.centroid.x)
    assert len(lines) == 2
    for ln, truth in zip(lines, (first, second), strict=True):
        assert ln.hausdorff_distance(truth.intersection(AOI)) < 1.0

import numpy as np
from scipy import ndimage as ndi

from detect_fixtures import add_cloud, cut_nodata, make_grid, render, straight_line, train
from railwatch.quality import assess
from railwatch.site import QualityConfig
from railwatch.tracks import tracks_from_lines


def _scene(**kw):
    g = make_grid(240, 100)
    lines = [straight_line(g, 22), straight_line(g, 27.3)]
    sc = render(g, lines, train(0, 20, [13.92] * 4), supersample=2, **kw)
    return sc, tracks_from_lines([(f"T{i + 1}", ln) for i, ln in enumerate(lines)])


def test_clear_scene_is_ok():
    sc, tracks = _scene()
    q = assess(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi, QualityConfig())
    assert q.status == "ok" and q.coverage == 1.0 and q.cloud == 0.0


def test_cloud_over_yard_is_obscured():
    sc, tracks = _scene()
    add_cloud(sc)
    q = assess(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi, QualityConfig())
    assert q.status == "obscured" and q.cloud > 0.9


def test_snow_is_not_cloud():
    sc, tracks = _scene(snow=True)
    q = assess(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi, QualityConfig())
    assert q.status == "ok" and q.cloud == 0.0 and q.snow > 0.5


def test_half_nodata_is_partial_with_half_coverage():
    sc, tracks = _scene()
    cut_nodata(sc, keep_cols=120)
    q = assess(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi, QualityConfig())
    assert q.status == "partial"
    assert 0.4 < q.coverage < 0.6


def test_no_data_at_all_is_no_coverage():
    sc, tracks = _scene()
    cut_nodata(sc, keep_cols=0)
    q = assess(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi, QualityConfig())
    assert q.status == "no_coverage" and q.coverage == 0.0


def test_thin_cloud_is_cloud_not_snow():
    # Semi-transparent cloud over the western half: bright, and the rails and cars show
    # only faintly through it (snow keeps them sharp, see test_snow_is_not_cloud).
    sc, tracks = _scene()
    alpha = np.zeros(sc.grid.shape)
    alpha[:, : sc.grid.shape[1] // 2] = 0.6
    alpha = ndi.gaussian_filter(alpha, 4)
    sc.data = (sc.data * (1 - alpha) + 0.9 * alpha).astype(np.float32)
    q = assess(sc.data, sc.bands, sc.valid, sc.grid, tracks, sc.aoi, QualityConfig())
    assert 0.3 < q.cloud < 0.6
    assert q.snow < 0.05
    assert q.status == "partial"

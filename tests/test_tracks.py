import numpy as np
from affine import Affine
from shapely.geometry import LineString

from detect_fixtures import arc_line, make_grid, render, straight_line, train
from railwatch.site import SiteGrid
from railwatch.tracks import extract_tracks, sample_profile, tracks_from_lines


def test_sample_profile_reads_values_along_and_across():
    g = SiteGrid("EPSG:32652", Affine(1, 0, 0, 0, -1, 20), 20, 20)
    img = np.tile(np.arange(20, dtype="float32"), (20, 1))  # value = column
    st = sample_profile(img, g, LineString([(0, 10), (20, 10)]), step_m=1, half_width_m=2)
    assert st.values.shape == (1, 5, 20)
    # stations at x = 0.5, 1.5, ... -> column coordinate x - 0.5
    assert np.allclose(st.values[0, 2, 3:6], [3, 4, 5])
    assert np.allclose(st.values[0, :, 4], 4)  # across a horizontal line the column is fixed


def test_tracks_from_lines_drops_degenerate():
    out = tracks_from_lines(
        [("A", LineString([(0, 0), (5, 0)])), ("B", LineString([(1, 1), (1, 1)]))]
    )
    assert [t.track_id for t in out] == ["A"]


def test_extract_straight_and_curved_tracks():
    g = make_grid(300, 120)
    lines = [straight_line(g, 22), arc_line(g, radius_m=350, y_m=34)]
    scenes = [
        render(g, lines, train(0, 15, [13.92] * 2), seed=1),
        render(g, lines, train(1, 70, [12.02] * 2), seed=2),
        render(g, lines, [], seed=3),
    ]
    aoi = scenes[0].aoi
    tracks = extract_tracks([s.gray for s in scenes], [s.valid for s in scenes], g, aoi)
    assert [t.track_id for t in tracks] == ["T1", "T2"]
    truth = [ln.intersection(aoi) for ln in lines]
    # T1 is the left-hand line looking along the tracks (eastwards): the northern curve.
    assert tracks[0].line.hausdorff_distance(truth[1]) < 1.0
    assert tracks[1].line.hausdorff_distance(truth[0]) < 1.0


def test_extract_from_one_image():
    g = make_grid(300, 100)
    lines = [straight_line(g, 20), straight_line(g, 25.3)]
    sc = render(g, lines, [], seed=4)
    tracks = extract_tracks([sc.gray], [sc.valid], g, sc.aoi)
    assert len(tracks) == 2
    for t, ln in zip(tracks, lines[::-1], strict=True):
        assert t.line.hausdorff_distance(ln.intersection(sc.aoi)) < 1.0

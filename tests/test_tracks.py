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


def _extract(scenes):
    aoi = scenes[0].aoi
    return extract_tracks([s.gray for s in scenes], [s.valid for s in scenes], scenes[0].grid, aoi)


def test_two_parallel_tracks_5m_apart():
    g = make_grid(240, 80)
    lines = [straight_line(g, 17.5), straight_line(g, 22.5)]
    sc = render(g, lines, [], seed=4)
    tracks = _extract([sc])
    assert len(tracks) == 2
    # T1 is the left-hand line looking along the tracks (eastwards): the northern one.
    for t, ln in zip(tracks, lines[::-1], strict=True):
        assert t.line.hausdorff_distance(ln.intersection(sc.aoi)) < 0.5


def test_curved_track_radius_200m_gives_one_line():
    g = make_grid(240, 100)
    line = arc_line(g, radius_m=200, y_m=35)
    scenes = [render(g, [line], [], seed=s) for s in (1, 2, 3)]
    tracks = _extract(scenes)
    assert len(tracks) == 1
    assert tracks[0].line.hausdorff_distance(line.intersection(scenes[0].aoi)) < 1.0


def test_long_train_in_one_image_does_not_split_the_track():
    g = make_grid(300, 60)  # 150 m x 30 m; 146 m of track inside the AOI
    line = straight_line(g, 15)
    cars = train(0, 30, [13.92] * 6, gap_m=0.8)  # 84 m: about 60 % of the track
    sc = render(g, [line], cars, seed=5)
    tracks = _extract([sc])
    assert len(tracks) == 1
    assert tracks[0].line.hausdorff_distance(line.intersection(sc.aoi)) < 1.0


def test_turnout_gives_through_track_and_branch():
    g = make_grid(300, 80)
    minx, miny, maxx, _ = g.bounds
    through = straight_line(g, 15)
    # The branch leaves the through track at x = 40 m at 1:6 and runs on 5.3 m beside it.
    bx = minx + 40.0
    branch = LineString([(bx, miny + 15), (bx + 6 * 5.3, miny + 20.3), (maxx + 5.0, miny + 20.3)])
    scenes = [render(g, [through, branch], [], seed=s) for s in (1, 2, 3)]
    tracks = _extract(scenes)
    assert len(tracks) == 2
    aoi = scenes[0].aoi
    lines = sorted((t.line for t in tracks), key=lambda ln: ln.centroid.y)
    assert lines[0].hausdorff_distance(through.intersection(aoi)) < 1.0
    assert lines[1].distance(branch.interpolate(60.0)) < 1.0


def test_road_and_fence_give_no_track():
    g = make_grid(240, 80)
    sc = render(g, [], [], seed=6)
    h, w = g.shape
    img = sc.data
    rows = np.arange(h)[:, None] * np.ones((1, w))
    img[:, (rows >= 20) & (rows < 32)] = 0.75  # 6 m wide bright road
    img[:, (rows >= 55) & (rows < 56)] *= 0.7  # a fence: one thin dark line
    img[:, (rows >= 57) & (rows < 58)] *= 0.8  # and its shadow 1 m beside it
    tracks = extract_tracks([sc.gray], [sc.valid], g, sc.aoi)
    assert tracks == []


def test_single_image_trains_with_shadows_keep_lines_on_the_rails():
    # Dark (red, blue, black) and bright cars with their shadows beside them: the lines
    # stay on the track centres and run the full AOI.
    g = make_grid(300, 120)
    lines = [straight_line(g, 20.0), straight_line(g, 40.0)]
    colours = ["white", "blue", "red", "black"]
    cars = train(0, 20.0, [13.92, 13.92, 12.02, 15.35], colours=colours) + train(
        1, 60.0, [13.92, 13.92], colours=["black", "rust"]
    )
    sc = render(g, lines, cars, seed=1)
    tracks = _extract([sc])
    assert len(tracks) == 2
    for t, ln in zip(tracks, lines[::-1], strict=True):
        truth = ln.intersection(sc.aoi)
        assert t.line.hausdorff_distance(truth) < 0.5
        assert t.length_m > 0.97 * truth.length

import numpy as np
import pytest
from affine import Affine
from shapely.geometry import LineString

from detect_fixtures import arc_line, make_grid, render, straight_line, train
from railwatch.site import SiteGrid
from railwatch.tracks import (
    _POLARITY_MIN,
    RAIL_HALF_GAUGE_M,
    _evidence,
    _join_collinear,
    _join_overlapping,
    _rail_polarity,
    _resolve_parallels,
    _Tracer,
    extract_tracks,
    rail_maps,
    sample_profile,
    tracks_from_lines,
)


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


@pytest.mark.parametrize("n_dates", [3, 1])
def test_dense_yard_gives_one_line_per_track(n_dates):
    # Five tracks 5.3 m apart. At 0.5 m pixels the rails of tracks whose rails fall on
    # pixel edges respond at half strength, below the seed threshold: only the first
    # track used to be traced. Beside a traced track, one spacing away, the trace
    # threshold now seeds. The 1.8 m gaps between the beds give no line.
    g = make_grid(240, 90)
    ys = [10.0 + 5.3 * k for k in range(5)]
    lines = [straight_line(g, y) for y in ys]
    scenes = [render(g, lines, [], seed=s) for s in (1, 2, 3)][:n_dates]
    tracks = _extract(scenes)
    assert len(tracks) == 5
    aoi = scenes[0].aoi
    # T1 is the northern (left-hand, looking east) track.
    for t, ln in zip(tracks, lines[::-1], strict=True):
        truth = ln.intersection(aoi)
        assert t.line.hausdorff_distance(truth) < 0.5
        assert t.length_m > 0.97 * truth.length


def _bed_profile_image(centres_m, *, res=0.5, width=120, height=80, seed=0):
    """Horizontal tracks: 3.5 m ballast beds with an oil stain and rails, dark formation
    between them; rows from the top, ``centres_m`` metres below the top edge."""
    ss = 10
    y = (np.arange(height * ss) + 0.5) * res / ss
    prof = np.full_like(y, 0.30)
    for c in centres_m:
        u = np.abs(y - c)
        prof[u < 1.75] = 0.55
        prof[u < 0.45] = 0.43
        prof[np.abs(u - 0.76) < 0.08] = 0.25
    img = prof.reshape(height, ss).mean(1)[:, None] * np.ones((1, width))
    rng = np.random.default_rng(seed)
    return (img + rng.normal(0, 0.01, img.shape)).astype(np.float32)


def test_strip_evidence_is_on_the_beds_not_in_the_gaps_between_them():
    # Seen from the middle of a 1.8 m gap, the neighbouring beds' stain and rail edges sit
    # at car-body half widths and used to pass as a strip; the gap's own edges, stronger
    # and inside that strip, now rule it out.
    res = 0.5
    centres = [8.0 + 5.3 * k for k in range(6)]
    img = _bed_profile_image(centres, res=res)
    maps = rail_maps([img], [np.ones(img.shape, bool)], res)

    def strip_at(y_m):
        pts = np.array([[y_m / res - 0.5, c] for c in range(20, 100, 4)], float)
        n = len(pts)
        normal = np.tile([1.0, 0.0], (n, 1))
        along = np.tile([0.0, 1.0], (n, 1))
        return float(np.median(_evidence(maps.stacked, pts, normal, along, res)[1]))

    beds = [strip_at(c) for c in centres[1:-1]]
    gaps = [strip_at(c + 2.65) for c in centres[:-1]]
    assert min(beds) > 10.0
    assert max(gaps) < 0.15 * min(beds)


def test_collinear_pieces_with_hooked_ends_are_joined():
    # Two pieces of one straight track 12 m apart whose last 3 m veer 0.8 m sideways
    # (a trace drifting off at a cut), and a parallel line 5 m aside.
    a = LineString([(0, 0), (97, 0), (100, 0.8)])
    b = LineString([(112, -0.8), (115, 0), (220, 0)])
    side = LineString([(0, 5), (220, 5)])
    out = _join_collinear([(1.0, a), (1.0, b), (1.0, side)], max_gap_m=120.0)
    lines = sorted((ln for _, ln in out), key=lambda ln: ln.centroid.y)
    assert len(lines) == 2
    assert lines[0].hausdorff_distance(LineString([(0, 0), (220, 0)])) < 0.1
    assert lines[1].equals(side)


def test_parallel_line_with_weaker_rails_is_cut_where_it_runs_beside_a_track():
    g = make_grid(240, 60)
    track = straight_line(g, 15.0)
    sc = render(g, [track], [], seed=2)
    maps = rail_maps([sc.gray], [sc.valid], g.resolution_m)
    tracer = _Tracer(maps, g.resolution_m, rail_lo=3.0, strip_lo=3.0, max_gap_m=60.0)
    minx, miny, maxx, _ = g.bounds
    # A false line 2.5 m beside the track for its first 80 m, then on towards the AOI end.
    beside = LineString([(minx + 5, miny + 17.5), (maxx - 5, miny + 17.5)])
    far = LineString([(minx + 5, miny + 45.0), (maxx - 5, miny + 45.0)])
    lines = [(1.0, track.intersection(sc.aoi)), (1.0, beside), (1.0, far)]
    out = _resolve_parallels(lines, g, tracer, spacing_m=4.5, min_length_m=10.0)
    kept = [ln for _, ln in out]
    # The track itself and the unrelated line 30 m away stay whole; the line beside the
    # track loses everything within 0.85 x 4.5 m of it (its whole length here).
    assert any(ln.hausdorff_distance(track.intersection(sc.aoi)) < 0.1 for ln in kept)
    assert any(ln.equals(far) for ln in kept)
    assert len(kept) == 2


def test_pieces_whose_ends_overlap_are_joined():
    # A trace stops 8 m after veering 2.5 m off its track; the next piece was traced
    # from the other side and runs back 12 m past that end (hooking off too): the ends
    # pass each other, so they do not face each other across a gap.
    a = LineString([(0, 0), (100, 0), (108, 2.5)])
    b = LineString([(82, -2.5), (88, 0), (220, 0)])
    side = LineString([(0, 5.3), (220, 5.3)])
    out = _join_overlapping([(1.0, a), (1.0, b), (1.0, side)], min_length_m=10.0)
    lines = sorted((ln for _, ln in out), key=lambda ln: ln.centroid.y)
    assert len(lines) == 2
    assert lines[0].hausdorff_distance(LineString([(0, 0), (220, 0)])) < 0.1
    assert lines[1].equals(side)
    # Joined in the middle of the shared run (88-100 m): one line, no duplicate metres.
    assert abs(lines[0].length - 220.0) < 0.5


def test_line_arriving_along_a_branch_is_not_taken_over():
    # A through line ends 10 m after a branch line has joined it from 5.3 m aside: the
    # branch line does not end beside the through line, so both stay as they are.
    through = LineString([(0, 0), (100, 0)])
    branch = LineString([(0, 5.3), (58, 5.3), (90, 0), (220, 0)])
    out = _join_overlapping([(1.0, through), (1.0, branch)], min_length_m=10.0)
    assert len(out) == 2
    assert out[0][1].equals(through)
    assert out[1][1].equals(branch)


def test_stack_track_across_a_level_crossing_stays_one_line():
    # A 20 m road hides the rails on every date. A trace in a stack bridges at most 10 m
    # (longer bridges drifted across to the next track); the pieces either side of the
    # road continue each other and are joined.
    g = make_grid(300, 60)
    line = straight_line(g, 15)
    scenes = [render(g, [line], [], seed=s) for s in (1, 2, 3)]
    w = g.shape[1]
    road = (np.arange(w) >= 200) & (np.arange(w) < 240)  # x = 100-120 m
    rng = np.random.default_rng(0)
    for sc in scenes:
        sc.data[:, :, road] = 0.3 + 0.005 * rng.standard_normal(sc.data[:, :, road].shape)
    tracks = _extract(scenes)
    assert len(tracks) == 1
    truth = line.intersection(scenes[0].aoi)
    assert tracks[0].line.hausdorff_distance(truth) < 1.0
    assert tracks[0].length_m > 0.95 * truth.length


def _rail_pairs_image(pairs, *, res=0.5, width=240, height=80, seed=0):
    """Flat ground with pairs of thin rail lines (centre_m, contrast) along the rows.

    Each pair is two 1-pixel lines one half gauge either side of ``centre_m`` (metres
    from the top); a negative contrast draws dark rails, a positive one bright rails.
    """
    img = 0.5 + 0.01 * np.random.default_rng(seed).standard_normal((height, width))
    for centre_m, contrast in pairs:
        for side in (-1.0, 1.0):
            y_px = (centre_m + side * RAIL_HALF_GAUGE_M) / res - 0.5
            r0 = int(np.floor(y_px))
            f = y_px - r0
            img[r0] += (1.0 - f) * contrast
            img[r0 + 1] += f * contrast
    return img.astype(np.float32)


def _path_along_row(centre_m, *, res=0.5, width=240):
    cols = np.arange(10.0, width - 10.0, 2.0)
    rows = np.full_like(cols, centre_m / res - 0.5)
    return np.column_stack([rows, cols]), np.full(len(cols), 2)


def test_rail_polarity_weights_the_yards_own_rail_polarity():
    # The stronger rail pairs are dark: bright pairs weigh the minimum, and the other
    # way round on the negative image. Without rail-pair points both weigh 1.
    img = _rail_pairs_image([(10.0, -0.3), (25.0, 0.1)])
    paths = [_path_along_row(10.0), _path_along_row(25.0)]
    maps = rail_maps([img], [np.ones(img.shape, bool)], 0.5)
    assert _rail_polarity(paths, maps, 0.5) == (1.0, _POLARITY_MIN)
    neg = rail_maps([1.0 - img], [np.ones(img.shape, bool)], 0.5)
    assert _rail_polarity(paths, neg, 0.5) == (_POLARITY_MIN, 1.0)
    unseen = [(p, np.zeros(len(p), int)) for p, _ in paths]
    assert _rail_polarity(unseen, maps, 0.5) == (1.0, 1.0)


def test_line_on_a_pair_of_the_other_polarity_beside_a_track_is_cut():
    # A track with dark rails and, 2.5 m beside it, two bright lines a gauge apart (the
    # edges of the gravel between two beds) nearly as strong: the line along them is not
    # a track once the yard's rail polarity is known, and is cut where it runs beside.
    g = SiteGrid("EPSG:32652", Affine(0.5, 0, 0, 0, -0.5, 40.0), 240, 80)
    img = _rail_pairs_image([(10.0, -0.3), (12.5, 0.27)])
    maps = rail_maps([img], [np.ones(img.shape, bool)], 0.5)
    track = LineString([(5.0, 30.0), (115.0, 30.0)])
    beside = LineString([(5.0, 27.5), (115.0, 27.5)])
    lines = [(1.0, track), (1.0, beside)]

    def kept_after(polarity):
        rail_lo = float(np.percentile(maps.dark, 99.5))
        tracer = _Tracer(maps, 0.5, rail_lo=rail_lo, strip_lo=1e9, max_gap_m=60.0)
        tracer.polarity = polarity
        out = _resolve_parallels(lines, g, tracer, spacing_m=4.5, min_length_m=10.0)
        return [ln for _, ln in out]

    assert len(kept_after((1.0, 1.0))) == 2  # evidence alone: too close to call
    paths = [_path_along_row(10.0), _path_along_row(12.5)]
    kept = kept_after(_rail_polarity(paths, maps, 0.5))
    assert len(kept) == 1
    assert kept[0].hausdorff_distance(track) < 0.1

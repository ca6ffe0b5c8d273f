import numpy as np
import pytest

from detect_fixtures import arc_line, cut_nodata, make_grid, render, straight_line, train
from railwatch.align import apply_shift, build_reference, estimate_shift


@pytest.fixture(scope="module")
def yard():
    g = make_grid(240, 140)
    lines = [
        straight_line(g, 25),
        straight_line(g, 30.3),
        straight_line(g, 35.6),
        arc_line(g, radius_m=300, y_m=45),
    ]
    return g, lines, render(g, lines, train(0, 20, [13.92] * 4), seed=1, supersample=2)


@pytest.mark.parametrize(
    "offset_m", [(0.0, 0.0), (3.2, -1.7), (-7.1, 4.4), (10.0, 0.0), (-6.9, -7.3)]
)
def test_shift_recovered_within_a_pixel(yard, offset_m):
    g, lines, ref = yard
    moved = render(
        g,
        lines,
        train(1, 40, [13.92] * 3) + train(2, 10, [12.02] * 2),
        seed=2,
        offset_m=offset_m,
        supersample=2,
    )
    cut_nodata(moved, keep_cols=170)  # a swath edge, and the cars changed
    dy, dx = estimate_shift(ref.gray, moved.gray, valid=moved.valid)
    # A feature moved by +x m (east) and +y m (north) must be moved back by -x/res columns
    # and by +y/res rows (rows grow southwards).
    assert abs(dy - offset_m[1] / 0.5) < 1.0
    assert abs(dx + offset_m[0] / 0.5) < 1.0


def test_apply_shift_moves_data_and_mask():
    data = np.zeros((2, 20, 20), np.float32)
    data[:, 5, 5] = 1.0
    valid = np.ones((20, 20), bool)
    out, ok = apply_shift(data, valid, (2.0, -3.0))
    assert out.shape == data.shape
    assert out[0, 7, 2] == pytest.approx(1.0)
    assert not ok[:2].any() and not ok[:, -3:].any()
    assert ok[5:, :10].all()


def test_build_reference_ignores_invalid_and_works_with_one():
    a = np.full((4, 4), 0.2, np.float32)
    b = np.full((4, 4), 0.8, np.float32)
    va = np.ones((4, 4), bool)
    vb = np.zeros((4, 4), bool)
    assert np.allclose(build_reference([a, b], [va, vb]), 0.2)
    assert np.allclose(build_reference([b], [va]), 0.8)


def test_solving_the_stack_with_threads_gives_the_same_shifts(yard):
    from railwatch.align import edge_spectrum, solve_shifts

    g, lines, _ = yard
    scenes = [
        render(g, lines, train(k % 3, 20 + 5 * k, [13.92] * 2), seed=k, offset_m=off)
        for k, off in enumerate([(0, 0), (2.5, -1.0), (-3.0, 4.0), (1.0, 1.0)])
    ]
    spectra = [edge_spectrum(s.gray, s.valid) for s in scenes]
    one = solve_shifts(spectra, scenes[0].gray.shape)
    assert solve_shifts(spectra, scenes[0].gray.shape, workers=2) == one
    # Scene 1 lies 2.5 m east and 1 m south of scene 0: moved back 5 columns and 2 rows.
    assert abs((one[1][1] - one[0][1]) + 5.0) < 1.0 and abs((one[1][0] - one[0][0]) + 2.0) < 1.0


def test_a_cloudy_scene_is_placed_where_its_right_matches_agree():
    """A cloud's soft rim pulls most of a scene's matches onto wrong peaks; not all alike.

    The five clear scenes (one snowy) are anchors; the cloudy one matches two of them
    right and three wrong, each wrong one elsewhere along the tracks (a shift along
    parallel tracks barely changes their correlation). A median of the five takes the
    wrong side; the two right ones agree with each other within a pixel.
    """
    from scipy import ndimage as ndi

    from railwatch.align import edge_spectrum, solve_shifts

    g = make_grid(300, 160)
    lines = [straight_line(g, y) for y in (25, 30.3, 35.6, 40.9)]
    lines.append(arc_line(g, radius_m=300, y_m=50))
    offs = [(0, 0), (2.5, -1.0), (-3.0, 4.0), (1.0, 1.0), (-2.0, -2.5), (3.5, 2.0)]
    scenes = [
        render(
            g,
            lines,
            train(k % 4, 10 + 13 * k, [13.92] * 3),
            seed=k,
            offset_m=off,
            snow=k == 0,
            supersample=2,
            n_patches=0,
        )
        for k, off in enumerate(offs)
    ]
    # Scene 3 under a thick cloud whose rim fades over about 15 px (7.5 m).
    yy, xx = np.mgrid[0 : g.shape[0], 0 : g.shape[1]]
    core = ((xx - 120) / 150) ** 2 + ((yy - 40) / 70) ** 2 < 1
    alpha = 0.97 * ndi.gaussian_filter(core.astype(float), 15)
    cloudy = scenes[3].gray * (1 - alpha) + 0.9 * alpha
    grays = [s.gray for s in scenes[:3]] + [cloudy.astype(np.float32)]
    grays += [s.gray for s in scenes[4:]]
    spectra = [edge_spectrum(gr, scenes[0].valid) for gr in grays]
    got = np.array(solve_shifts(spectra, g.shape))
    # A feature moved +x m east, +y m north is moved back -x/res columns, +y/res rows.
    true = np.array([(y / 0.5, -x / 0.5) for x, y in offs])
    err = got - true
    err -= np.median(err, axis=0)
    assert np.hypot(*err.T).max() < 1.0


def test_an_anchor_is_not_placed_by_its_one_wrong_pair():
    """Anchor 1 locked on a wrong peak with the fixed anchor 0 only (a cloudy scene against
    a snowy one); every scene seen from both places it right."""
    from railwatch.align import _solve_positions

    rng = np.random.default_rng(0)
    n, anchors = 8, [0, 1, 2, 3]
    true = rng.uniform(-10, 10, (n, 2))
    true[0] = 0.0
    edges = []
    for a in anchors:
        for i in range(n):
            if i != a and not (i in anchors and i < a):
                dy, dx = true[i] - true[a] + rng.normal(0, 0.1, 2)
                edges.append((a, i, float(dy), float(dx)))
    edges[0] = (0, 1, float(true[1, 0] + 26.0), float(true[1, 1] - 15.0))
    pos = _solve_positions(n, edges, 0, anchors=anchors)
    assert np.abs(pos - true).max() < 0.5


def test_a_scene_outside_the_stack_is_placed_by_the_anchors_vote():
    """A scene outside the stack's sample had one match, against the median reference, and
    nothing to outvote it when that locked on a wrong peak (a snowy scene against the
    snow-free median, 17 m along the tracks). The stack's anchors vote on it as they do on
    the scenes inside the stack."""
    from railwatch.align import (
        AnchorEdges,
        anchor_edges,
        edge_spectrum,
        place_scene,
        select_anchors,
        solve_shifts,
    )

    g = make_grid(300, 160)
    lines = [straight_line(g, y) for y in (25, 30.3, 35.6, 40.9)]
    lines.append(arc_line(g, radius_m=300, y_m=50))
    offs = [(0, 0), (2.5, -1.0), (-3.0, 4.0), (1.0, 1.0), (-2.0, -2.5)]
    scenes = [
        render(g, lines, train(k % 4, 10 + 13 * k, [13.92] * 3), seed=k, offset_m=off,
               supersample=2, n_patches=0)
        for k, off in enumerate(offs)
    ]  # fmt: skip
    spectra = [edge_spectrum(s.gray, s.valid) for s in scenes]
    shifts = np.array(solve_shifts(spectra, g.shape))
    anchors = [
        AnchorEdges(anchor_edges(spectra[i], g.shape), tuple(shifts[i]))
        for i in select_anchors(spectra)
    ]
    assert len(anchors) >= 3 and all(a.edges.dtype == np.float16 for a in anchors)
    # The stack's frame: a feature moved +x m east, +y m north is moved back -x/res
    # columns, +y/res rows; the solve is centred on the median of the shifts.
    frame = np.median(shifts - np.array([(y / 0.5, -x / 0.5) for x, y in offs]), axis=0)
    new = render(g, lines, train(2, 40, [13.92] * 2), seed=9, offset_m=(6.5, -3.0),
                 snow=True, supersample=2, n_patches=0)  # fmt: skip
    true = np.array([-3.0 / 0.5, -6.5 / 0.5]) + frame
    wrong = (float(true[0]) - 1.0, float(true[1]) + 34.0)  # 17 m along the tracks
    sp = edge_spectrum(new.gray, new.valid)
    got = place_scene(anchors, sp, g.shape, reference_shift=wrong)
    assert np.hypot(*(np.array(got) - true)) < 0.5
    assert np.hypot(*(np.array(place_scene(anchors, sp, g.shape)) - true)) < 0.5
    # Nothing to vote with but the reference's match: that one.
    assert place_scene([], sp, g.shape, reference_shift=wrong) == wrong


def test_the_stack_placer_gives_the_per_scene_matches_to_the_last_bit():
    """ScenePlacer transforms the reference and anchors once per stack instead of once per
    scene; the shift it gives is that of estimate_shift followed by place_scene."""
    from railwatch.align import (
        AnchorEdges,
        ScenePlacer,
        anchor_edges,
        edge_spectrum,
        estimate_shift,
        place_scene,
    )

    g = make_grid(200, 120)
    lines = [straight_line(g, y) for y in (25, 30.3, 35.6)]
    offs = [(0, 0), (2.5, -1.0), (-3.0, 4.0)]
    scenes = [
        render(g, lines, train(k, 10 + 13 * k, [13.92] * 3), seed=k, offset_m=off, n_patches=0)
        for k, off in enumerate(offs)
    ]
    reference = np.median([s.gray for s in scenes], axis=0)
    ref_valid = np.ones(g.shape, bool)
    anchors = [
        AnchorEdges(anchor_edges(edge_spectrum(s.gray, s.valid), g.shape), (0.5 * k, -0.25 * k))
        for k, s in enumerate(scenes)
    ]
    placer = ScenePlacer.of_stack(reference, ref_valid, anchors, max_shift_px=30)
    bare = ScenePlacer.of_stack(reference, ref_valid, max_shift_px=30)
    for k, off in enumerate([(1.5, 2.0), (-4.0, 0.5)]):  # metres east, north
        new = render(g, lines, train(1, 30, [13.92] * 2), seed=20 + k, offset_m=off, n_patches=0)
        valid = new.valid.copy()
        valid[:, :40] = False  # a swath edge
        matched = estimate_shift(
            reference, new.gray, valid=valid, ref_valid=ref_valid, max_shift_px=30
        )
        sp = edge_spectrum(new.gray, valid)
        voted = place_scene(anchors, sp, g.shape, reference_shift=matched)
        assert placer.place(new.gray, valid) == voted
        assert bare.place(new.gray, valid) == matched
    # Nothing valid to match: no shift, as estimate_shift says.
    assert bare.place(new.gray, np.zeros(g.shape, bool)) == (0.0, 0.0)

import numpy as np
from affine import Affine
from shapely.geometry import LineString, box

from railwatch.site import SiteGrid
from railwatch.tracks import extract_tracks
from test_tracks import _rail_pairs_image


def _pairs_stack(pairs, *, n=3, res=0.5, width=240, height=80):
    """``n`` dates of tests/test_tracks.py's rail-pair image (one noise seed per date)."""
    return [_rail_pairs_image(pairs, res=res, width=width, height=height, seed=k) for k in range(n)]


GRID = SiteGrid("EPSG:32652", Affine(0.5, 0, 0, 0, -0.5, 40.0), 240, 80)
AOI = box(3.0, 3.0, 117.0, 37.0)


def _extract(images):
    return extract_tracks(images, [np.ones(im.shape, bool) for im in images], GRID, AOI)


def test_bright_pair_far_from_any_track_seeds_no_line():
    # A yard with dark rails and, 15 m away (not beside any track, so no conflict cuts
    # it), two bright lines a gauge apart nearly as strong: the edges of the gravel
    # between two beds. The stack's rail polarity keeps them from seeding.
    images = _pairs_stack([(10.0, -0.3), (25.0, 0.27)], n=3)
    lines = [t.line for t in _extract(images)]
    track = LineString([(3.0, 30.0), (117.0, 30.0)])
    assert len(lines) == 1
    assert lines[0].hausdorff_distance(track) < 0.5
    assert lines[0].length > 0.95 * track.length


def test_stack_of_bright_rails_keeps_its_tracks():
    # The polarity is the yard's own: where the rails are bright (polished), bright
    # pairs are the tracks and a weaker dark pair 15 m away is not.
    images = [1.0 - im for im in _pairs_stack([(10.0, -0.3), (25.0, 0.27)])]
    lines = [t.line for t in _extract(images)]
    assert len(lines) == 1
    assert lines[0].hausdorff_distance(LineString([(3.0, 30.0), (117.0, 30.0)])) < 0.5


def test_stack_of_two_dark_tracks_keeps_both():
    images = _pairs_stack([(10.0, -0.3), (25.0, -0.27)])
    lines = sorted((t.line for t in _extract(images)), key=lambda ln: -ln.centroid.y)
    assert len(lines) == 2
    for ln, y in zip(lines, (30.0, 15.0), strict=True):
        assert ln.hausdorff_distance(LineString([(3.0, y), (117.0, y)])) < 0.5


def test_a_single_image_does_not_vote_on_polarity():
    # One image is too few to tell the yard's rails from bright gaps (a resampled scene's
    # strongest pairs can be the gaps): both pairs seed, as without the polarity.
    images = _pairs_stack([(10.0, -0.3), (25.0, 0.27)], n=1)
    assert len(_extract(images)) == 2

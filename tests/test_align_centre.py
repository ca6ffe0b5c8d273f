"""Re-centring surveyed track lines on the stack's image: only where the bed tells.

A surveyed or digitised line a little off its bed is moved onto it when every part of the
track shows the bed's centre in the same place. A reference that does not resolve the bed
(a stack of 1 m scenes: rails sub-pixel, ballast barely brighter than the ground) leaves a
profile whose most symmetric point is noise: the line must then be kept as given, not
moved a metre towards its neighbour (where the detector then misses every car on it).
"""

import numpy as np
from shapely.geometry import LineString

from detect_fixtures import _line_coords, make_grid
from railwatch.align import centre_tracks
from railwatch.tracks import tracks_from_lines

SPACING_M = 5.3


def _yard(*, bed_contrast: float, gsd_m: float, seed: int):
    """Gray reference of four parallel tracks 200 m long on a 0.5 m grid, true lines.

    Ballast beds 3.5 m wide ``bed_contrast`` brighter than the ground, dark rails 1.52 m
    apart, imaged at ``gsd_m`` (box-averaged, then back on the grid) with 0.01 noise.
    """
    g = make_grid(400, 60)
    minx, miny, maxx, maxy = g.bounds
    lines = [
        LineString(
            [(minx - 5.0, miny + 9.0 + k * SPACING_M), (maxx + 5.0, miny + 9.0 + k * SPACING_M)]
        )
        for k in range(4)
    ]
    ss = 4
    xs = minx + (np.arange(g.width * ss) + 0.5) * g.resolution_m / ss
    ys = maxy - (np.arange(g.height * ss) + 0.5) * g.resolution_m / ss
    px, py = np.meshgrid(xs, ys)
    img = np.full(px.shape, 0.40)
    for ln in lines:
        u = _line_coords(ln, px, py)[0]
        img[np.abs(u) < 1.75] += bed_contrast
        img[np.abs(np.abs(u) - 0.76) < 0.08] -= 2 * bed_contrast
    k = int(round(gsd_m / g.resolution_m)) * ss
    h, w = img.shape
    img = img[: h // k * k, : w // k * k].reshape(h // k, k, w // k, k).mean(axis=(1, 3))
    img = img + np.random.default_rng(seed).normal(0.0, 0.01, img.shape)
    f = k // ss
    img = np.kron(img, np.ones((f, f)))
    gray = np.full((g.height, g.width), 0.40)
    gray[: img.shape[0], : img.shape[1]] = img
    return g, lines, gray.astype(np.float32)


def _offset_after(before, after) -> list[float]:
    """Sideways move of each (horizontal) line, metres, positive to the north."""
    return [b.line.coords[0][1] - a.line.coords[0][1] for a, b in zip(before, after, strict=True)]


def test_line_off_a_resolved_bed_is_moved_onto_it():
    g, lines, gray = _yard(bed_contrast=0.05, gsd_m=0.5, seed=0)
    given = tracks_from_lines(
        [(f"T{i}", ln.parallel_offset(0.6, "left")) for i, ln in enumerate(lines)]
    )
    moved = centre_tracks(gray, np.ones(gray.shape, bool), g, given)
    for d in _offset_after(given, moved):
        assert abs(d + 0.6) < 0.1


def test_line_is_kept_where_the_reference_does_not_show_the_bed():
    g, lines, gray = _yard(bed_contrast=0.0, gsd_m=1.0, seed=0)
    given = tracks_from_lines([(f"T{i}", ln) for i, ln in enumerate(lines)])
    moved = centre_tracks(gray, np.ones(gray.shape, bool), g, given)
    assert [round(d, 2) for d in _offset_after(given, moved)] == [0.0, 0.0, 0.0, 0.0]

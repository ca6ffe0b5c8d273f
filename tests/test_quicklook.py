"""Quicklooks: what is drawn where, legend entries, deterministic bytes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from affine import Affine
from PIL import Image
from shapely.geometry import LineString, box

from railwatch.quicklook import MIN_SIDE_PX, TYPE_COLORS, quicklook, stretch

TR = Affine(0.5, 0, 700000.0, 0, -0.5, 4700000.0)  # 0.5 m pixels, north up


def _draw(**kw):
    rgb = np.full((40, 60, 3), 0.5)
    rgb[:, :, 0] = np.linspace(0.3, 0.7, 60)  # some contrast to stretch
    rgb[:, 50:] = np.nan
    args = dict(
        aoi=box(700001, 4699981, 700029, 4699999),
        tracks=[("T1", LineString([(700001, 4699985), (700029, 4699985)]))],
        vehicles=[(box(700005, 4699990, 700012, 4699992), "tank", 0.9),
                  (box(700014, 4699990, 700020, 4699992), "open", 0.2)],
        unobserved=box(700025, 4699980, 700030, 4700000),
        title="2023-01-02 ok",
    )  # fmt: skip
    args.update(kw)
    return quicklook(rgb, TR, **args)


def _hex(c: str) -> tuple[int, int, int]:
    return tuple(int(c[i : i + 2], 16) for i in (1, 3, 5))


def test_legend_lists_what_is_drawn_with_counts():
    q = _draw()
    assert q.legend == (
        "not observed", "AOI", "track centre line", "tank (1)", "open / ore (1)",
        "confidence < 0.5",
    )  # fmt: skip
    assert _draw(vehicles=[], unobserved=None).legend == ("AOI", "track centre line")


def test_small_images_are_enlarged_by_whole_pixels_and_geometry_lands_on_them():
    q = _draw()
    scale = int(q.scale)
    assert scale == -(-MIN_SIDE_PX // 60)  # 60 px wide -> 15x
    img = np.asarray(q.image)

    # Image pixel (row, col) -> output block starting at (offset_y + row*s, col*s).
    # The tank spans x 700005-700012 -> columns 10..23, y 4699990-4699992 -> rows 16..19.
    def block(r, c):
        y, x = q.offset_y + r * scale + scale // 2, c * scale + scale // 2
        return img[y, x].astype(int)

    tank = np.array(_hex(TYPE_COLORS["tank"]))
    inside = block(17, 16)
    outside = block(17, 30)
    # The 30 % fill pulls the tank's pixels toward its colour, the background stays grey.
    assert np.abs(inside - tank).sum() < np.abs(outside - tank).sum()
    # Tank outline: its colour on the polygon's top edge (row 16 starts at y = 4699992).
    top = img[q.offset_y + 16 * scale, 15 * scale]
    assert tuple(top) == _hex(TYPE_COLORS["tank"])


def test_unobserved_part_is_hatched_and_missing_data_black():
    q = _draw(vehicles=[], tracks=[], aoi=None)
    img = np.asarray(q.image).astype(int)
    s = int(q.scale)
    # Columns 50+ have no data (black) and lie in the unobserved box: hatch lines are
    # light, the rest dark.
    block = img[q.offset_y + 10 * s : q.offset_y + 12 * s, 52 * s : 54 * s]
    light = (block.min(axis=2) > 150).mean()
    assert 0.1 < light < 0.4
    # Columns left of the box are not hatched.
    clear = img[q.offset_y + 10 * s : q.offset_y + 12 * s, 20 * s : 22 * s]
    assert (clear.min(axis=2) > 150).mean() == 0.0


def test_png_bytes_are_deterministic_and_decode():
    a, b = _draw().png(), _draw().png()
    assert a == b and a[:8] == b"\x89PNG\r\n\x1a\n"
    im = Image.open(io.BytesIO(a))
    assert im.mode == "RGB" and im.width == 60 * int(_draw().scale)


def test_long_titles_wrap_at_separators():
    one = _draw(title="a · b")
    two = _draw(title=" · ".join(["2024-11-20T02:07:21Z partial 18 railcars [5–36]"] * 4))
    assert two.offset_y > one.offset_y


def test_stretch_keeps_colour_ratios_and_blanks_missing():
    img = np.zeros((2, 2, 3))
    img[0, 0] = [0.1, 0.2, 0.3]
    img[0, 1] = [0.2, 0.4, 0.6]
    img[1, 0] = np.nan
    img[1, 1] = [0.3, 0.3, 0.3]
    out = stretch(img, percentiles=(0, 100))
    assert out[1, 0].tolist() == [0.0, 0.0, 0.0]
    assert out[0, 0, 0] == 0.0 and out[0, 1, 2] == 1.0
    assert out[1, 1, 0] == out[1, 1, 1] == out[1, 1, 2]  # grey stays grey
    with pytest.raises(ValueError):
        stretch(np.zeros((3, 3)))


def test_stretch_within_a_mask_ignores_bright_surroundings():
    img = np.full((4, 4, 3), 0.2)
    img[:2] = 1.0  # cloud
    img[3, 3] = 0.3
    within = np.zeros((4, 4), bool)
    within[2:] = True
    out = stretch(img, percentiles=(0, 100), within=within)
    assert out[3, 3, 0] == 1.0 and out[2, 0, 0] == 0.0


def test_labels_of_tracks_leaving_one_switch_do_not_cover_each_other():
    from PIL import ImageDraw

    from railwatch.quicklook import FONT_PX, _font, _label_positions

    draw = ImageDraw.Draw(Image.new("RGBA", (400, 200)))
    font = _font(FONT_PX)
    # A ladder: three tracks from one switch, diverging at about 1:7.
    labels = [([(10.0, 100.0), (390.0, 100.0 + k * 54.0)], f"T{k + 1}") for k in range(3)]
    placed = _label_positions(draw, font, labels)
    boxes = [draw.textbbox(at, text, font=font, anchor="ld", stroke_width=2) for at, text in placed]
    assert placed[0][0] == (12.0, 98.0)  # the first stays at its line's start
    for i in range(3):
        for j in range(i):
            a, b = boxes[i], boxes[j]
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3])
    # Each label stays on its own line: 2 px right of and above a point on it.
    for (x, y), (pts, _) in zip((at for at, _ in placed), labels, strict=True):
        (x0, y0), (x1, y1) = pts
        assert abs((y + 2) - (y0 + (x - 2 - x0) * (y1 - y0) / (x1 - x0))) < 1e-6

"""Figures: what is drawn where, and deterministic bytes."""

from __future__ import annotations

import datetime as dt

import matplotlib.dates as mdates
import numpy as np

from railwatch import plot
from railwatch.site import BaselineConfig, Event
from railwatch.timeseries import counts_table
from test_timeseries import rec

CFG = BaselineConfig(model="constant", value=10.0, factor=2.0)


def _counts():
    return counts_table(
        [
            rec((2023, 1, 2), 8),
            rec((2023, 1, 9), None, "obscured"),
            rec((2023, 1, 16), 6, "partial"),
            rec((2023, 1, 23), 40, low=35, high=44),
            rec((2023, 1, 30), None, "no_coverage"),
        ],
        CFG,
    )


def _labels(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_timeseries_figure_marks_without_drawing_zero():
    fig = plot.timeseries_figure(
        _counts(),
        baseline_cfg=CFG,
        events=[Event(dt.date(2023, 1, 20), "summit"), Event(dt.date(2019, 1, 1), "far")],
        title="test yard",
    )
    ax, ax_t = fig.axes[:2]
    labels = _labels(ax)
    assert labels == [
        "count with low–high interval",
        "partial coverage (observed part only)",
        "baseline (constant): 10",
        "anomaly threshold: 20",
        "anomaly (low bound above threshold)",
        "obscured: no count",
        "no coverage: no count",
    ]
    assert labels[:2] == ["count with low–high interval", "partial coverage (observed part only)"]
    assert "baseline (constant): 10" in labels and "anomaly threshold: 20" in labels
    assert "obscured: no count" in labels and "no coverage: no count" in labels
    # Obscured / no-coverage marks live in axes coordinates below the zero line.
    strip = [c for c in ax.collections if c.get_label() in ("obscured: no count",
                                                             "no coverage: no count")]  # fmt: skip
    assert len(strip) == 2
    for c in strip:
        y_axes = c.get_offsets()[:, 1]
        assert np.allclose(y_axes, 0.045)
        y_data = ax.transData.inverted().transform(ax.transAxes.transform((0, 0.045)))[1]
        assert y_data < 0
    # The complete counts plotted are exactly 8 and 40; nothing at zero.
    ok_line = next(line for line in ax.lines if line.get_gid() == "ok-path")
    assert list(ok_line.get_ydata()) == [8.0, 40.0]
    anomalies = [c for c in ax.collections if c.get_label().startswith("anomaly (")]
    assert len(anomalies) == 1 and len(anomalies[0].get_offsets()) == 1  # low 35 > 20
    texts = [t.get_text() for t in ax.texts]
    assert "summit (2023-01-20)" in texts and not any("far" in t for t in texts)
    assert fig._suptitle.get_text() == "test yard"
    # Bottom panel: one stacked 'open' bar per count (8, 6, 40), no bar for missing rows.
    heights = sorted(p.get_height() for p in ax_t.patches)
    assert heights == [6.0, 8.0, 40.0]
    xs = sorted(mdates.num2date(p.get_x() + p.get_width() / 2).day for p in ax_t.patches)
    assert xs == [2, 16, 23]


def test_timeseries_figure_without_observations():
    c = counts_table([rec((2023, 1, 2), None, "obscured")], BaselineConfig())
    fig = plot.timeseries_figure(c, baseline_cfg=BaselineConfig(), events=[], title="")
    assert "no observable acquisition" in [t.get_text() for t in fig.axes[0].texts]
    empty = counts_table([], BaselineConfig())
    fig = plot.timeseries_figure(empty, baseline_cfg=BaselineConfig(), events=[], title="x")
    assert fig.axes


def test_save_figure_is_deterministic_and_atomic(tmp_path):
    def draw(name):
        fig = plot.timeseries_figure(_counts(), baseline_cfg=CFG, events=[], title="t")
        return plot.save_figure(fig, tmp_path / name / "ts.png", svg=True)

    a, b = draw("a"), draw("b")
    assert [p.name for p in a] == ["ts.png", "ts.svg"]
    assert a[0].read_bytes() == b[0].read_bytes()
    assert a[1].read_bytes() == b[1].read_bytes()
    png = a[0].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and b"Software" not in png
    svg = a[1].read_text()
    assert "<dc:date>" not in svg and "Matplotlib v" not in svg
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["ts.png", "ts.svg"]

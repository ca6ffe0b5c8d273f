"""Figures: the traffic time series (quicklooks are drawn by :mod:`railwatch.quicklook`).

matplotlib is imported inside the functions and figures are built with
:class:`matplotlib.figure.Figure` (Agg canvas), so nothing here touches pyplot's global
state or needs a display. :func:`save_figure` writes byte-identical files for identical
figures (no timestamps, fixed SVG hash salt) through an atomic rename.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from railwatch.baseline import Baseline, baseline_value
from railwatch.quicklook import TYPE_COLORS, TYPE_LABELS
from railwatch.site import BaselineConfig, Event
from railwatch.types import VEHICLE_TYPES

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = [
    "TYPE_COLORS",
    "timeseries_figure",
    "figure_bytes",
    "format_bytes",
    "save_figure",
]

logger = logging.getLogger(__name__)

_COUNT_COLOR = "#1F3A5F"
_PARTIAL_COLOR = "#E07B00"
_ANOMALY_COLOR = "#C62828"
_BASELINE_COLOR = "#2E7D32"
_MISSING_COLOR = "#6E6E6E"
_EVENT_COLOR = "#444444"

SVG_HASHSALT = "railwatch"
"""Fixed salt for the ids matplotlib writes into SVG files (otherwise random)."""


# --------------------------------------------------------------------------- time series


def _as_float(s: pd.Series) -> np.ndarray:
    return (
        pd.to_numeric(s, errors="coerce").astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    )


def _naive_utc(s: pd.Series) -> np.ndarray:
    t = pd.to_datetime(s, utc=True).dt.tz_convert("UTC").dt.tz_localize(None)
    return t.to_numpy(dtype="datetime64[us]")


def _bar_widths_days(x: np.ndarray, *, axis_span_days: float) -> np.ndarray:
    """Bar width per acquisition (x sorted), in days.

    About 1.2 % of the plotted time axis (a bar stands for an instant, whatever the
    length of the series), narrowed where neighbours are closer so that bars never
    overlap.

    Examples
    --------
    >>> t = np.array(["2023-01-01", "2023-01-02", "2023-03-01"], dtype="datetime64[s]")
    >>> _bar_widths_days(t, axis_span_days=100.0).round(2).tolist()
    [0.9, 0.9, 1.2]
    """
    base = 0.012 * max(float(axis_span_days), 1.0)
    if x.size < 2:
        return np.full(x.size, base)
    gaps = np.diff(x).astype("timedelta64[s]").astype(float) / 86400.0
    left = np.concatenate([[np.inf], gaps])
    right = np.concatenate([gaps, [np.inf]])
    nearest = np.minimum(left, right)
    return np.minimum(base, np.where(nearest > 0, 0.9 * nearest, base))


_FIG_W_IN = 11.0
_FIG_H_IN = 6.6
"""Figure size without event labels."""
_TOP_PANEL_PT = 272.0
"""Approximate height of the top panel without event labels, points."""
_STRIP = 1.0 / 11.0
"""Axes fraction below the zero line, where acquisitions without a count are marked."""
_DATA_TOP = 0.903
"""Highest axes fraction data reach when there are no event labels."""
_EVENT_ROW_PT = 16.0
"""Height of one row of event labels, points."""
_EVENT_FONT_PT = 8.5
_EVENT_MAX_ROWS = 5
_TOP_AXES_SHARE = 0.64
"""Share of the figure width the top panel gets (the legend takes the rest)."""


def _event_row_y(row: int, panel_h_pt: float) -> float:
    """Axes fraction of the centre of event-label row ``row`` (0 is the top row)."""
    return 1.0 - (4.0 + (row + 0.5) * _EVENT_ROW_PT) / panel_h_pt


def _label_width(text: str) -> float:
    """Width of an event label in axes fractions of the top panel (slightly generous)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    extent = TextPath((0, 0), text, prop=FontProperties(size=_EVENT_FONT_PT)).get_extents()
    return (extent.width + 10.0) / (_FIG_W_IN * 72.0 * _TOP_AXES_SHARE)


def _event_rows(
    x: Sequence[float], widths: Sequence[float], *, max_rows: int = _EVENT_MAX_ROWS
) -> list[tuple[int, str]]:
    """Place event labels in rows so that they do not overlap.

    Parameters
    ----------
    x : sequence of float
        Event positions, axes fractions (0-1), in date order.
    widths : sequence of float
        Label widths, axes fractions.
    max_rows : int
        Most rows; when all are taken the label goes to the row that frees up first.

    Returns
    -------
    list of (int, str)
        Row (0 at the top) and horizontal alignment (``left``: the label starts at the
        event; ``right``: it ends there, used when it would run past the right edge).

    Examples
    --------
    >>> _event_rows([0.1, 0.2, 0.6, 0.95], [0.3, 0.2, 0.1, 0.2])
    [(0, 'left'), (1, 'left'), (0, 'left'), (0, 'right')]
    """
    ends: list[float] = []  # right end of the last label in each row
    out: list[tuple[int, str]] = []
    gap = 0.015
    for xi, wi in zip(x, widths, strict=True):
        ha = "right" if xi + wi > 1.0 and xi - wi >= 0.0 else "left"
        start = xi - wi if ha == "right" else xi
        row = next((r for r, end in enumerate(ends) if start >= end + gap), None)
        if row is None:
            if len(ends) < max_rows:
                row = len(ends)
                ends.append(-1.0)
            else:
                row = int(np.argmin(ends))
        ends[row] = max(ends[row], start + wi)
        out.append((row, ha))
    return out


def timeseries_figure(
    counts: pd.DataFrame,
    *,
    baseline_cfg: BaselineConfig,
    events: Sequence[Event] = (),
    title: str = "",
    baseline: Baseline | None = None,
) -> Figure:
    """Railcar counts over time with their interval, the baseline, events and types.

    Parameters
    ----------
    counts : pandas.DataFrame
        Per-acquisition table (:func:`railwatch.timeseries.counts_table`).
    baseline_cfg : BaselineConfig
        Baseline model, resolved against ``counts`` unless ``baseline`` is given.
    events : sequence of Event
        Dated events drawn as labelled vertical lines (those inside the plotted range).
    title : str
        Figure title.
    baseline : Baseline, optional
        Already resolved baseline.

    Returns
    -------
    matplotlib.figure.Figure
        Top panel: counts of complete acquisitions (filled) and partial ones (hollow,
        lower bounds of the yard) with low-high error bars, the baseline and anomaly
        threshold, anomalies ringed in red, obscured and uncovered acquisitions marked
        below the zero line (they have no count). The line joining complete counts stops
        across gaps longer than three times the median interval (and at least 30 days).
        Events get a dotted line and a horizontal label in a band above the data (rows
        chosen so that labels do not overlap; the figure grows by one text row per row).
        Bottom panel: counts by vehicle type, stacked; partial counts in paler colours.
    """
    import matplotlib.dates as mdates
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure
    from matplotlib.transforms import blended_transform_factory

    b = baseline if baseline is not None else baseline_value(baseline_cfg, counts)
    if len(counts):
        counts = counts.sort_values("datetime", kind="stable")
    n = len(counts)
    x = _naive_utc(counts["datetime"]) if n else np.array([], dtype="datetime64[us]")
    y = _as_float(counts["railcars"]) if n else np.array([])
    lo = _as_float(counts["railcars_low"]) if n else np.array([])
    hi = _as_float(counts["railcars_high"]) if n else np.array([])
    lo = np.where(np.isnan(lo), y, lo)
    hi = np.where(np.isnan(hi), y, hi)
    status = counts["status"].astype("string").fillna("").to_numpy(dtype=str) if n else []
    status = np.asarray(status, dtype=str)
    has = ~np.isnan(y)
    ok = has & (status == "ok")
    partial = has & (status == "partial")
    obscured = status == "obscured"
    uncovered = status == "no_coverage"
    anomaly = (
        counts["anomaly"].astype("boolean").fillna(False).to_numpy(dtype=bool)
        if n
        else np.array([], dtype=bool)
    ) & has

    # x range: the data, padded; events outside it are not drawn (they would squash it).
    if n:
        t0, t1 = x.min(), x.max()
    else:
        t0 = t1 = np.datetime64("2000-01-01T00:00:00", "us")
    span = max((t1 - t0) / np.timedelta64(1, "D"), 1.0)
    pad = np.timedelta64(int(max(0.04 * span, 3.0) * 86400), "s")
    xmin, xmax = t0 - pad, t1 + pad
    shown_events = [ev for ev in events if xmin <= np.datetime64(ev.date.isoformat(), "us") <= xmax]
    event_labels = [
        f"{ev.label} ({ev.date.isoformat()})" if ev.label else ev.date.isoformat()
        for ev in shown_events
    ]
    event_x = [
        float((np.datetime64(ev.date.isoformat(), "us") - xmin) / (xmax - xmin))
        for ev in shown_events
    ]
    placed = _event_rows(event_x, [_label_width(t) for t in event_labels])
    n_rows = max((row for row, _ in placed), default=-1) + 1

    # The top panel grows by one row of text per row of event labels, so that the data
    # keep their height however many events there are.
    band_in = n_rows * _EVENT_ROW_PT / 72.0
    top_h_pt = _TOP_PANEL_PT + n_rows * _EVENT_ROW_PT
    fig = Figure(figsize=(_FIG_W_IN, _FIG_H_IN + band_in), dpi=110, layout="constrained")
    gs = fig.add_gridspec(2, 1, height_ratios=[_TOP_PANEL_PT / 72.0 + band_in, 1.45 * 1.26])
    ax = fig.add_subplot(gs[0])
    ax_t = fig.add_subplot(gs[1], sharex=ax)
    fig.suptitle(title or "Rail vehicles per acquisition", fontsize=13, fontweight="bold")
    summary = (
        f"{n} acquisitions: {int(ok.sum())} complete, {int(partial.sum())} partial, "
        f"{int(obscured.sum())} obscured, {int(uncovered.sum())} without coverage"
    )
    ax.set_title(summary, loc="left", fontsize=9, color="#333333")

    # y range, in axes fractions: unobservable acquisitions sit in a strip *below* zero
    # (they have no count), data fill the middle, event labels a band at the top.
    ymax_data = float(np.nanmax(hi[has])) if has.any() else 0.0
    refs = [v for v in (b.value, b.threshold) if v is not None]
    data_top = max([ymax_data, *refs, 5.0])
    band_bottom = 1.0 - (8.0 + n_rows * _EVENT_ROW_PT) / top_h_pt
    top_frac = min(_DATA_TOP, band_bottom)
    y_range = data_top / (top_frac - _STRIP)
    y_lo = -_STRIP * y_range
    ax.set_ylim(y_lo, y_lo + y_range)
    # No count scale in the strip below zero nor in the event band.
    ax.set_yticks([t for t in ax.get_yticks() if 0.0 <= t <= data_top * 1.05])
    ax.axhspan(y_lo, 0.0, color="#F2F2F2", lw=0, zorder=0)
    ax.axhline(0.0, color="#999999", lw=0.8, zorder=1)
    strip = blended_transform_factory(ax.transData, ax.transAxes)

    if ok.sum() > 1:
        # The connecting line stops across long gaps without any acquisition: it must
        # not suggest values nobody observed.
        x_ok, y_ok = x[ok], y[ok]
        steps_d = np.diff(x).astype("timedelta64[s]").astype(float) / 86400.0
        typical = float(np.median(steps_d[steps_d > 0])) if (steps_d > 0).any() else 0.0
        long_gap = max(3.0 * typical, 30.0)
        gaps_d = np.diff(x_ok).astype("timedelta64[s]").astype(float) / 86400.0
        breaks = np.flatnonzero(gaps_d > long_gap) + 1
        x_path = np.insert(x_ok, breaks, np.datetime64("NaT", "us"))
        y_path = np.insert(y_ok, breaks, np.nan)
        ax.plot(x_path, y_path, color=_COUNT_COLOR, lw=0.8, alpha=0.45, zorder=2, gid="ok-path")
    if ok.any():
        ax.errorbar(
            x[ok],
            y[ok],
            yerr=[y[ok] - lo[ok], hi[ok] - y[ok]],
            fmt="o",
            ms=5,
            color=_COUNT_COLOR,
            ecolor=_COUNT_COLOR,
            elinewidth=1.0,
            capsize=2.5,
            zorder=4,
            label="count with low–high interval",
        )
    if partial.any():
        ax.errorbar(
            x[partial],
            y[partial],
            yerr=[y[partial] - lo[partial], hi[partial] - y[partial]],
            fmt="o",
            ms=5.5,
            mfc="white",
            mew=1.4,
            color=_PARTIAL_COLOR,
            ecolor=_PARTIAL_COLOR,
            elinewidth=1.0,
            capsize=2.5,
            zorder=4,
            label="partial coverage (observed part only)",
        )
    if anomaly.any():
        ax.scatter(
            x[anomaly],
            y[anomaly],
            s=150,
            facecolors="none",
            edgecolors=_ANOMALY_COLOR,
            linewidths=1.8,
            zorder=5,
            label="anomaly (low bound above threshold)",
        )
    if b.value is not None:
        ax.axhline(
            b.value,
            color=_BASELINE_COLOR,
            lw=1.8,
            zorder=3,
            label=f"baseline ({b.model}): {b.value:.3g}",
        )
    if b.threshold is not None and (b.value is None or abs(b.threshold - b.value) > 1e-9):
        ax.axhline(
            b.threshold,
            color=_ANOMALY_COLOR,
            lw=1.1,
            ls=(0, (5, 3)),
            zorder=3,
            label=f"anomaly threshold: {b.threshold:.3g}",
        )
    if obscured.any():
        ax.scatter(
            x[obscured],
            np.full(int(obscured.sum()), 0.045),
            transform=strip,
            marker="x",
            s=30,
            color=_MISSING_COLOR,
            linewidths=1.3,
            zorder=4,
            clip_on=False,
            label="obscured: no count",
        )
    if uncovered.any():
        ax.scatter(
            x[uncovered],
            np.full(int(uncovered.sum()), 0.045),
            transform=strip,
            marker="v",
            s=28,
            facecolors="none",
            edgecolors=_MISSING_COLOR,
            linewidths=1.2,
            zorder=4,
            clip_on=False,
            label="no coverage: no count",
        )
    if n == 0 or not has.any():
        ax.text(
            0.5,
            0.5,
            "no observable acquisition",
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=12,
            color=_MISSING_COLOR,
        )

    ax.set_xlim(xmin, xmax)
    # Events: a dotted line up to a horizontal label in the band above the data.
    event_top = blended_transform_factory(ax.transData, ax.transAxes)
    for ev, text, (row, ha) in zip(shown_events, event_labels, placed, strict=True):
        te = np.datetime64(ev.date.isoformat(), "us")
        y_row = _event_row_y(row, top_h_pt)
        ax.axvline(te, ymax=y_row, color=_EVENT_COLOR, lw=1.0, ls=":", zorder=1)
        ax_t.axvline(te, color=_EVENT_COLOR, lw=1.0, ls=":", zorder=1)
        ax.text(
            te,
            y_row,
            text,
            transform=event_top,
            ha=ha,
            va="center",
            fontsize=_EVENT_FONT_PT,
            color=_EVENT_COLOR,
            bbox={"facecolor": "white", "edgecolor": "#BBBBBB", "lw": 0.6, "pad": 1.5},
            zorder=6,
            clip_on=False,
        )

    ax.set_ylabel("rail vehicles in AOI")
    ax.grid(axis="y", color="#DDDDDD", lw=0.7)
    ax.set_axisbelow(True)
    ax.tick_params(labelbottom=False)
    handles, labels = ax.get_legend_handles_labels()
    order = ["count", "partial", "baseline", "anomaly threshold", "anomaly (", "obscured", "no cov"]
    ranked = sorted(
        zip(handles, labels, strict=True),
        key=lambda hl: next((i for i, k in enumerate(order) if hl[1].startswith(k)), 99),
    )
    handles, labels = [h for h, _ in ranked], [lab for _, lab in ranked]
    if handles:
        ax.legend(
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8.5,
            frameon=False,
        )

    # Bottom panel: counted vehicles by type, stacked per acquisition.
    axis_days = float((xmax - xmin) / np.timedelta64(1, "D"))
    width = _bar_widths_days(x[has], axis_span_days=axis_days) if has.any() else 3.0
    bottom = np.zeros(int(has.sum()))
    # Partial counts see only part of the yard: lighter bars.
    bar_alpha = np.where(partial[has], 0.45, 1.0)
    xd = mdates.date2num(x[has]) if has.any() else np.array([])
    for t in VEHICLE_TYPES:
        if t not in counts.columns or not has.any():
            continue
        v = np.nan_to_num(_as_float(counts[t])[has], nan=0.0)
        if not v.any():
            continue
        ax_t.bar(
            xd,
            v,
            width=width,
            bottom=bottom,
            color=[to_rgba(TYPE_COLORS[t], a) for a in bar_alpha],
            edgecolor="white",
            linewidth=0.3,
            label=TYPE_LABELS[t],
            align="center",
        )
        bottom = bottom + v
    ax_t.set_ylabel("vehicles by type")
    ax_t.set_ylim(0, max(float(bottom.max()) if bottom.size else 0.0, 1.0) * 1.1)
    ax_t.grid(axis="y", color="#DDDDDD", lw=0.7)
    ax_t.set_axisbelow(True)
    h_t, l_t = ax_t.get_legend_handles_labels()
    if h_t:
        ax_t.legend(
            h_t[::-1],
            l_t[::-1],
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8.5,
            frameon=False,
        )
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax_t.xaxis.set_major_locator(locator)
    ax_t.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax_t.set_xlabel("acquisition date (UTC)")
    for a in (ax, ax_t):
        for side in ("top", "right"):
            a.spines[side].set_visible(False)
    return fig


# --------------------------------------------------------------------------- saving


def figure_bytes(fig: Figure, *, svg: bool = False) -> tuple[bytes, bytes | None]:
    """PNG (and SVG) bytes of ``fig``, deterministic for identical figures.

    PNG: no ``Software`` text chunk. SVG: no date or creator, and ids hashed with a fixed
    salt (``svg.hashsalt``), so identical figures give identical bytes.
    """
    return format_bytes(fig, "png"), format_bytes(fig, "svg") if svg else None


def format_bytes(fig: Figure, fmt: str) -> bytes:
    """Deterministic bytes of ``fig`` in one format, ``"png"`` or ``"svg"``.

    See :func:`figure_bytes`.
    """
    import io

    import matplotlib

    buf = io.BytesIO()
    if fmt == "png":
        fig.savefig(buf, format="png", metadata={"Software": None})
    elif fmt == "svg":
        with matplotlib.rc_context({"svg.hashsalt": SVG_HASHSALT}):
            fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    else:
        raise ValueError(f"unknown figure format {fmt!r}")
    return buf.getvalue()


def save_figure(fig: Figure, path_png: str | Path, *, svg: bool = False) -> list[Path]:
    """Write ``fig`` as PNG (and SVG) with deterministic bytes, atomically.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path_png : str or Path
        Target PNG; the SVG goes next to it with the suffix ``.svg``.
    svg : bool
        Also write the SVG.

    Returns
    -------
    list of Path
        The files written.

    Notes
    -----
    See :func:`figure_bytes`.
    """
    from railwatch.outputs import write_bytes

    png, svg_bytes = figure_bytes(fig, svg=svg)
    target = Path(path_png)
    written = [write_bytes(target, png)]
    if svg_bytes is not None:
        written.append(write_bytes(target.with_suffix(".svg"), svg_bytes))
    logger.debug("wrote %s", ", ".join(map(str, written)))
    return written

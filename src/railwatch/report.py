"""The self-contained HTML report, rebuilt from a results directory alone.

:func:`build_report` reads ``counts.csv``, ``weekly.csv``, ``scenes.csv``, ``run.json``
and ``quicklooks/*.png``, redraws ``timeseries.png`` / ``timeseries.svg`` and writes
``report.html``: one file with inline CSS and images as data URIs, no script and no
external resource. Identical inputs and railwatch version give identical bytes: nothing
depends on the clock, the machine or the directory's location.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd

from railwatch._version import __version__
from railwatch.baseline import Baseline, baseline_value
from railwatch.errors import InputFileError
from railwatch.outputs import write_bytes, write_text
from railwatch.site import BaselineConfig, Event
from railwatch.timeseries import read_counts, read_weekly
from railwatch.types import STATUSES, VEHICLE_TYPES

__all__ = [
    "ResultsDirError",
    "ReportInputs",
    "REQUIRED_FILES",
    "read_report_inputs",
    "baseline_config_from_dict",
    "render_html",
    "build_report",
]

logger = logging.getLogger(__name__)

REQUIRED_FILES: tuple[str, ...] = ("counts.csv", "weekly.csv", "run.json")
"""Files a results directory must hold for ``railwatch report``."""


class ResultsDirError(InputFileError):
    """A results directory is missing, incomplete or holds unreadable files."""


@dataclass(frozen=True, slots=True)
class ReportInputs:
    """Everything the report needs, read from a results directory."""

    counts: pd.DataFrame
    weekly: pd.DataFrame
    scenes: pd.DataFrame | None
    run: dict[str, Any]
    site_name: str
    baseline_cfg: BaselineConfig
    events: tuple[Event, ...]
    quicklooks: tuple[tuple[str, bytes], ...]
    """(file name, PNG bytes) of ``quicklooks/*.png``, sorted by name."""


# --------------------------------------------------------------------------- reading


def baseline_config_from_dict(d: Mapping[str, Any] | None) -> BaselineConfig:
    """Rebuild a :class:`BaselineConfig` from its ``run.json`` form (``Site.to_dict``).

    Parameters
    ----------
    d : mapping or None
        ``run["site"]["baseline"]``; None gives the default (no baseline).

    Returns
    -------
    BaselineConfig

    Examples
    --------
    >>> cfg = baseline_config_from_dict({"model": "demand", "towns": [["A", 1000]]})
    >>> cfg.towns
    (('A', 1000.0),)
    """
    if not d:
        return BaselineConfig()
    kw: dict[str, Any] = {}
    for f in fields(BaselineConfig):
        v = d.get(f.name)
        if v is None:
            continue
        if f.name in ("reference_start", "reference_end"):
            v = dt.date.fromisoformat(str(v)[:10])
        elif f.name == "towns":
            v = tuple((str(name), float(pop)) for name, pop in v)
        elif f.name in ("model", "statistic"):
            v = str(v)
        else:
            v = float(v)
        kw[f.name] = v
    return BaselineConfig(**kw)


def _events_from_list(items: Iterable[Mapping[str, Any]] | None) -> tuple[Event, ...]:
    out = [
        Event(dt.date.fromisoformat(str(e["date"])[:10]), str(e.get("label", "")))
        for e in items or ()
        if e.get("date")
    ]
    return tuple(sorted(out, key=lambda e: (e.date, e.label)))


def read_report_inputs(out_dir: str | Path) -> ReportInputs:
    """Read a results directory written by ``railwatch count``.

    Parameters
    ----------
    out_dir : str or Path

    Returns
    -------
    ReportInputs

    Raises
    ------
    ResultsDirError
        When the directory or one of :data:`REQUIRED_FILES` is missing or unreadable.
    """
    d = Path(out_dir)
    if not d.is_dir():
        raise ResultsDirError(d, "results directory not found")
    missing = [n for n in REQUIRED_FILES if not (d / n).is_file()]
    if missing:
        raise ResultsDirError(
            d,
            f"not a complete railwatch results directory ({', '.join(missing)} missing; "
            "run `railwatch count` first)",
        )
    try:
        run = json.loads((d / "run.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsDirError(d / "run.json", f"not readable JSON ({exc})") from None
    if not isinstance(run, dict):
        raise ResultsDirError(d / "run.json", "expected a JSON object")
    site = run.get("site") if isinstance(run.get("site"), dict) else {}
    try:
        cfg = baseline_config_from_dict(site.get("baseline"))
        events = _events_from_list(site.get("events"))
    except (TypeError, ValueError, KeyError) as exc:
        raise ResultsDirError(d / "run.json", f"invalid site baseline or events ({exc})") from None
    try:
        counts = read_counts(d / "counts.csv")
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise ResultsDirError(d / "counts.csv", _first_line(exc)) from None
    try:
        weekly = read_weekly(d / "weekly.csv")
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise ResultsDirError(d / "weekly.csv", _first_line(exc)) from None
    scenes = None
    if (d / "scenes.csv").is_file():
        try:
            scenes = pd.read_csv(
                d / "scenes.csv", dtype=str, keep_default_na=False, encoding="utf-8"
            )
        except (ValueError, OSError, pd.errors.ParserError) as exc:
            raise ResultsDirError(d / "scenes.csv", _first_line(exc)) from None
    qdir = d / "quicklooks"
    looks = (
        tuple((p.name, p.read_bytes()) for p in sorted(qdir.glob("*.png")) if p.is_file())
        if qdir.is_dir()
        else ()
    )
    name = str(site.get("name") or d.resolve().name)
    return ReportInputs(counts, weekly, scenes, run, name, cfg, events, looks)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --------------------------------------------------------------------------- formatting


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _int(v: Any) -> str:
    return "—" if v is None or _isna(v) else str(int(v))


def _num(v: Any, digits: int = 1) -> str:
    if v is None or _isna(v):
        return "—"
    x = float(v)
    if not math.isfinite(x):
        return "—"
    return f"{x:,.{digits}f}"


def _pct(v: Any) -> str:
    return "—" if v is None or _isna(v) else f"{float(v):.0%}"


def _day(v: Any) -> str:
    return "—" if v is None or _isna(v) else pd.Timestamp(v).strftime("%Y-%m-%d")


def _time(v: Any) -> str:
    return "—" if v is None or _isna(v) else pd.Timestamp(v).strftime("%Y-%m-%d %H:%M UTC")


def _interval(row: Mapping[str, Any]) -> str:
    n = row["railcars"]
    if _isna(n):
        return "no count"
    lo, hi = row["railcars_low"], row["railcars_high"]
    if _isna(lo) or _isna(hi):
        return str(int(n))
    return f"{int(n)} [{int(lo)}–{int(hi)}]"


def _badge(status: str) -> str:
    label = {"no_coverage": "no coverage"}.get(status, status)
    cls = status if status in STATUSES else "unknown"
    return f'<span class="badge {cls}">{_e(label)}</span>'


def _anomaly(v: Any) -> str:
    if v is None or _isna(v):
        return '<span class="muted">—</span>'
    return '<span class="badge anomaly">anomaly</span>' if bool(v) else "no"


def _scene_list(v: Any) -> str:
    """``a.tif;b.tif`` as ``a.tif; b.tif`` so that long lists can wrap."""
    return "" if v is None or _isna(v) else "; ".join(str(v).split(";"))


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _thumbnail_uri(png: bytes, jpeg: bytes | None = None) -> str:
    """Data URI of a quicklook's reduced JPEG copy (made here unless given)."""
    from railwatch.quicklook import thumbnail_jpeg

    data = jpeg if jpeg is not None else thumbnail_jpeg(png)
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def quicklook_id(ts: Any) -> str:
    """Quicklook file stem of an acquisition time, e.g. ``20231005T021500``."""
    return pd.Timestamp(ts).tz_convert("UTC").strftime("%Y%m%dT%H%M%S")


# --------------------------------------------------------------------------- sections


_CSS = """
:root { --ink:#1d2733; --muted:#5f6b78; --line:#d9dee4; --bg:#f6f7f9; --accent:#1f3a5f; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",
  sans-serif; color:var(--ink); background:#fff; }
main { max-width:1180px; margin:0 auto; padding:24px 28px 48px; }
h1 { font-size:26px; margin:0 0 4px; }
h2 { font-size:19px; margin:34px 0 10px; padding-bottom:4px; border-bottom:2px solid var(--line); }
h3 { font-size:15px; margin:18px 0 6px; }
p { margin:6px 0 10px; }
.sub { color:var(--muted); margin:0 0 18px; }
.muted { color:var(--muted); }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(170px,1fr)); gap:12px; }
.card { background:var(--bg); border:1px solid var(--line); border-radius:8px; padding:10px 14px; }
.card .k { font-size:12px; text-transform:uppercase; letter-spacing:.04em; color:var(--muted); }
.card .v { font-size:24px; font-weight:600; }
.card .d { font-size:12.5px; color:var(--muted); }
figure { margin:14px 0; }
figure img { max-width:100%; height:auto; display:block; border:1px solid var(--line);
  border-radius:6px; }
figcaption { font-size:13px; color:var(--muted); margin-top:4px; }
.formula { background:var(--bg); border-left:4px solid #2e7d32; padding:8px 12px;
  font-family:ui-monospace,"DejaVu Sans Mono",monospace; font-size:13px; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { padding:4px 8px; border-bottom:1px solid var(--line); text-align:right;
  white-space:nowrap; }
th { background:var(--bg); position:sticky; top:0; }
td.l, th.l { text-align:left; }
tr.gap td { color:#a0a8b2; }
tr.anom td { background:#fdecea; }
.scroll { max-height:460px; overflow:auto; border:1px solid var(--line); border-radius:6px; }
.badge { display:inline-block; padding:0 7px; border-radius:9px; font-size:12px;
  font-weight:600; }
.badge.ok { background:#e3f1e4; color:#1b5e20; }
.badge.partial { background:#fff0d9; color:#8a4b00; }
.badge.obscured, .badge.no_coverage, .badge.unknown { background:#eceff1; color:#455a64; }
.badge.anomaly { background:#fdecea; color:#b71c1c; }
.gallery { display:grid; grid-template-columns:repeat(auto-fill,minmax(520px,1fr)); gap:18px; }
.gallery figure { margin:0; }
code, .mono { font-family:ui-monospace,"DejaVu Sans Mono",monospace; font-size:12.5px; }
table.compact th, table.compact td { padding:4px 6px; }
table.compact th { white-space:normal; vertical-align:bottom; }
.files { font-size:11px; color:var(--muted); white-space:normal; overflow-wrap:anywhere;
  max-width:21em; }
.card .v small { font-size:15px; font-weight:500; color:var(--muted); white-space:nowrap; }
ul { margin:4px 0 10px 20px; padding:0; }
footer { margin-top:40px; color:var(--muted); font-size:12.5px; }
"""


def _summary(res: ReportInputs, b: Baseline) -> str:
    c = res.counts
    n = len(c)
    by_status = {s: int((c["status"] == s).sum()) for s in STATUSES}
    has = c["railcars"].notna()
    cards: list[tuple[str, str, str]] = []
    period = f"{_day(c['date'].min())} – {_day(c['date'].max())}" if n else "—"
    cards.append(
        (
            "acquisitions",
            str(n),
            f"{by_status['ok']} complete, {by_status['partial']} partial, "
            f"{by_status['obscured']} obscured, {by_status['no_coverage']} not covered",
        )
    )
    cards.append(("period", f"{len(res.weekly)} weeks", period))
    if has.any():
        last = c[has].iloc[-1]
        cards.append(("latest count", _interval(last), f"{_day(last['date'])}, {last['status']}"))
        imax = c.loc[has, "railcars"].astype("Int64").idxmax()
        top = c.loc[imax]
        cards.append(("highest count", _interval(top), f"{_day(top['date'])}, {top['status']}"))
    else:
        cards.append(("latest count", "—", "no observable acquisition"))
    if b.value is None:
        cards.append(("baseline", "—", "none configured" if b.model == "none" else b.note))
    else:
        cards.append(("baseline", _num(b.value, 1), f"{b.model} model, vehicles"))
        flags = c["anomaly"].astype("boolean")
        n_anom = int(flags.fillna(False).sum())
        first = (
            _day(c.loc[flags.fillna(False).to_numpy(dtype=bool), "date"].min()) if n_anom else ""
        )
        cards.append(
            (
                "anomalies",
                str(n_anom),
                f"first on {first}" if n_anom else f"low bound never above {_num(b.threshold, 1)}",
            )
        )
    body = "".join(
        f'<div class="card"><div class="k">{_e(k)}</div><div class="v">{_card_value(v)}</div>'
        f'<div class="d">{_e(dd)}</div></div>'
        for k, v, dd in cards
    )
    return f'<section class="cards">{body}</section>'


def _card_value(v: str) -> str:
    """A card's value; an interval ``12 [9–15]`` gets its bracket in smaller type."""
    head, sep, tail = v.partition(" [")
    if not sep:
        return _e(v)
    return f"{_e(head)} <small>[{_e(tail)}</small>"


def _baseline_section(b: Baseline, cfg: BaselineConfig) -> str:
    rule = ""
    if b.model == "none":
        text = (
            "No baseline is configured (model <code>none</code>): counts are reported as "
            "measured, without a comparison or anomaly flags. Configure <code>baseline</code> "
            "in the site file to compare them with local demand, a reference period or a "
            "constant (see docs/baseline.md)."
        )
        return f"<h2>Baseline</h2><p>{text}</p>"
    if b.model == "demand":
        towns = ", ".join(f"{_e(n)} ({p:,.0f})" for n, p in cfg.towns)
        text = (
            f"The baseline is the number of wagons the freight needs of the towns this "
            f"yard serves would keep standing in it: {towns} inhabitants, "
            f"{cfg.freight_t_per_capita_year:g} t of rail freight per inhabitant and year, "
            f"{cfg.wagon_payload_t:g} t per loaded wagon and {cfg.dwell_days:g} days in the "
            f"yard per wagon. That is "
            f"{b.inputs.get('wagons_per_year', float('nan')):,.0f} wagonloads a year, of which "
            f"on average <strong>{b.value:.1f} vehicles</strong> stand in the yard. "
            "Population and freight intensity are rough public estimates; read the ratio "
            "as an order of magnitude."
        )
    elif b.model == "constant":
        text = (
            f"The baseline is a constant set by the analyst: <strong>{b.value:g} vehicles</strong>."
        )
    else:
        if b.value is None:
            text = f"Reference baseline: {_e(b.note)}. No excess or anomaly can be computed."
            return f"<h2>Baseline</h2><p>{text}</p>"
        stat = {"mean": "the mean", "p90": "the 90th percentile", "robust_z": "the median"}[
            cfg.statistic
        ]
        text = (
            f"The baseline is {stat} of the {b.inputs.get('n_reference')} complete (ok) counts "
            f"between {_e(b.inputs.get('reference_start') or 'the first acquisition')} and "
            f"{_e(b.inputs.get('reference_end') or 'the last acquisition')}: "
            f"<strong>{b.value:.1f} vehicles</strong>."
        )
    if b.model == "reference" and cfg.statistic == "robust_z":
        rule = (
            f"An acquisition is an <em>anomaly</em> when the low bound of its count interval "
            f"exceeds median + z × max(1.4826 × MAD, 1) = {b.value:.1f} + "
            f"{cfg.z_threshold:g} × {b.inputs.get('scale', float('nan')):.2f} = "
            f"<strong>{b.threshold:.1f}</strong>."
        )
    else:
        rule = (
            f"An acquisition is an <em>anomaly</em> when the low bound of its count interval "
            f"exceeds {cfg.factor:g} × baseline = <strong>{b.threshold:.1f}</strong> "
            "vehicles, so an uncertain count alone cannot raise a flag. "
            "<code>excess</code> = count − baseline, <code>ratio</code> = count ÷ baseline."
        )
    return f'<h2>Baseline</h2><p>{text} {rule}</p><p class="formula">{_e(b.formula)}</p>' + (
        f'<p class="muted">{_e(b.note)}</p>' if b.note else ""
    )


def _weekly_section(weekly: pd.DataFrame) -> str:
    rows = []
    records = weekly.to_dict("records")
    i = 0
    while i < len(records):
        r = records[i]
        week = pd.Timestamp(r["week_start"])
        iso = week.isocalendar()
        if int(r["n_scenes"]) == 0:
            # A run of weeks without imagery is one row: a decade of weekly rows would
            # otherwise be mostly grey.
            j = i
            while j + 1 < len(records) and int(records[j + 1]["n_scenes"]) == 0:
                j += 1
            last = pd.Timestamp(records[j]["week_start"])
            liso = last.isocalendar()
            span = (
                f'{_day(week)} – {_day(last)}</td><td class="l">{iso[0]}-W{iso[1]:02d} – '
                f"{liso[0]}-W{liso[1]:02d}"
                if j > i
                else f'{_day(week)}</td><td class="l">{iso[0]}-W{iso[1]:02d}'
            )
            what = f"no acquisition for {j - i + 1} weeks" if j > i else "no acquisition"
            rows.append(
                f'<tr class="gap"><td class="l">{span}</td><td>0</td>'
                f'<td class="l" colspan="5">{what}</td></tr>'
            )
            i = j + 1
            continue
        anom = not _isna(r["anomaly"]) and bool(r["anomaly"])
        cls = ' class="anom"' if anom else ""
        rows.append(
            f'<tr{cls}><td class="l">{_day(week)}</td><td class="l">{iso[0]}-W{iso[1]:02d}'
            f"</td><td>{int(r['n_scenes'])}</td><td>{_num(r['railcars_mean'], 1)}</td>"
            f"<td>{_int(r['railcars_max'])}</td><td>{_num(r['baseline'], 1)}</td>"
            f"<td>{_num(r['excess'], 1)}</td><td>{_anomaly(r['anomaly'])}</td></tr>"
        )
        i += 1
    head = (
        '<tr><th class="l">week start</th><th class="l">ISO week</th><th>acquisitions</th>'
        "<th>mean count</th><th>max count</th><th>baseline</th><th>excess</th><th>anomaly</th>"
        "</tr>"
    )
    return (
        "<h2>Weekly series</h2>"
        "<p>Every ISO week from the first to the last acquisition (as in "
        "<code>weekly.csv</code>); a run of weeks without an acquisition is shown as one "
        "grey row and has no value: a missing count is not zero. Mean and maximum use the "
        "week's complete acquisitions, or its partial ones when it has no complete one.</p>"
        f'<div class="scroll"><table><thead>{head}</thead><tbody>{"".join(rows)}</tbody>'
        "</table></div>"
    )


def _acquisitions_section(res: ReportInputs, thumbnails: Mapping[str, bytes]) -> str:
    c = res.counts
    types = [t for t in VEHICLE_TYPES if t in c.columns]
    head = (
        '<tr><th class="l">acquired · files</th><th class="l">status</th>'
        "<th>railcars<br>[low–high]</th><th>anomaly</th><th>coverage</th><th>cloud</th>"
        + "".join(f"<th>{_e(t)}</th>" for t in types)
        + "<th>GSD m</th><th>shift m</th></tr>"
    )
    rows = []
    for r in c.to_dict("records"):
        anom = not _isna(r["anomaly"]) and bool(r["anomaly"])
        cls = ' class="anom"' if anom else ""
        rows.append(
            f'<tr{cls}><td class="l">{_time(r["datetime"])}'
            f'<div class="files mono">{_e(_scene_list(r["scenes"]))}</div></td>'
            f'<td class="l">{_badge(str(r["status"]))}</td><td>{_e(_interval(r))}</td>'
            f"<td>{_anomaly(r['anomaly'])}</td>"
            f"<td>{_pct(r['coverage'])}</td><td>{_pct(r['cloud'])}</td>"
            + "".join(f"<td>{_int(r[t])}</td>" for t in types)
            + f"<td>{_num(r['gsd_m'], 2)}</td><td>{_num(r['shift_m'], 1)}</td></tr>"
        )
    table = (
        f'<div class="scroll"><table class="compact"><thead>{head}</thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
    looks = dict(res.quicklooks)
    used: set[str] = set()
    figs = []
    for r in c.to_dict("records"):
        name = f"{quicklook_id(r['datetime'])}.png"
        if name not in looks:
            continue
        used.add(name)
        cap = (
            f"{_time(r['datetime'])} · {_badge(str(r['status']))} · railcars "
            f"{_e(_interval(r))} · coverage {_pct(r['coverage'])} · cloud {_pct(r['cloud'])}"
        )
        alt = f"quicklook {_time(r['datetime'])}, {r['status']}, railcars {_interval(r)}"
        figs.append(
            f'<figure><a href="quicklooks/{_e(name)}">'
            f'<img src="{_thumbnail_uri(looks[name], thumbnails.get(name))}" alt="{_e(alt)}"></a>'
            f"<figcaption>{cap}</figcaption></figure>"
        )
    for name, png in res.quicklooks:
        if name in used:
            continue
        figs.append(
            f'<figure><a href="quicklooks/{_e(name)}">'
            f'<img src="{_thumbnail_uri(png, thumbnails.get(name))}" '
            f'alt="quicklook {_e(name)}"></a>'
            f"<figcaption>{_e(name)} (no matching row in counts.csv)</figcaption></figure>"
        )
    gallery = (
        '<h3>Quicklooks</h3><p class="muted">Reduced copies; click one to open the '
        f'full-size PNG in quicklooks/.</p><div class="gallery">{"".join(figs)}</div>'
        if figs
        else '<p class="muted">No quicklooks in this directory.</p>'
    )
    return (
        "<h2>Acquisitions</h2><p>Every acquisition with its status, count interval and "
        "vehicles by type. Obscured and uncovered acquisitions carry no count.</p>"
        + table
        + gallery
    )


def _quality_section(res: ReportInputs) -> str:
    c = res.counts
    items = []
    not_observed_html = ""
    n = len(c)
    if n:
        cov = pd.to_numeric(c["coverage"]).astype("Float64")
        cloud = pd.to_numeric(c["cloud"]).astype("Float64")
        items.append(
            f"Observed share of the track length: median {_pct(cov.median())}, "
            f"lowest {_pct(cov.min())}; {int((cov < 1.0).fillna(False).sum())} of {n} "
            "acquisitions do not see the whole AOI."
        )
        items.append(
            f"Cloud, haze or snow over the observed tracks: median {_pct(cloud.median())}, "
            f"highest {_pct(cloud.max())}."
        )
        shift = pd.to_numeric(c["shift_m"]).astype("Float64")
        if shift.notna().any():
            items.append(
                f"Georeferencing corrected by up to {_num(shift.max(), 1)} m "
                f"(median {_num(shift.median(), 1)} m)."
            )
        bad = c[c["status"].isin(["partial", "obscured", "no_coverage"])]
        if len(bad):
            items.append(
                f"{len(bad)} acquisition(s) not fully observed (listed below); partial counts "
                "cover the observed part only."
            )
            bad_rows = "".join(
                f'<tr><td class="l">{_day(r["date"])}</td>'
                f'<td class="l">{_badge(str(r["status"]))}</td>'
                f"<td>{_pct(r['coverage'])}</td><td>{_pct(r['cloud'])}</td></tr>"
                for r in bad.to_dict("records")
            )
            not_observed_html = (
                '<h3>Acquisitions not fully observed</h3><div class="scroll"><table><thead>'
                '<tr><th class="l">date</th><th class="l">status</th><th>coverage</th>'
                f"<th>cloud</th></tr></thead><tbody>{bad_rows}</tbody></table></div>"
            )
    rejected_html = ""
    if res.scenes is None:
        items.append("scenes.csv is missing: the list of input files is not available.")
    else:
        s = res.scenes
        used = int((s.get("status", pd.Series(dtype=str)) == "used").sum())
        rej = s[s.get("status", pd.Series("", index=s.index)) == "rejected"]
        items.append(f"{used} input file(s) used, {len(rej)} rejected.")
        if len(rej):
            rows = "".join(
                f'<tr><td class="l mono">{_e(r.get("path", ""))}</td>'
                f'<td class="l">{_e(r.get("reason", ""))}</td>'
                f'<td class="l">{_e(r.get("datetime", ""))}</td></tr>'
                for r in rej.sort_values("path", kind="stable").to_dict("records")
            )
            rejected_html = (
                '<h3>Rejected files</h3><div class="scroll"><table><thead><tr>'
                '<th class="l">file</th><th class="l">reason</th><th class="l">datetime</th>'
                f"</tr></thead><tbody>{rows}</tbody></table></div>"
            )
    lis = "".join(f"<li>{i}</li>" for i in items)
    return f"<h2>Data quality</h2><ul>{lis}</ul>{not_observed_html}{rejected_html}"


def _provenance_section(res: ReportInputs) -> str:
    run = res.run
    site = run.get("site") if isinstance(run.get("site"), dict) else {}
    grid = run.get("grid") if isinstance(run.get("grid"), dict) else {}
    params = run.get("parameters") if isinstance(run.get("parameters"), dict) else {}
    facts = [
        ("railwatch version (count)", run.get("version", "—")),
        ("results created", run.get("created", "—")),
        ("site file", site.get("path") or "— (AOI given on the command line)"),
        ("grid CRS", grid.get("crs", "—")),
    ]
    if grid.get("width") is not None:
        res_m = (grid.get("transform") or [None])[0]
        facts.append(
            (
                "grid size",
                f"{grid.get('width')} × {grid.get('height')} px"
                + (f" at {float(res_m):g} m" if res_m is not None else ""),
            )
        )
    for k in sorted(params):
        facts.append((k.replace("_", " "), json.dumps(params[k], sort_keys=True)))
    dl = "".join(f'<tr><td class="l">{_e(k)}</td><td class="l">{_e(v)}</td></tr>' for k, v in facts)
    inputs = run.get("inputs") if isinstance(run.get("inputs"), list) else []
    rows = "".join(
        f'<tr><td class="l mono">{_e(i.get("path", ""))}</td>'
        f'<td>{_e(i.get("size", "—"))}</td><td class="l mono">{_e(i.get("sha256", "—"))}</td></tr>'
        for i in sorted(
            (i for i in inputs if isinstance(i, dict)), key=lambda i: str(i.get("path", ""))
        )
    )
    inputs_html = (
        '<h3>Inputs</h3><div class="scroll"><table><thead><tr><th class="l">file</th>'
        f'<th>bytes</th><th class="l">SHA-256</th></tr></thead><tbody>{rows}</tbody>'
        "</table></div>"
        if rows
        else ""
    )
    return (
        "<h2>Provenance</h2>"
        f'<table class="facts"><tbody>{dl}</tbody></table>{inputs_html}'
        '<p class="muted">The full resolved configuration is in run.json next to this '
        "report.</p>"
    )


def render_html(
    res: ReportInputs,
    figure_png: bytes,
    *,
    baseline: Baseline | None = None,
    thumbnails: Mapping[str, bytes] | None = None,
) -> str:
    """The report as one HTML document (pure: same arguments, same text).

    Parameters
    ----------
    res : ReportInputs
        From :func:`read_report_inputs`.
    figure_png : bytes
        The time-series figure, embedded as a data URI.
    baseline : Baseline, optional
        Resolved baseline (default: from ``res.baseline_cfg`` and ``res.counts``).
    thumbnails : mapping, optional
        Reduced JPEG copies of quicklooks by file name, when already made
        (:func:`railwatch.quicklook.thumbnail_jpeg`); the others are made here.

    Returns
    -------
    str
    """
    b = baseline if baseline is not None else baseline_value(res.baseline_cfg, res.counts)
    title = f"{res.site_name}: rail vehicles per acquisition"
    version = res.run.get("version", "unknown")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="railwatch {_e(__version__)}">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">railwatch report · counts by railwatch {_e(version)} · '
        "counts are estimates with an interval; a missing count is not zero.</p>",
        _summary(res, b),
        "<h2>Time series</h2>",
        f'<figure><img src="{_data_uri(figure_png)}" alt="{_e(title)}: counts over time '
        'with their interval, baseline and events">'
        "<figcaption>Top: count per acquisition with its low–high interval (filled: "
        "complete; hollow orange: only part of the yard seen). The thin line joins complete "
        "counts and stops across long stretches without acquisitions. Grey marks below the "
        "zero line are acquisitions without a count (obscured or not covered), never a zero. "
        "Red rings are anomalies; the green line is the baseline, the dashed red line the "
        "anomaly threshold; dotted lines are events from the site file, labelled at the top. "
        "Bottom: counted vehicles by type (pale bars: partial counts).</figcaption></figure>",
        _baseline_section(b, res.baseline_cfg),
        _weekly_section(res.weekly),
        _acquisitions_section(res, thumbnails or {}),
        _quality_section(res),
        _provenance_section(res),
        f"<footer>Generated by railwatch {_e(__version__)} from counts.csv, weekly.csv, "
        "scenes.csv, run.json and quicklooks/ in this directory.</footer>",
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"


def render_figures(
    counts: pd.DataFrame,
    site: Mapping[str, Any],
    site_name: str,
    formats: Sequence[str] = ("png", "svg"),
) -> tuple[bytes, ...]:
    """Bytes of the time-series figure in each of ``formats`` (pure).

    Parameters
    ----------
    counts : pandas.DataFrame
        ``counts.csv`` as :func:`railwatch.timeseries.read_counts` returns it.
    site : mapping
        The ``site`` object of ``run.json`` (baseline and events).
    site_name : str
        For the title.
    formats : sequence of {"png", "svg"}
        One entry per result, in this order. Each format is drawn from its own figure,
        so drawing them in separate processes gives the same bytes.
    """
    from railwatch.plot import format_bytes, timeseries_figure

    cfg = baseline_config_from_dict(site.get("baseline"))
    out = []
    for fmt in formats:
        # A fresh figure per format: the layout settles at the first draw, so an SVG
        # saved after a PNG of the same figure differs by fractions of a point.
        fig = timeseries_figure(
            counts,
            baseline_cfg=cfg,
            events=_events_from_list(site.get("events")),
            title=f"{site_name}: rail vehicles per acquisition",
            baseline=baseline_value(cfg, counts),
        )
        out.append(format_bytes(fig, fmt))
    return tuple(out)


def build_report(
    out_dir: str | Path,
    *,
    figures: tuple[bytes, bytes] | None = None,
    thumbnails: Mapping[str, bytes] | None = None,
) -> Path:
    """Redraw ``timeseries.png`` / ``timeseries.svg`` and write ``report.html``.

    Parameters
    ----------
    out_dir : str or Path
        A results directory written by ``railwatch count``.
    figures : (bytes, bytes), optional
        PNG and SVG of the figure from :func:`render_figures`, when already drawn (the
        pipeline draws it in parallel with other work); otherwise drawn here.
    thumbnails : mapping, optional
        Reduced quicklook copies by file name, when already made.

    Returns
    -------
    Path
        The ``report.html`` written.

    Raises
    ------
    ResultsDirError
        When the directory is missing or incomplete.
    OutputError
        When a file cannot be written (previous files stay intact).
    """
    d = Path(out_dir)
    res = read_report_inputs(d)
    if figures is None:
        figures = render_figures(res.counts, res.run.get("site") or {}, res.site_name)
    figure_png, figure_svg = figures
    write_bytes(d / "timeseries.png", figure_png)
    write_bytes(d / "timeseries.svg", figure_svg)
    b = baseline_value(res.baseline_cfg, res.counts)
    html_text = render_html(res, figure_png, baseline=b, thumbnails=thumbnails)
    target = write_text(d / "report.html", html_text)
    logger.info("wrote %s", target)
    return target

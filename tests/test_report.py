"""report.html from a hand-built results directory; a headless-Chromium rendering test."""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import io
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from affine import Affine
from shapely.geometry import LineString, box

from railwatch import outputs
from railwatch.report import ResultsDirError, build_report, read_report_inputs
from railwatch.site import BaselineConfig, Event, Site
from railwatch.timeseries import counts_table, weekly_table

UTC = dt.UTC
TYPES = ("tank", "open", "flat", "covered", "locomotive", "unknown")


def _record(day, n, status="ok", *, hour=2, coverage=None, cloud=0.0):
    t = dt.datetime(*day, hour, 15, 0, tzinfo=UTC)
    observable = status in ("ok", "partial")
    rec = {
        "date": t.date(),
        "datetime": t,
        "railcars": n if observable else None,
        "railcars_low": max(n - 2, 0) if observable else None,
        "railcars_high": n + 3 if observable else None,
        "status": status,
        "coverage": coverage if coverage is not None else (1.0 if status == "ok" else 0.0),
        "cloud": cloud,
        "gsd_m": 0.5,
        "shift_m": 1.25,
        "n_tiles": 1,
        "scenes": f"{t:%Y%m%d}_skysat.tif",
    }
    split = {"tank": n - n // 2, "open": n // 2} if observable else {}
    for k in TYPES:
        rec[k] = split.get(k, 0) if observable else None
    return rec


RECORDS = [
    _record((2023, 9, 4), 12),
    _record((2023, 9, 6), 14),
    _record((2023, 9, 20), None, "obscured", cloud=0.9, coverage=1.0),
    _record((2023, 10, 5), 73),
    _record((2023, 10, 6), 30, "partial", coverage=0.45),
    _record((2023, 10, 25), None, "no_coverage"),
    _record((2023, 11, 8), 64),
]

SITE_AOI = box(130.60, 42.42, 130.61, 42.43)


def make_results_dir(
    out: Path,
    *,
    baseline: BaselineConfig | None = None,
    records=RECORDS,
    quicklook: bool = True,
) -> Path:
    """Write a small results directory as `railwatch count` would, without the pipeline."""
    cfg = baseline or BaselineConfig(model="constant", value=20.0, factor=1.5)
    site = Site(
        name="Tumangang test yard",
        aoi=SITE_AOI,
        baseline=cfg,
        events=(
            Event(dt.date(2023, 9, 13), "summit"),
            Event(dt.date(2020, 1, 31), "border closure"),  # outside the data: not drawn
        ),
        path="configs/test.yaml",
    )
    counts = counts_table(records, cfg)
    weekly = weekly_table(counts, cfg)
    out.mkdir(parents=True, exist_ok=True)
    outputs.write_csv(out / "counts.csv", counts)
    outputs.write_csv(out / "weekly.csv", weekly)
    scenes = pd.DataFrame(
        [
            {
                "path": f"imagery/{r['scenes']}",
                "status": "used",
                "reason": "",
                "datetime": r["datetime"].strftime("%Y-%m-%dT%H:%M:%SZ"),
                "crs": "EPSG:32652",
                "gsd_m": 0.5,
            }
            for r in records
        ]
        + [
            {
                "path": "imagery/broken.tif",
                "status": "rejected",
                "reason": "not a raster <corrupt>",
                "datetime": "",
                "crs": "",
                "gsd_m": "",
            }
        ]
    )
    outputs.write_csv(out / "scenes.csv", scenes)
    run = {
        "version": "0.1.0",
        "site": site.to_dict(),
        "grid": {
            "crs": "EPSG:32652",
            "transform": [0.5, 0, 700000, 0, -0.5, 4700000],
            "width": 60,
            "height": 40,
        },
        "inputs": [
            {"path": f"imagery/{r['scenes']}", "size": 1234, "sha256": "ab" * 32} for r in records
        ],
        "parameters": {"resolution_m": 0.5, "workers": 1},
        "created": "2024-06-20T10:00:00Z",
    }
    outputs.write_json(out / "run.json", run)
    if quicklook:
        from railwatch.quicklook import quicklook

        rng = np.random.default_rng(3)
        rgb = np.clip(0.4 + 0.05 * rng.standard_normal((40, 60, 3)), 0, 1)
        tr = Affine(0.5, 0, 700000.0, 0, -0.5, 4700000.0)
        aoi = box(700002, 4699982, 700028, 4699998)
        q = quicklook(
            rgb,
            tr,
            aoi=aoi,
            tracks=[("T1", LineString([(700002, 4699990), (700028, 4699990)]))],
            vehicles=[(box(700004, 4699988.4, 700018, 4699991.6), "tank", 0.9)],
            unobserved=box(700024, 4699982, 700028, 4699998),
            title="2023-10-05 ok",
        )
        t = records[3]["datetime"]
        outputs.write_bytes(out / "quicklooks" / f"{t:%Y%m%dT%H%M%S}.png", q.png())
    return out


@pytest.fixture
def results_dir(tmp_path):
    return make_results_dir(tmp_path / "run")


def test_build_report_writes_self_contained_html(results_dir):
    path = build_report(results_dir)
    assert path == results_dir / "report.html"
    for name in ("timeseries.png", "timeseries.svg"):
        assert (results_dir / name).stat().st_size > 1000
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "<title>Tumangang test yard: rail vehicles per acquisition</title>" in text
    # Every resource is inline: no external src, no script; the only links are to the
    # full-size quicklooks next to the report.
    assert not re.search(r'src="(?!data:)', text)
    assert re.findall(r'href="([^"]*)"', text) == ["quicklooks/20231005T021500.png"]
    assert "<script" not in text.lower()
    imgs = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(imgs) == 1  # the figure; the quicklook is a reduced JPEG
    assert base64.b64decode(imgs[0]) == (results_dir / "timeseries.png").read_bytes()
    thumbs = re.findall(r'<img src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(thumbs) == 1
    from PIL import Image

    look = Image.open(results_dir / "quicklooks" / "20231005T021500.png")
    thumb = Image.open(io.BytesIO(base64.b64decode(thumbs[0])))
    assert thumb.format == "JPEG" and max(thumb.size) == min(max(look.size), 900)
    # Summary, baseline with its numbers (constant 20, factor 1.5 -> threshold 30).
    assert "constant set by the analyst: <strong>20 vehicles</strong>" in text
    assert "1.5 × baseline = <strong>30.0</strong>" in text
    # Anomalies: 73 [71-76] and 64 [62-67] have low bounds above 30; partial 30 [28-33] not.
    assert re.search(r'class="k">anomalies</div><div class="v">2<', text)
    # The obscured and uncovered rows say so and never show a zero count.
    assert text.count("no count") >= 2
    assert "73 [71–76]" in text
    # Weekly table: 2023-09-04 .. 2023-11-06 is 10 weeks, 5 without imagery; the two
    # consecutive empty weeks (W41, W42) share one row.
    assert text.count('<td class="l">2023-W') == 9
    assert text.count('<tr class="gap">') == 4
    assert "2023-W41 – 2023-W42" in text and "no acquisition for 2 weeks" in text
    # Rejected files and provenance; escaped text.
    assert "not a raster &lt;corrupt&gt;" in text
    assert "configs/test.yaml" in text
    assert "ab" * 32 in text
    # Events: label of the in-range event appears nowhere but in the figure; the
    # figure is embedded, so check the SVG text instead.
    svg = (results_dir / "timeseries.svg").read_text()
    assert "summit (2023-09-13)" in svg
    assert "border closure" not in svg


def test_report_is_byte_identical_and_location_independent(results_dir, tmp_path):
    build_report(results_dir)
    first = {
        n: (results_dir / n).read_bytes()
        for n in ("report.html", "timeseries.png", "timeseries.svg")
    }
    build_report(results_dir)
    second = {n: (results_dir / n).read_bytes() for n in first}
    assert first == second
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(results_dir, moved)
    for n in first:
        (moved / n).unlink()
    build_report(moved)
    assert {n: (moved / n).read_bytes() for n in first} == first
    # No temporary files are left behind.
    assert not [p for p in results_dir.iterdir() if p.name.startswith(".")]


def test_report_without_baseline_and_without_quicklooks(tmp_path):
    d = make_results_dir(tmp_path / "nb", baseline=BaselineConfig(), quicklook=False)
    text = build_report(d).read_text(encoding="utf-8")
    assert "No baseline is configured" in text
    assert "No quicklooks in this directory" in text
    assert len(re.findall(r"<img ", text)) == 1


def test_report_demand_baseline_paragraph(tmp_path):
    cfg = BaselineConfig(
        model="demand",
        towns=(("Khasan", 492.0), ("Tumangang", 3000.0)),
        freight_t_per_capita_year=2.0,
        wagon_payload_t=60.0,
        dwell_days=2.0,
        factor=2.0,
    )
    d = make_results_dir(tmp_path / "dm", baseline=cfg, quicklook=False)
    text = build_report(d).read_text(encoding="utf-8")
    # 3492 * 2 / 60 = 116.4 wagonloads a year; * 2 / 365 = 0.638 vehicles.
    assert "116 wagonloads a year" in text
    assert "<strong>0.6 vehicles</strong>" in text
    assert "Khasan (492), Tumangang (3,000)" in text


def test_missing_or_incomplete_directory(tmp_path):
    with pytest.raises(ResultsDirError, match="results directory not found"):
        build_report(tmp_path / "nope")
    d = make_results_dir(tmp_path / "inc", quicklook=False)
    (d / "run.json").unlink()
    with pytest.raises(ResultsDirError, match=r"run\.json missing"):
        build_report(d)
    assert not (d / "report.html").exists()


def test_malformed_counts_is_a_results_error(tmp_path):
    d = make_results_dir(tmp_path / "bad", quicklook=False)
    (d / "counts.csv").write_text("date,railcars\n2023-01-01,3\n")
    with pytest.raises(ResultsDirError, match="counts.csv: .*missing column"):
        read_report_inputs(d)


# ----------------------------------------------------------------------------- browser


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


class _PipeCDP:
    """Minimal Chrome DevTools Protocol client over --remote-debugging-pipe (fd 3/4)."""

    def __init__(self, binary: str, user_data_dir: Path) -> None:
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def child_fds() -> None:  # pragma: no cover - runs in the child
            a = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={user_data_dir}",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=child_fds,
            # Python's own descriptors are not inheritable; dup2 above makes 3 and 4 so.
            close_fds=False,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium")
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the pipe")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(
        self,
        method: str,
        params: dict | None = None,
        *,
        session: str | None = None,
        timeout: float = 30.0,
    ) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict:
        for m in self.events:
            if m.get("method") == method:
                return m
        deadline = time.monotonic() + timeout
        while True:
            m = self._read_message(deadline)
            self.events.append(m)
            if m.get("method") == method:
                return m

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)


@pytest.mark.browser
def test_report_renders_in_headless_chromium(results_dir, tmp_path):
    binary = _chromium()
    if binary is None:
        pytest.skip("headless Chromium not installed (apt-get install -y chromium)")
    report = build_report(results_dir)
    cdp = _PipeCDP(binary, tmp_path / "chrome-profile")
    try:
        target = cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            cdp.call(f"{domain}.enable", session=sid)
        cdp.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 1800, "deviceScaleFactor": 1, "mobile": False},
            session=sid,
        )
        cdp.call("Page.navigate", {"url": report.resolve().as_uri()}, session=sid)
        cdp.wait_for("Page.loadEventFired")
        state = cdp.call(
            "Runtime.evaluate",
            {
                "expression": "JSON.stringify({title: document.title, "
                "h1: document.querySelector('h1').textContent, "
                "imgs: Array.from(document.images).map(i => "
                "[i.complete, i.naturalWidth, i.naturalHeight, i.getBoundingClientRect().width]),"
                "rows: document.querySelectorAll('table tr').length})",
                "returnByValue": True,
            },
            session=sid,
        )
        shot = cdp.call("Page.captureScreenshot", {"format": "png"}, session=sid)
    finally:
        cdp.close()
    info = json.loads(state["result"]["value"])
    assert info["title"] == "Tumangang test yard: rail vehicles per acquisition"
    assert info["h1"] == info["title"]
    assert len(info["imgs"]) == 2
    for complete, w, h, shown in info["imgs"]:
        assert complete and w > 100 and h > 100 and shown > 100
    assert info["rows"] > 20
    errors = [
        m
        for m in cdp.events
        if m.get("method") == "Runtime.exceptionThrown"
        or (m.get("method") == "Runtime.consoleAPICalled" and m["params"]["type"] == "error")
        or (m.get("method") == "Log.entryAdded" and m["params"]["entry"]["level"] == "error")
        or m.get("method") == "Network.loadingFailed"
    ]
    assert errors == []
    requested = [
        m["params"]["request"]["url"]
        for m in cdp.events
        if m.get("method") == "Network.requestWillBeSent"
    ]
    assert requested and all(u.startswith(("file:", "data:")) for u in requested)
    png = base64.b64decode(shot["data"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("RAILWATCH_SCREENSHOT")
    if keep:
        Path(keep).write_bytes(png)

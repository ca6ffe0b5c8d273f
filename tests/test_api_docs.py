"""docs/api.md runs as written, cell by cell, and shows what it says."""

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def _cells() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.mark.slow
def test_api_doc_runs_in_order(tmp_path, monkeypatch):
    cells = _cells()
    assert len(cells) >= 5
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    for k, cell in enumerate(cells):
        exec(compile(cell, f"docs/api.md cell {k + 1}", "exec"), ns)  # noqa: S102
    res = ns["res"]
    assert list(res.counts.columns[:6]) == [
        "date", "datetime", "railcars", "railcars_low", "railcars_high", "status",
    ]  # fmt: skip
    assert len(res.counts) == 3
    assert ns["run"].n_processed == 3
    assert str(ns["cars"].crs) == "EPSG:32652"
    assert str(ns["wgs84"].crs) == "EPSG:4326"
    assert {"date", "track_id", "type", "length_m", "confidence", "counted"} <= set(
        res.railcars.columns
    )
    assert ns["never_zero"]["railcars"].isna().all()

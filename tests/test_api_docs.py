"""docs/api.md runs as written, cell by cell in one namespace, and shows what it says.

Every fenced ``python`` block of the page is executed in order in a fresh temporary
folder, like notebook cells. Lines ``# -> TEXT`` in a cell are the output the page
promises: the cell must print exactly those lines. The page's objects are then checked
against the contract of docs/design.md.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pandas as pd
import pytest

from contract import COUNTS_COLUMNS, SCENES_COLUMNS, WEEKLY_COLUMNS

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"

RAILCARS_COLUMNS = {"datetime", "date", "track_id", "type", "length_m", "confidence"}


def python_cells(text: str) -> list[str]:
    """The fenced ``python`` blocks of a Markdown text, in order."""
    return re.findall(r"^```python\n(.*?)^```\s*$", text, flags=re.S | re.M)


def promised_output(cell: str) -> list[str]:
    """The ``# -> TEXT`` lines of a cell (what it must print)."""
    return [m.group(1) for m in re.finditer(r"^# -> (.*)$", cell, flags=re.M)]


def test_cell_parsing():
    text = (
        "intro\n```python\nx = 1\nprint(x)\n# -> 1\n```\n"
        "```sh\nls\n```\n\n```python\ny = x + 1\n```\n"
    )
    cells = python_cells(text)
    assert cells == ["x = 1\nprint(x)\n# -> 1\n", "y = x + 1\n"]
    assert promised_output(cells[0]) == ["1"]
    assert promised_output(cells[1]) == []


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    """Run every cell of docs/api.md in order; return the namespace and the folder."""
    cells = python_cells(DOC.read_text(encoding="utf-8"))
    work = tmp_path_factory.mktemp("api_doc")
    ns: dict = {"__name__": "__api_doc__"}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        for k, cell in enumerate(cells, start=1):
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(cell, f"docs/api.md, python cell {k}", "exec"), ns)  # noqa: S102
            promised = promised_output(cell)
            if promised:
                printed = out.getvalue().splitlines()
                assert printed == promised, f"python cell {k} of docs/api.md printed {printed}"
    return ns, work, cells


@pytest.mark.slow
def test_doc_has_the_notebook_cells(notebook):
    _, _, cells = notebook
    assert len(cells) >= 10
    joined = "\n".join(cells)
    for call in ("railwatch.count(", "railwatch.load_results(", ".to_crs("):
        assert call in joined


@pytest.mark.slow
def test_results_frames_follow_design(notebook):
    ns, work, _ = notebook
    res = ns["res"]
    assert list(res.counts.columns) == COUNTS_COLUMNS
    assert list(res.weekly.columns) == WEEKLY_COLUMNS
    assert list(res.scenes.columns) == SCENES_COLUMNS
    assert RAILCARS_COLUMNS <= set(res.railcars.columns)
    # Dtypes the page promises.
    c = res.counts
    assert str(c["datetime"].dtype) == "datetime64[us, UTC]"
    assert pd.api.types.is_datetime64_dtype(c["date"])
    for col in ("railcars", "railcars_low", "railcars_high", "tank", "unknown"):
        assert str(c[col].dtype) == "Int64", col
    assert str(c["anomaly"].dtype) == "boolean"
    assert str(res.weekly["anomaly"].dtype) == "boolean"
    assert str(res.scenes["datetime"].dtype) == "datetime64[us, UTC]"
    assert str(res.railcars["datetime"].dtype) == "datetime64[us, UTC]"
    # Four acquisitions (one of two tiles) from five files, none rejected.
    assert len(c) == 4 and c["datetime"].is_monotonic_increasing
    assert sorted(res.scenes["status"]) == ["used"] * 5
    assert int(c.loc[c["date"] == "2020-06-22", "n_tiles"].iloc[0]) == 2
    # Rows without a count are never zero; rows with one have an ordered interval.
    observable = c["status"].isin(["ok", "partial"])
    assert c.loc[~observable, "railcars"].isna().all()
    assert c.loc[observable, "railcars"].notna().all()
    has = c[observable]
    assert (has["railcars_low"] <= has["railcars"]).all()
    assert (has["railcars"] <= has["railcars_high"]).all()
    # Weekly: every Monday from the first to the last acquisition.
    w = res.weekly
    assert (w["week_start"].diff().dropna() == pd.Timedelta(days=7)).all()
    assert w["week_start"].iloc[0] == pd.Timestamp("2020-06-22")
    assert w["week_start"].iloc[-1] == pd.Timestamp("2024-08-05")
    assert int(w["n_scenes"].sum()) == 4
    assert w.loc[w["n_scenes"] == 0, "railcars_mean"].isna().all()


@pytest.mark.slow
def test_baseline_and_anomaly_rule(notebook):
    ns, _, _ = notebook
    c = ns["res"].counts
    has = c[c["railcars"].notna()]
    assert (has["baseline"] == 4.0).all()
    assert (has["excess"] == has["railcars"].astype(float) - 4.0).all()
    expected = (has["railcars_low"].astype(float) > 6.0).tolist()
    assert has["anomaly"].tolist() == expected
    flagged = c[ns["flags"].to_numpy(dtype=bool)]
    assert flagged["anomaly"].all() and len(flagged) == int(c["anomaly"].sum())


@pytest.mark.slow
def test_types_and_vehicle_layer_agree(notebook):
    ns, work, _ = notebook
    res, types = ns["res"], ns["types"]
    assert types == ["tank", "open", "flat", "covered", "locomotive", "unknown"]
    c = res.counts
    has = c[c["railcars"].notna()]
    # Per-type columns add up to the count.
    assert (has[types].sum(axis=1) == has["railcars"]).all()
    # ... and they are the counted vehicles of the railcars layer.
    layer = ns["from_layer"].reindex(columns=types, fill_value=0)
    for _, row in has.iterrows():
        got = layer.loc[row["date"]] if row["date"] in layer.index else pd.Series(0, types)
        assert got.tolist() == [int(row[t]) for t in types], row["date"]
    png = work / "by_type.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_vehicles_crs_and_reprojection(notebook):
    import geopandas as gpd

    ns, work, _ = notebook
    res = ns["res"]
    for layer in (res.railcars, res.tracks, res.aoi, res.footprints):
        assert layer.crs.to_epsg() == 32652
    cars, wgs = ns["cars"], ns["cars_wgs84"]
    assert wgs.crs.to_epsg() == 4326 and len(wgs) == len(cars)
    # Vehicles lie in the yard, whose AOI the page gave in lon/lat.
    aoi = ns["aoi_lonlat"].buffer(0.0005)
    assert all(aoi.contains(g) for g in wgs.geometry)
    # Areas in the metric CRS are those of rail vehicles (about 3.2 m x 8-24 m).
    assert cars["area_m2"].between(15.0, 90.0).all()
    back = gpd.read_file(work / "vehicles.geojson")
    assert len(back) == len(cars) and back.crs.to_epsg() == 4326

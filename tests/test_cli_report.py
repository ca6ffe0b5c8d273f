"""`railwatch report DIR`: exit codes and files."""

from __future__ import annotations

from click.testing import CliRunner

from railwatch.cli.main import cli
from test_report import make_results_dir


def test_report_command_writes_files_and_prints_path(tmp_path):
    d = make_results_dir(tmp_path / "run", quicklook=False)
    result = CliRunner().invoke(cli, ["report", str(d)])
    assert result.exit_code == 0, result.output
    assert not result.exception
    assert result.stdout.strip() == str(d / "report.html")
    for name in ("report.html", "timeseries.png", "timeseries.svg"):
        assert (d / name).is_file()
    first = (d / "report.html").read_bytes()
    again = CliRunner().invoke(cli, ["report", str(d)])
    assert again.exit_code == 0
    assert (d / "report.html").read_bytes() == first


def test_missing_directory_exits_2_with_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: ") and "results directory not found" in lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""


def test_incomplete_directory_exits_2(tmp_path):
    d = make_results_dir(tmp_path / "run", quicklook=False)
    (d / "weekly.csv").unlink()
    result = CliRunner().invoke(cli, ["report", str(d)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: {d}: not a complete railwatch results directory (weekly.csv missing; "
        "run `railwatch count` first)"
    ]
    assert not (d / "report.html").exists()


def test_malformed_run_json_exits_2(tmp_path):
    d = make_results_dir(tmp_path / "run", quicklook=False)
    (d / "run.json").write_text("{not json")
    result = CliRunner().invoke(cli, ["report", str(d)])
    assert result.exit_code == 2
    assert "run.json: not readable JSON" in result.stderr


def test_debug_shows_the_library_error(tmp_path):
    result = CliRunner().invoke(cli, ["--debug", "report", str(tmp_path / "nothing")])
    assert result.exit_code != 0
    from railwatch.report import ResultsDirError

    assert isinstance(result.exception, ResultsDirError)


def test_missing_argument_is_usage_error():
    result = CliRunner().invoke(cli, ["report"])
    assert result.exit_code == 2
    assert "Missing argument" in result.stderr

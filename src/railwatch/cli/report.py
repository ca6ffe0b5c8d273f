"""``railwatch report``: figures and report.html from a results directory."""

from __future__ import annotations

from pathlib import Path

import click

from railwatch.cli.options import ConfigError


@click.command(name="report")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.pass_context
def command(ctx: click.Context, directory: Path) -> None:
    """Re-draw timeseries.png/.svg and report.html in DIRECTORY from its stored results.

    DIRECTORY is the --out folder of `railwatch count`; only counts.csv, weekly.csv,
    scenes.csv, run.json and quicklooks/ are read. The path of the report is printed on
    stdout. Exit code 2 when DIRECTORY is missing or incomplete.
    """
    from railwatch.report import ResultsDirError, build_report

    try:
        path = build_report(directory)
    except ResultsDirError as exc:
        if isinstance(ctx.obj, dict) and ctx.obj.get("debug"):
            raise
        raise ConfigError(str(exc)) from None
    click.get_text_stream("stdout").write(f"{path}\n")

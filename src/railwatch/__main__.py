"""``python -m railwatch``: the same as the ``railwatch`` command."""

from railwatch.cli.main import cli

if __name__ == "__main__":
    cli(prog_name="railwatch")

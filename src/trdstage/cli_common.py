"""What every command of the command line shares: the error exit and date options."""

from __future__ import annotations

from datetime import date, datetime
from typing import NoReturn

import typer
from rich.console import Console

from trdstage.adapters.native import EARLIEST_DATE

err = Console(stderr=True)
EARLIEST = EARLIEST_DATE  # the earliest date of any history
LATEST = date(2199, 12, 31)


def fail(message: str) -> NoReturn:
    """Bad input: the message on standard error, exit code 2, no traceback."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def parse_date(value: str | None) -> date | None:
    """A YYYY-MM-DD option value (None stays None)."""
    if value is None:
        return None
    try:
        when = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from exc
    if not EARLIEST <= when <= LATEST:
        raise typer.BadParameter(f"{value} is outside {EARLIEST.isoformat()} to "
                                 f"{LATEST.isoformat()}")
    return when

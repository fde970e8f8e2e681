"""Command-line groups: `flask --app wsgi event …`, `mail …`, `reminders …`."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask
from flask.cli import AppGroup

from .database import utcnow
from .event_file import EventFileError, load_event, read_event_file, resolve_date
from .extensions import db

event_cli = AppGroup("event", help="Load and inspect events.")


@event_cli.command("load")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--date",
    "move_to",
    help="Move the event to this date (YYYY-MM-DD, or +30d for 30 days from today), "
    "for a demo; the page then says the real date.",
)
def load_event_command(path: Path, move_to: str | None) -> None:
    """Create or update the event described by the TOML file PATH."""
    try:
        data = read_event_file(path)
        day = resolve_date(move_to, utcnow().date()) if move_to else None
        event = load_event(db.session, data, move_to=day)
        db.session.commit()
    except EventFileError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from error
    click.echo(
        f"Loaded {event.slug}: {event.title}, {event.date.isoformat()}, "
        f"{len(event.workshops)} workshops, {len(event.programme)} programme items."
    )


def register_commands(app: Flask) -> None:
    app.cli.add_command(event_cli)

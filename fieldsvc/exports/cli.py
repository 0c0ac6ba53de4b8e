"""``flask exports work``: run queued background exports (when the web process runs no thread)."""

from __future__ import annotations

import time

import click
from flask import current_app
from flask.cli import with_appcontext

from . import jobs


@click.group()
def exports() -> None:
    """Background exports."""


@exports.command("work")
@click.option("--loop", is_flag=True, help="keep polling for queued jobs (every --every seconds)")
@click.option("--every", default=5.0, show_default=True)
@with_appcontext
def work(loop: bool, every: float) -> None:
    """Write every queued export's file; expired files are deleted first."""
    while True:
        ran = jobs.run_pending(current_app.instance_path, current_app.config["EXPORT_JOB_KEEP_S"])
        click.echo(f"export jobs run: {ran}")
        if not loop:
            return
        time.sleep(every)

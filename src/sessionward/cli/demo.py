"""``sessionward demo``: serve the demo app on 127.0.0.1 (development only)."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from ..core.errors import ConfigurationError

HOST = "127.0.0.1"


def inspect_command(data_dir: Path) -> str:
    """The exact ``sessionward`` line that lists the demo's sessions (shell-quoted)."""
    from ..demo import DEV_OVERRIDES

    root = data_dir.resolve()
    args = ["sessionward", "--store", f"sqlite:///{root / 'sessions.db'}",
            "--key-file", str(root / "session.key"),
            "--namespace", str(DEV_OVERRIDES["namespace"]), "list"]
    return shlex.join(args)


@click.command("demo")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("demo-data"), show_default=True,
              help="Private directory for keys, sessions and demo users (created 0700).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True,
              help="Port on 127.0.0.1.")
def demo(data_dir: Path, port: int) -> None:
    """Run the demo web application on http://127.0.0.1:PORT (plain http, dev mode).

    \f
    Raises:
        click.ClickException: the data directory or settings are unusable.
    """
    try:
        import uvicorn

        from ..demo import create_app
    except ImportError as exc:
        raise click.ClickException(f"the demo needs its extra ({exc}); run: "
                                   "pip install 'sessionward[demo]'") from None

    try:
        app = create_app(data_dir)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"sessionward demo: http://{HOST}:{port}/  (data in {data_dir}/; Ctrl-C stops)")
    click.echo(f"inspect its sessions: {inspect_command(data_dir)}")
    uvicorn.run(app, host=HOST, port=port, log_level="warning", proxy_headers=False)

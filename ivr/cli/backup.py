"""`python -m ivr backup FILE` and `restore FILE`: the SQLite session store copied while the app serves calls.

The store holds every call's session, voicemail messages, campaign rows and the last good flow
versions. Other stores are backed up with their own tools: the commands say how.
"""

from __future__ import annotations

from pathlib import Path

import click

from ivr.cli.base import Command
from ivr.errors import ConfigError
from ivr.settings import load_settings
from ivr.store import SQLiteStore, sqlite_path
from ivr.store.sqlite import restore as restore_store

__all__ = ["backup", "restore"]

_REDIS = (
    "IVR_STORE is Redis: back it up with Redis's own tools. `redis-cli BGSAVE` writes a snapshot (dump.rdb in "
    "Redis's data directory) to copy away, losing what was written after it; with `appendonly yes` (AOF, fsync "
    "every second) at most a second is lost. Restore by putting the file in the data directory of a stopped Redis."
)


@click.command(cls=Command)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup(file: Path) -> None:
    """Copy the SQLite session store (IVR_STORE) into FILE, consistently, while the app goes on serving calls."""
    path = _store_file()
    if not path.exists():
        raise ConfigError(f"there is no session store at {path} (IVR_STORE): nothing to back up")
    store = SQLiteStore(path)
    try:
        store.backup_to(file)
    finally:
        store.close()
    click.echo(f"backed up the session store {path} into {file}")


@click.command(cls=Command)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace an existing store: what was written since the backup is lost.")
def restore(file: Path, force: bool) -> None:
    """Put a backup made by `backup` in place of the SQLite session store (IVR_STORE); stop the app first."""
    path = _store_file()
    restore_store(file, path, force=force)
    click.echo(f"restored the session store {path} from {file}")


def _store_file() -> Path:
    """The file of the SQLite store IVR_STORE names; any other store is refused, saying how to back it up."""
    url = load_settings()["IVR_STORE"]
    path = sqlite_path(url)
    if path is not None:
        return path
    if url.startswith(("redis://", "rediss://")):
        raise ConfigError(_REDIS)
    if url == "memory://":
        raise ConfigError("IVR_STORE=memory:// keeps sessions inside one process: there is no file to back up")
    raise ConfigError(f"IVR_STORE={url.split('://', 1)[0]}://... is not a SQLite store: back it up with its own tools")

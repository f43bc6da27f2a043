"""The study's storage, from `hydra.sweeper.storage`, opened the same way by the sweeper and by
each trial's job:

- an SQLAlchemy URL: Optuna's RDBStorage. SQLite for one machine (one sweep process: SQLite
  locks its file against concurrent writers, and over a network filesystem its locks are not
  to be trusted); PostgreSQL (`postgresql+psycopg://`, psycopg 3) or MySQL for workers on many
  machines. With `heartbeat_interval` the storage fails the trials of a dead worker and Optuna's
  RetryHeartbeatStaleTrialCallback (formerly RetryFailedTrialCallback) queues their params again;
- `journal:///path` (`journal:////abs/path`): Optuna's JournalStorage over a file, for a cluster
  with a shared filesystem and no database server (no heartbeat: Optuna's journal has none);
- null: in memory, in the sweeper's process.

Connection problems are one line naming the key, the server and the reason (unreachable,
refused password), not a driver traceback.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, RDBStorage

from ._build import SweepConfigError
from ._secrets import STORAGE_KEY, hide_password

JOURNAL = "journal:///"
SQLITE = "sqlite:///"
# retries of one trial whose workers died, before its params are given up (RetryHeartbeat...)
MAX_RETRY = 3
# seconds a worker waits for a database server that does not answer (PostgreSQL only)
CONNECT_TIMEOUT_S = 10


def absolute_storage(storage: Any) -> str | None:
    """A storage URL the jobs can open from any working directory; SQLite's or the journal
    file's folder created."""
    if storage is None:
        return None
    url = storage if isinstance(storage, str) else getattr(storage, "url", None)
    if url is None:
        raise ValueError(
            f"{STORAGE_KEY}: expected an SQLAlchemy URL or journal:///path, got {storage!r}"
        )
    for prefix in (SQLITE, JOURNAL):
        if url.startswith(prefix) and url != "sqlite:///:memory:":
            path = Path(url[len(prefix) :]).expanduser().absolute()
            path.parent.mkdir(parents=True, exist_ok=True)
            return prefix + str(path)
    return url


def is_sqlite(url: str | None) -> bool:
    return url is not None and url.startswith("sqlite")


def check_workers(url: str | None, n_workers: int, heartbeat_interval: int | None,
                  grace_period: int | None) -> None:  # fmt: skip
    """Refuse, in one line naming the key, a storage that cannot hold what the settings ask."""
    if n_workers < 1:
        raise SweepConfigError(f"hydra.sweeper.n_workers = {n_workers}: expected 1 or more")
    if n_workers > 1 and url is None:
        raise SweepConfigError(
            f"{STORAGE_KEY} = null keeps the study in one process's memory, but "
            f"hydra.sweeper.n_workers = {n_workers}: give a postgresql+psycopg:// URL or "
            "journal:///path on a shared filesystem"
        )
    if n_workers > 1 and is_sqlite(url):
        raise SweepConfigError(
            f"{STORAGE_KEY} = {hide_password(str(url))}: SQLite is for one sweep process, but "
            f"hydra.sweeper.n_workers = {n_workers}: use PostgreSQL (postgresql+psycopg://...) "
            "or journal:///path on a shared filesystem"
        )
    if heartbeat_interval is not None and heartbeat_interval < 1:
        raise SweepConfigError(
            f"hydra.sweeper.heartbeat_interval = {heartbeat_interval}: expected whole seconds >= 1"
        )
    if grace_period is not None and heartbeat_interval is None:
        raise SweepConfigError(
            "hydra.sweeper.grace_period is set without hydra.sweeper.heartbeat_interval: "
            "no heartbeat, so nothing to wait for"
        )
    if grace_period is not None and grace_period <= heartbeat_interval:  # type: ignore[operator]
        raise SweepConfigError(
            f"hydra.sweeper.grace_period = {grace_period}: expected more than "
            f"hydra.sweeper.heartbeat_interval = {heartbeat_interval}, or every trial looks dead"
        )
    if heartbeat_interval is not None and (url is None or url.startswith(JOURNAL)):
        raise SweepConfigError(
            f"hydra.sweeper.heartbeat_interval needs an SQLAlchemy {STORAGE_KEY}: "
            f"{'memory' if url is None else 'Optuna journal storage'} has no heartbeat"
        )


def open_storage(
    url: str | None, heartbeat_interval: int | None = None, grace_period: int | None = None
) -> BaseStorage | None:
    """The Optuna storage behind `url` (None: in memory); a connection failure is one line."""
    if url is None:
        return None
    if url.startswith(JOURNAL):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url[len(JOURNAL) :]))
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("postgresql"):
        # a dropped connection is replaced, not an error mid-sweep; an unanswering host is an
        # error after CONNECT_TIMEOUT_S, not a hang
        engine_kwargs = {
            "pool_pre_ping": True,
            "connect_args": {"connect_timeout": CONNECT_TIMEOUT_S},
        }
    heartbeat: dict[str, Any] = {}
    if heartbeat_interval is not None:
        heartbeat = {
            "heartbeat_interval": heartbeat_interval,
            "grace_period": grace_period,
            "heartbeat_stale_trial_callback": _retry_callback(),
        }
    import sqlalchemy.exc

    try:
        for attempt in range(3):
            try:
                with warnings.catch_warnings():
                    # Optuna marks heartbeat_interval experimental (since 2.9; stable in use)
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return RDBStorage(url, engine_kwargs=engine_kwargs, **heartbeat)
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
                # workers started together on an empty database all create Optuna's tables;
                # PostgreSQL lets one win and the others fail: they find the tables made
                if attempt == 2:
                    raise
                time.sleep(0.5 + attempt)
        raise AssertionError("unreachable")
    except sqlalchemy.exc.OperationalError as err:
        raise SweepConfigError(connection_error(url, err)) from None
    except sqlalchemy.exc.ArgumentError as err:
        raise SweepConfigError(f"{STORAGE_KEY} = {hide_password(url)}: {err}") from None
    except ModuleNotFoundError as err:  # the URL's driver (psycopg for postgresql+psycopg)
        raise SweepConfigError(
            f"{STORAGE_KEY} = {hide_password(url)}: its driver {err.name!r} is not installed"
        ) from None


def _retry_callback() -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)


def connection_error(url: str, err: Exception) -> str:
    """`hydra.sweeper.storage: <what went wrong> at host:port (<driver's reason>)`."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    default_ports = {"postgresql": 5432, "mysql": 3306}
    port = parsed.port or default_ports.get(parsed.get_backend_name(), "default port")
    where = f"{parsed.host or 'localhost'}:{port}"
    orig = getattr(err, "orig", err)
    # psycopg: 'connection failed: connection to server at "h", port p failed: FATAL:  reason'
    reason = " ".join(str(orig).splitlines()[0].split()) if str(orig) else type(orig).__name__
    reason = reason.rsplit("failed: ", 1)[-1].removeprefix("FATAL: ").strip()
    if "password authentication failed" in reason:
        return (
            f"{STORAGE_KEY}: the database server at {where} refused user {parsed.username!r}: "
            f"{reason} (check the password the DSN takes from its environment variable)"
        )
    if parsed.get_backend_name() == "sqlite":
        return f"{STORAGE_KEY} = {hide_password(url)}: cannot open the SQLite file ({reason})"
    return f"{STORAGE_KEY}: cannot reach the database server at {where} ({reason})"

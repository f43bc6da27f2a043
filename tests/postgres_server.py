"""A throw-away PostgreSQL server for the distributed-sweep tests and benchmark: Debian's
`postgresql` binaries, `initdb` into a temporary data directory, `pg_ctl start` on a free port
of 127.0.0.1 with password (SCRAM) authentication, `pg_ctl stop` and the directory removed
afterwards. PostgreSQL refuses to run as root, so as root the binaries run as the `postgres`
user the Debian package creates (through `runuser`). Missing binaries are one line naming the
script that installs them (.ci/install-services.sh)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found: run .ci/install-services.sh "
    "(apt-get install -y postgresql) or put them on PATH"
)
USER = "sweeps"
DATABASE = "postgres"


class PostgresMissing(RuntimeError):
    """The server binaries are not installed."""


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    password: str
    database: str

    def dsn(self, password: str | None = None, port: int | None = None) -> str:
        """The psycopg 3 SQLAlchemy URL of this server (another password or port: a bad one)."""
        return (
            f"postgresql+psycopg://{self.user}:{password or self.password}@{self.host}:"
            f"{port or self.port}/{self.database}"
        )


def bin_dir() -> Path:
    """The directory of initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<v>/bin
    (the newest version installed)."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(os.path.realpath(on_path)).parent
    versions = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not versions:
        raise PostgresMissing(INSTALL_HINT)
    return Path(versions[-1]).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(command: list[str]) -> list[str]:
    # initdb and postgres refuse root; Debian's package creates the `postgres` system user
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _run(command: list[str]) -> None:
    done = subprocess.run(
        _as_server_user(command), capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{(done.stdout + done.stderr)[-2000:]}")


@contextmanager
def postgres_server(password: str = "s3cret-pw") -> Iterator[Postgres]:
    """A running server for the duration of the block; stopped and deleted however it ends."""
    binaries = bin_dir()
    # not under pytest's tmp_path: that is root's 0700 folder, which `postgres` cannot enter
    root = Path(tempfile.mkdtemp(prefix="sweeps-pg-"))
    data = root / "data"
    try:
        pwfile = root / "pw"
        pwfile.write_text(password + "\n")
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
            shutil.chown(pwfile, "postgres")
        _run(
            [
                str(binaries / "initdb"), "-D", str(data), "-U", USER, "--pwfile", str(pwfile),
                "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "--no-sync",
                "--encoding=UTF8", "--locale=C",
            ]
        )  # fmt: skip
        port = free_port()
        # a test server: durability off (fsync), the socket in the data directory, TCP only
        # on loopback; enough connections for three workers and their trials' jobs
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200 -c shared_buffers=32MB"
        )
        _run(
            [str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"),
             "-o", options, "-w", "-t", "60", "start"]
        )  # fmt: skip
        try:
            yield Postgres("127.0.0.1", port, USER, password, DATABASE)
        finally:
            _run([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"])
    finally:
        shutil.rmtree(root, ignore_errors=True)

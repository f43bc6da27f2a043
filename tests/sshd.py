"""A real OpenSSH server for tests: Debian's `sshd` on a free port of 127.0.0.1 with a
temporary host key, one authorized user key and a storage folder, stopped afterwards."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
INSTALL = ".ci/install-services.sh (Debian openssh-server)"


@dataclass(frozen=True)
class SshServer:
    port: int
    user: str
    key: Path  # the private key sshd accepts
    storage: Path  # a folder the key's user may write: the DVC remote

    def url(self) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{self.storage}"


def missing_binaries() -> str | None:
    """One line naming the install script, or None when sshd and ssh-keygen are here."""
    absent = [str(SSHD)] if not SSHD.exists() else []
    absent += [] if shutil.which("ssh-keygen") else ["ssh-keygen"]
    return f"{', '.join(absent)} not found: run {INSTALL}" if absent else None


def new_key(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(path)],
        check=True,
    )
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def ssh_server(folder: Path) -> Iterator[SshServer]:
    folder.mkdir(parents=True, exist_ok=True)
    host_key = new_key(folder / "host_ed25519")
    user_key = new_key(folder / "user_ed25519")
    (folder / "authorized_keys").write_text(Path(f"{user_key}.pub").read_text())
    storage = folder / "storage"
    storage.mkdir()
    port = _free_port()
    config = folder / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"Port {port}",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {folder / 'authorized_keys'}",
                f"PidFile {folder / 'sshd.pid'}",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PubkeyAuthentication yes",
                "PermitRootLogin prohibit-password",  # CI containers run as root
                "StrictModes no",  # the temporary folder's modes are pytest's
                "UsePAM no",
                "Subsystem sftp internal-sftp",  # DVC's SSH remote speaks SFTP
                "LogLevel ERROR",
            ]
        )
        + "\n"
    )
    if os.geteuid() == 0:
        # sshd run as root refuses to start without its privilege separation directory,
        # which Debian's service unit makes at boot
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    log = (folder / "sshd.log").open("w")
    server = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"sshd exited: {(folder / 'sshd.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sshd did not listen on port {port} in 20 s") from None
                time.sleep(0.1)
        yield SshServer(port, getpass.getuser(), user_key, storage)
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()

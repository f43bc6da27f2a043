"""Artifacts through a real DVC remote: an OpenSSH server started here (tests/sshd.py), two
clones of a small DVC project in separate folders sharing a bare git repo and the SSH remote.
What one clone pushes, the other pulls byte for byte, without rerunning anything."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.small import REPO, env
from tests.sshd import SshServer, missing_binaries, new_key, ssh_server

PROCESS = """\
import pathlib, yaml
scale = yaml.safe_load(open("params.yaml"))["scale"]
rows = pathlib.Path("data/raw.txt").read_text().split()
pathlib.Path("out").mkdir(exist_ok=True)
pathlib.Path("out/result.txt").write_text("\\n".join(str(int(r) * scale) for r in rows) + "\\n")
"""

DVC_YAML = """\
stages:
  scale:
    cmd: python process.py
    deps: [process.py, data/raw.txt]
    params: [scale]
    outs: [out]
"""

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def sh(cwd: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args,
        cwd=cwd,
        env={**env(), **GIT_IDENTITY, "DVC_NO_ANALYTICS": "1", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok:
        assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for folder in ("data", "out")
        for p in sorted((root / folder).rglob("*"))
        if p.is_file() and not p.name.startswith(".") and p.suffix != ".dvc"
    }


def use_key(clone: Path, key: Path) -> None:
    """What each user does once per clone: their key in .dvc/config.local (not committed)."""
    sh(clone, "dvc", "remote", "modify", "--local", "shared", "keyfile", str(key))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    if problem := missing_binaries():
        pytest.fail(problem, pytrace=False)
    with ssh_server(tmp_path_factory.mktemp("sshd")) as running:
        yield running


@pytest.fixture(scope="module")
def shared(server: SshServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Clone A built the pipeline and pushed (git to a bare repo, data to the SSH remote);
    clone B, in another folder, cloned and pulled."""
    where = tmp_path_factory.mktemp("team")
    origin = where / "origin.git"
    sh(where, "git", "init", "-q", "--bare", str(origin))
    a = where / "alice"
    a.mkdir()
    sh(a, "git", "init", "-q")
    sh(a, "dvc", "init", "-q")
    (a / "data").mkdir()
    (a / "data" / "raw.txt").write_text("\n".join(str(i) for i in range(1000)) + "\n")
    (a / "process.py").write_text(PROCESS)
    (a / "params.yaml").write_text("scale: 2\n")
    (a / "dvc.yaml").write_text(DVC_YAML)
    sh(a, "dvc", "add", "-q", "data/raw.txt")
    sh(a, "dvc", "repro", "-q")
    sh(a, "dvc", "remote", "add", "-d", "shared", server.url())
    use_key(a, server.key)
    sh(a, "git", "add", "-A")
    sh(a, "git", "commit", "-qm", "pipeline")
    sh(a, "git", "remote", "add", "origin", str(origin))
    sh(a, "git", "push", "-q", "origin", "HEAD:main")
    sh(a, "dvc", "push", "-q")
    b = where / "bob"
    sh(where, "git", "clone", "-q", "--branch", "main", str(origin), str(b))
    use_key(b, server.key)
    sh(b, "dvc", "pull", "-q")
    return {"a": a, "b": b, "origin": origin}


def test_a_second_clone_pulls_identical_files_through_the_ssh_remote(
    shared: dict[str, Path], server: SshServer
) -> None:
    pushed = digests(shared["a"])
    assert set(pushed) == {"data/raw.txt", "out/result.txt"}
    assert digests(shared["b"]) == pushed
    # the objects really are on the server, in DVC's content-addressed layout
    assert list(server.storage.rglob("files/md5/*/*"))


def test_reproducing_in_the_second_clone_is_a_no_op(shared: dict[str, Path]) -> None:
    b = shared["b"]
    assert "up to date" in sh(b, "dvc", "status").stdout
    result = b / "out" / "result.txt"
    before = result.stat().st_mtime_ns
    assert "didn't change, skipping" in sh(b, "dvc", "repro").stdout
    assert result.stat().st_mtime_ns == before


def test_an_experiment_pushed_from_one_clone_is_pulled_and_applied_in_the_other(
    shared: dict[str, Path],
) -> None:
    a, b = shared["a"], shared["b"]
    sh(a, "dvc", "exp", "run", "-q", "-S", "scale=3", "-n", "triple")
    tripled = digests(a)["out/result.txt"]
    assert tripled != digests(b)["out/result.txt"]
    sh(a, "dvc", "exp", "push", "origin", "triple")
    sh(b, "dvc", "exp", "pull", "origin", "triple")
    assert "triple" in sh(b, "dvc", "exp", "list", "--name-only").stdout.split()
    sh(b, "dvc", "exp", "apply", "triple")
    assert digests(b)["out/result.txt"] == tripled
    assert (b / "params.yaml").read_text() == "scale: 3\n"


def test_the_remote_check_answers_with_the_right_key(shared: dict[str, Path]) -> None:
    done = sh(shared["b"], sys.executable, "-m", "pipelines.remote_check")
    assert done.stdout.strip().startswith("DVC remote 'shared' (ssh://")


def test_a_remote_that_refuses_the_key_is_one_line_naming_the_key(
    shared: dict[str, Path], server: SshServer, tmp_path: Path
) -> None:
    stranger = new_key(tmp_path / "not_authorized")
    b = shared["b"]
    use_key(b, stranger)
    try:
        checked = sh(b, sys.executable, "-m", "pipelines.remote_check", ok=False)
        compared = sh(b, "dvc", "status", "--cloud", ok=False)  # needs the remote
    finally:
        use_key(b, server.key)
    assert checked.returncode == 2
    (line,) = checked.stderr.strip().splitlines()
    assert line.startswith(f"error: DVC remote 'shared' ({server.url()}) refused the key: ")
    assert f"'remote.shared.keyfile' (keyfile = {stranger}" in line
    assert "Permission denied" in line
    # DVC itself also refuses, and says why (without naming the key file)
    assert compared.returncode != 0 and "Permission denied" in compared.stderr


def test_without_sshd_the_tests_fail_with_one_line_naming_the_install_script(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tests.sshd

    monkeypatch.setattr(tests.sshd, "SSHD", Path("/nonexistent/sshd"))
    assert missing_binaries() == (
        "/nonexistent/sshd not found: run .ci/install-services.sh (Debian openssh-server)"
    )

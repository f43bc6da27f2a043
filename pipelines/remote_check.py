"""Check that a DVC remote answers with this clone's credentials, before a long push:

    python -m pipelines.remote_check            # the default remote (core.remote)
    python -m pipelines.remote_check shared     # a named one

It opens the remote through DVC's own filesystem (the same plug-in `dvc push` uses: dvc-ssh,
dvc-s3, dvc-gs ...) and lists its root. A refused key or an unreachable host is one line
naming the remote, its URL and the config key to fix; DVC's own report is two `ERROR` lines
that name neither the key file nor where it is set."""

from __future__ import annotations

import sys
from pathlib import Path

from pipelines.errors import PipelineError


def check_remote(root: Path, name: str | None = None) -> str:
    """A line saying the remote answered; PipelineError naming the key otherwise."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        try:
            remote = repo.cloud.get_remote(name)
        except DvcException as err:
            raise PipelineError(f"DVC remote: {' '.join(str(err).split())}") from None
        settings = repo.config["remote"].get(remote.name, {})
        url = settings.get("url", "?")
        try:
            remote.fs.exists(remote.path)
        except Exception as err:  # each filesystem plug-in raises its own types
            raise PipelineError(_refusal(remote.name, url, settings, err)) from None
    return f"DVC remote '{remote.name}' ({url}) answers"


def _refusal(name: str, url: str, settings: dict, err: BaseException) -> str:
    reason = " ".join(str(err).split()) or type(err).__name__
    where = f"DVC remote '{name}' ({url})"
    if "permission denied" in reason.lower():
        keyfile = settings.get("keyfile")
        key = f"keyfile = {keyfile}" if keyfile else "no keyfile set (the SSH agent's keys)"
        return (
            f"{where} refused the key: config key 'remote.{name}.keyfile' ({key}; set it with "
            f"`dvc remote modify --local {name} keyfile <path>`): {reason}"
        )
    return f"{where} did not answer: {reason} (check 'remote.{name}.url' and its credentials)"


def main(argv: list[str]) -> None:
    try:
        print(check_remote(Path.cwd(), argv[0] if argv else None))
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv[1:])

"""The admin API of the model server over real HTTP: nothing under /admin answers without the
configured bearer token, a reload loads only folders inside serve.admin.export_root (after
`..` and symlinks), every refusal leaves the model as it was, is counted in /metrics and is
logged without the token; and the server will not start with an open admin API on the network.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from pipelines.errors import PipelineError
from pipelines.serve.app import create_app
from pipelines.serve.config import load_serve_config
from tests.serve_helpers import (
    ADMIN_TOKEN,
    BEARER,
    Export,
    admin_overrides,
    build_export,
    running_server,
)
from tests.small import REPO, env
from tests.test_serve import samples

WRONG = "not-the-admin-token-0123456789"


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Export:
    return build_export(tmp_path_factory.mktemp("serve_admin"))


def refusals(url: str) -> dict[str, float]:
    page = samples(httpx.get(f"{url}/metrics").text)
    return {
        dict(labels)["reason"]: value
        for (name, labels), value in page.items()
        if name == "serve_admin_refusals_total"
    }


def version(url: str) -> str:
    return httpx.get(f"{url}/model").json()["model_version"]


def test_without_a_token_configured_the_admin_api_is_off_and_the_model_stays(
    export: Export, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SERVE_ADMIN_TOKEN", raising=False)
    with running_server(export.folder) as srv:
        before = version(srv.url)
        for headers in ({}, BEARER):
            answer = httpx.post(
                f"{srv.url}/admin/reload", json={"export_dir": str(export.other)}, headers=headers
            )
            assert answer.status_code == 403
            assert "admin API off" in answer.json()["error"]
        assert version(srv.url) == before
        assert refusals(srv.url) == {"off": 2}


def test_no_credential_is_401_a_wrong_token_403_and_neither_token_is_logged(
    export: Export, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pipelines.serve.admin")
    with running_server(export.folder, *admin_overrides(tmp_path, export.root)) as srv:
        before = version(srv.url)
        body = {"export_dir": str(export.other)}
        bare = httpx.post(f"{srv.url}/admin/reload", json=body)
        basic = httpx.post(f"{srv.url}/admin/reload", json=body, auth=("admin", ADMIN_TOKEN))
        wrong = httpx.post(
            f"{srv.url}/admin/reload", json=body, headers={"authorization": f"Bearer {WRONG}"}
        )
        # a route added under /admin later is guarded too: no token, no 404 either
        unknown = httpx.post(f"{srv.url}/admin/promote", json=body)
        assert version(srv.url) == before
        counted = refusals(srv.url)
    assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer"
    assert basic.status_code == 401 and unknown.status_code == 401
    assert wrong.status_code == 403 and wrong.json()["error"] == "admin API: wrong token"
    assert counted == {"no_credential": 3, "wrong_token": 1}
    logged = [r.getMessage() for r in caplog.records if r.name == "pipelines.serve.admin"]
    assert len(logged) == 4
    assert all(line.startswith("admin: refused POST /admin/") for line in logged)
    assert "wrong token" in logged[2]
    text = caplog.text + "".join(logged)
    assert ADMIN_TOKEN not in text and WRONG not in text


def test_the_token_reloads_a_folder_inside_the_export_root(
    export: Export, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # from the environment this time (serve.admin.token_env's default name)
    monkeypatch.setenv("SERVE_ADMIN_TOKEN", ADMIN_TOKEN)
    with running_server(export.folder, f"serve.admin.export_root={export.root}") as srv:
        relative = httpx.post(
            f"{srv.url}/admin/reload", json={"export_dir": "export_int8"}, headers=BEARER
        )
        assert version(srv.url) == "reloaded-int8"
        assert refusals(srv.url) == {}
    assert relative.status_code == 200, relative.text
    assert relative.json()["export_dir"] == str(export.other.resolve())


@pytest.fixture
def outside(export: Export, tmp_path: Path) -> Path:
    """A valid export folder outside the export root."""
    folder = tmp_path / "elsewhere"
    shutil.copytree(export.other, folder)
    assert not folder.resolve().is_relative_to(export.root.resolve())
    return folder


def test_a_folder_outside_the_root_is_refused_however_it_is_named(
    export: Export, tmp_path: Path, outside: Path
) -> None:
    escape = Path(os.path.relpath(outside, export.root))  # ../../.../elsewhere
    assert escape.parts[0] == ".."
    link = export.root / "link_out"
    link.symlink_to(outside, target_is_directory=True)
    # a folder inside the root whose model file is a symlink to a model outside it
    mixed = export.root / "mixed"
    mixed.mkdir()
    for name in ("model_card.json", "reference_profile.json"):
        shutil.copyfile(export.other / name, mixed / name)
    (mixed / "model.onnx").symlink_to(outside / "model.onnx")
    attempts = [str(outside), str(escape), "export_int8/../../elsewhere", "link_out", "mixed"]
    try:
        with running_server(export.folder, *admin_overrides(tmp_path, export.root)) as srv:
            before = version(srv.url)
            answers = [
                httpx.post(f"{srv.url}/admin/reload", json={"export_dir": a}, headers=BEARER)
                for a in attempts
            ]
            assert version(srv.url) == before
            counted = refusals(srv.url)
            reloads = samples(httpx.get(f"{srv.url}/metrics").text)
    finally:
        link.unlink()
        shutil.rmtree(mixed)
    for attempt, answer in zip(attempts, answers, strict=True):
        assert answer.status_code == 403, (attempt, answer.text)
        assert "outside serve.admin.export_root" in answer.json()["error"]
    assert counted == {"outside_root": len(attempts)}
    # refused before any load: no reload was even attempted
    assert ("serve_model_reloads_total", (("result", "failed"),)) not in reloads


def test_without_an_export_root_only_the_served_folder_reloads(
    export: Export, tmp_path: Path
) -> None:
    with running_server(export.folder, *admin_overrides(tmp_path)) as srv:
        before = version(srv.url)
        other = httpx.post(
            f"{srv.url}/admin/reload", json={"export_dir": str(export.other)}, headers=BEARER
        )
        same = httpx.post(f"{srv.url}/admin/reload", headers=BEARER)
        assert version(srv.url) == before
        assert refusals(srv.url) == {"no_export_root": 1}
    assert other.status_code == 403 and "serve.admin.export_root" in other.json()["error"]
    assert same.status_code == 200 and same.json()["model_version"] == before


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "serving.example.internal"])
def test_the_admin_api_on_a_network_address_without_a_token_stops_the_start(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SERVE_ADMIN_TOKEN", raising=False)
    with pytest.raises(PipelineError) as err:
        create_app(load_serve_config(overrides=[f"serve.host='{host}'"]))
    message = str(err.value)
    assert "\n" not in message
    assert "'serve.host'" in message and "'serve.allow_reload'" in message
    assert "SERVE_ADMIN_TOKEN" in message and "serve.admin.token_file" in message
    # either fix starts it: no admin API, or a token
    create_app(load_serve_config(overrides=[f"serve.host='{host}'", "serve.allow_reload=false"]))
    monkeypatch.setenv("SERVE_ADMIN_TOKEN", ADMIN_TOKEN)
    app = create_app(load_serve_config(overrides=[f"serve.host='{host}'"]))
    assert app.state.server.admin.token == ADMIN_TOKEN


def test_the_cli_refuses_an_open_admin_api_in_one_line_before_taking_the_port(
    tmp_path: Path,
) -> None:
    environment = {k: v for k, v in env().items() if k != "SERVE_ADMIN_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.serve", "--export", str(tmp_path), "--port", "0",
         "serve.host=0.0.0.0"],
        cwd=REPO, env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: serve: config keys 'serve.host'")

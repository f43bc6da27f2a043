"""Who may use /admin/* and which folders a reload may load.

The token comes from the environment variable `serve.admin.token_env` names or the file
`serve.admin.token_file` names, never from the config itself; without one the admin API is
off. A reload target must resolve (`..` and symlinks followed) inside `serve.admin.export_root`,
and so must every file of it the loader reads. Every refusal is one `Refusal`: the app answers
it, counts it in `serve_admin_refusals_total{reason}` and logs it; the token is never logged."""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from pipelines.drift_reference import REFERENCE_FILE
from pipelines.errors import PipelineError
from pipelines.serve.config import AdminConfig, ServeConfig
from pipelines.serve.model import CARD_FILE, MODEL_FILE

if TYPE_CHECKING:
    from pipelines.serve.app import ServerState

log = logging.getLogger("pipelines.serve.admin")
MIN_TOKEN_CHARS = 16  # a guessable token is no credential


class Refusal(Exception):
    """An /admin request turned away: `status` the HTTP code, `reason` the metric label."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


def read_token(cfg: AdminConfig) -> str | None:
    """The configured token, or None (admin off). A token file that is named but unreadable,
    empty or short is an error naming the key, not a silently open or closed API."""
    if cfg.token_file:
        path = Path(cfg.token_file)
        try:
            token = path.read_text().strip()
        except OSError as err:
            raise PipelineError(
                f"config key 'serve.admin.token_file' = {cfg.token_file!r}: cannot read it: "
                f"{err.strerror or err}"
            ) from None
        where = f"config key 'serve.admin.token_file' = {cfg.token_file!r}: the file"
    else:
        token = os.environ.get(cfg.token_env, "").strip()
        if not token:
            return None
        where = f"environment variable {cfg.token_env} (serve.admin.token_env)"
    if len(token) < MIN_TOKEN_CHARS:
        raise PipelineError(
            f"{where} holds a token of {len(token)} characters: expected at least "
            f"{MIN_TOKEN_CHARS} (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    return token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def check_exposure(cfg: ServeConfig, token: str | None) -> None:
    """Refuse to start with the admin API on a non-loopback address and no token."""
    if cfg.allow_reload and token is None and not is_loopback(cfg.host):
        raise PipelineError(
            f"config keys 'serve.host' = {cfg.host!r}, 'serve.allow_reload' = true: the admin "
            f"API on a non-loopback address needs a token (environment variable "
            f"{cfg.admin.token_env} or serve.admin.token_file); or set serve.allow_reload=false"
        )


class AdminGate:
    """The admin API's token and export root, read once at start."""

    def __init__(self, cfg: ServeConfig) -> None:
        self.token = read_token(cfg.admin)
        check_exposure(cfg, self.token)
        self.token_env = cfg.admin.token_env
        self.root: Path | None = None
        if cfg.admin.export_root:
            root = Path(cfg.admin.export_root).resolve()
            if not root.is_dir():
                raise PipelineError(
                    f"config key 'serve.admin.export_root' = {cfg.admin.export_root!r}: "
                    "not a directory"
                )
            self.root = root

    def authorize(self, header: str | None) -> None:
        if self.token is None:
            raise Refusal(
                403,
                "off",
                f"admin API off: no token configured (environment variable {self.token_env} "
                "or serve.admin.token_file)",
            )
        scheme, _, credential = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise Refusal(401, "no_credential", "admin API: send 'Authorization: Bearer <token>'")
        # constant time: the answer's timing says nothing about how much of a guess matched
        if not hmac.compare_digest(credential.strip().encode(), self.token.encode()):
            raise Refusal(403, "wrong_token", "admin API: wrong token")

    def reload_target(self, folder: str) -> Path:
        """`folder` resolved inside the export root, with the files the loader reads."""
        if self.root is None:
            raise Refusal(
                403,
                "no_export_root",
                "field 'export_dir': serve.admin.export_root is not set, so only the folder "
                "being served reloads (send no export_dir)",
            )
        target = (self.root / folder).resolve()
        for path in (target, *(target / name for name in (CARD_FILE, MODEL_FILE, REFERENCE_FILE))):
            if not path.resolve().is_relative_to(self.root):
                raise Refusal(
                    403,
                    "outside_root",
                    f"field 'export_dir': {folder!r} resolves to {path.resolve()}, outside "
                    f"serve.admin.export_root ({self.root})",
                )
        return target


class AdminGuard:
    """ASGI middleware of the /admin mount: every route under it, present or added later,
    answers only a request carrying the token."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            state = scope["app"].state.server
            try:
                state.admin.authorize(Headers(scope=scope).get("authorization"))
            except Refusal as refusal:
                await refuse(state, refusal, scope)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def refuse(state: ServerState, refusal: Refusal, scope: Scope) -> JSONResponse:
    """Count, log (never the token or the credential sent) and answer a refusal."""
    state.metrics.admin_refusals.labels(reason=refusal.reason).inc()
    client = scope.get("client") or ("?", 0)
    log.warning(
        "admin: refused %s %s from %s: %s", scope["method"], scope["path"], client[0], refusal
    )
    headers = {"www-authenticate": "Bearer"} if refusal.status == 401 else None
    return JSONResponse({"error": str(refusal)}, status_code=refusal.status, headers=headers)

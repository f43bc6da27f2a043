"""Run the app on uvicorn: bind the socket first (so port 0 resolves to a real port before
anything is printed), print the URL once the model is loaded and warmed, exit 2 with one line
when it cannot be loaded."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable

import uvicorn

from pipelines.errors import PipelineError
from pipelines.serve.app import ServerState, create_app
from pipelines.serve.config import ServeConfig


def announce(state: ServerState) -> None:
    model = state.holder.current
    version = model.version if model else "?"
    # the line scripts and tests wait for: the URL is its last word
    print(f"serving {version} at {state.url}", flush=True)
    if model and model.card.get("variant") == "int8_dynamic" and state.cfg.batching:
        # measured: up to 0.0056 between a row scored alone and in a batch of 512
        print(
            "note: serve: an int8_dynamic model quantizes activations per call, so a row's "
            "score depends on the rows batched with it; fp32 and int8_static do not",
            file=sys.stderr,
            flush=True,
        )


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise PipelineError(
            f"config keys 'serve.host' = {host!r}, 'serve.port' = {port}: cannot listen there: "
            f"{err.strerror or err} (0 picks a free port)"
        ) from None
    sock.set_inheritable(True)
    return sock


def build_server(
    cfg: ServeConfig, on_ready: Callable[[ServerState], None] = announce
) -> tuple[uvicorn.Server, socket.socket, ServerState]:
    app = create_app(cfg)  # config errors (the admin token among them) before taking the port
    sock = bind(cfg.host, cfg.port)
    state: ServerState = app.state.server
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    state.url = f"http://{host}:{sock.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level=cfg.log_level,
            access_log=False,  # a log line per request costs as much as scoring it
            lifespan="on",
            timeout_graceful_shutdown=30,
        )
    )
    state.on_ready = on_ready

    def fatal(message: str) -> None:
        print(f"error: serve: {message}", file=sys.stderr, flush=True)
        state.exit_code = 2
        server.should_exit = True

    state.on_fatal = fatal
    return server, sock, state


def serve(cfg: ServeConfig) -> int:
    """Serve until SIGINT/SIGTERM; the exit code (0, or 2 when the model could not load)."""
    server, sock, state = build_server(cfg)
    server.run(sockets=[sock])
    return state.exit_code

"""Services the emulator does not implement itself (S3, STS, ...) served by moto in-process.

Requests without an ``X-Amz-Target`` of ours are handed to moto's WSGI application, which picks the
service from the request's signature. moto is a dependency of the emulator's distribution
(distributions/emulator/pyproject.toml), loaded on the first such request.
"""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from ecs_emulator import iam_simulation
from ecs_emulator.server import Reply, json_reply

_app: Any = None
_lock = threading.Lock()


def _moto_app() -> Any:
    global _app  # noqa: PLW0603 - one moto application per process, as moto's backends are global
    with _lock:
        if _app is None:
            from moto import server

            _app = server.DomainDispatcherApplication(server.create_backend_app)  # type: ignore[attr-defined]
        return _app


def handle(method: str, path: str, headers: Mapping[str, str], body: bytes, port: int) -> Reply:
    """Serve one request with moto's WSGI application (IAM's policy simulator, which moto lacks, here)."""
    if iam_simulation.is_simulation(method, path, headers, body):
        return iam_simulation.handle(path, body)
    try:
        app = _moto_app()
    except ImportError:
        message = "This service is served by moto, which is not installed: install airflow-ecs-executor-emulator"
        return json_reply(501, {"message": message})
    raw_path, _, query = path.partition("?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote(raw_path),
        "RAW_URI": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": headers.get("Content-Type", ""),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for key, value in headers.items():
        name = key.upper().replace("-", "_")
        # The body reaches moto de-chunked, with its real length.
        if name not in ("CONTENT_TYPE", "CONTENT_LENGTH", "TRANSFER_ENCODING"):
            environ[f"HTTP_{name}"] = value
    captured: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured["status"] = int(status.split(" ", 1)[0])
        captured["headers"] = response_headers

    chunks = app(environ, start_response)
    try:
        payload = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close:
            close()
    return Reply(captured["status"], payload, headers=captured["headers"])

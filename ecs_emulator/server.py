"""The HTTP front: AWS JSON 1.1 protocol for ECS and CloudWatch Logs, plus the control API.

Requests are routed by ``X-Amz-Target``. The order of checks follows AWS: authentication (a SigV4
signature verified for real, ``sigv4.py``), then throttling, then the request's own validity, then
the operation. Browsers get nothing: a request with an ``Origin`` or fetch-metadata header, and
every CORS preflight, is refused, and no answer carries an ``Access-Control-*`` header. A fault drawn for the call may
replace the answer (5xx, throttling, a reset connection) or follow it (a lost response: the work
is done, the client never hears back).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from ecs_emulator.errors import (
    AccessDeniedException,
    AwsError,
    SerializationException,
    ServerException,
    ThrottlingException,
    UnknownOperationException,
)
from ecs_emulator.faults import FaultPlan
from ecs_emulator.profile import Profile
from ecs_emulator.shapes import check_request, check_response
from ecs_emulator.sigv4 import AuthFailure, Verified, current_principal

_log = logging.getLogger(__name__)
CONTROL_PREFIX = "/_emulator/"
# X-Amz-Target prefixes of the JSON-protocol services moto serves behind the same endpoint.
MOTO_JSON_TARGETS = frozenset({"TrentService", "AmazonSQS", "AWSEvents"})
TASK_CREDENTIALS_PREFIX = "/_task-credentials/"  # no S3 bucket name starts with "_"
_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/")


class ExpiredTokenException(AwsError):
    """The caller's temporary credentials have expired."""

    code = "ExpiredTokenException"


@dataclass
class Reply:
    """One HTTP answer, or the instruction not to answer."""

    status: int
    body: bytes
    content_type: str = "application/x-amz-json-1.1"
    after: str | None = None  # "reset": close with RST instead of answering; "hold": answer never sent
    hold_seconds: float = 0.0
    headers: list[tuple[str, str]] | None = None


def _json(status: int, payload: Any, content_type: str = "application/x-amz-json-1.1") -> Reply:
    return Reply(status, json.dumps(payload, separators=(",", ":")).encode(), content_type)


def _error(err: AwsError) -> Reply:
    return _json(err.status, err.body())


# -- refusals of authentication, in each protocol's own shape ---------------------------------------
# JSON protocols (ECS, CloudWatch Logs, KMS, SQS, EventBridge): the "Common Errors" of each API
# reference: IncompleteSignature, InvalidSignatureException, MissingAuthenticationToken(Exception),
# UnrecognizedClientException, ExpiredTokenException.
_JSON_CODES = {"MissingAuthenticationToken": "MissingAuthenticationTokenException"}
_JSON_STATUS = {"MissingAuthenticationTokenException": 403}
# Query protocol (STS, ...): the same errors in XML, named as the query APIs name them.
_QUERY_CODES = {
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "UnrecognizedClientException": "InvalidClientTokenId",
    "ExpiredTokenException": "ExpiredToken",
}
# S3 (S3 API reference, "Error responses"): what is not listed is 403.
_S3_STATUS = {
    "InvalidRequest": 400,
    "InvalidArgument": 400,
    "InvalidToken": 400,
    "ExpiredToken": 400,
    "XAmzContentSHA256Mismatch": 400,
    "IncompleteBody": 400,
    "AuthorizationQueryParametersError": 400,
}


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def auth_error(failure: AuthFailure, protocol: str) -> Reply:
    """The refusal of a request that failed authentication; ``protocol``: json, query or s3."""
    request_id = str(uuid.uuid4())
    if protocol == "json":
        code = _JSON_CODES.get(failure.code, failure.code)
        return _json(_JSON_STATUS.get(code, 400), {"__type": code, "message": failure.message})
    if protocol == "query":
        code = _QUERY_CODES.get(failure.code, failure.code)
        body = (
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
            f"<Code>{code}</Code><Message>{_xml_escape(failure.message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return Reply(403, body.encode(), "text/xml")
    code = "AccessDenied" if failure.code == "MissingAuthenticationToken" else failure.code
    message = (
        "Access Denied" if code == "AccessDenied" and failure.code == "MissingAuthenticationToken" else failure.message
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{_xml_escape(message)}</Message>"
        f"<RequestId>{request_id}</RequestId></Error>"
    )
    return Reply(_S3_STATUS.get(code, 403), body.encode(), "application/xml")


Handlers = Mapping[str, Callable[[dict[str, Any]], dict[str, Any]]]


class Host(Protocol):
    """What the dispatcher needs of the emulator around it.

    One implementation (``Emulator``), against the house rule, on purpose: the server names what it
    needs without importing the emulator, which imports the server (no import cycle).
    """

    profile: Profile
    faults: FaultPlan
    validate_responses: bool
    rng: random.Random

    def count(self, api: str, what: str) -> None: ...

    def take_token(self, api: str) -> bool: ...

    def record_shape_problems(self, api: str, problems: list[str]) -> None: ...

    def authenticate(self, method: str, path: str, headers: Mapping[str, str], body: bytes, service: str) -> Verified:
        """The verified signer of a request, or ``AuthFailure``."""
        ...


class Dispatcher:
    """Turns one request into one reply; knows nothing of sockets.

    ``services`` maps an ``X-Amz-Target`` prefix to (service name, operation handlers).
    """

    def __init__(self, emulator: Host, services: Mapping[str, tuple[str, Handlers]]) -> None:
        self.emulator = emulator
        self.services = services

    def aws(self, target: str, body: bytes, headers: Mapping[str, str], *, path: str = "/") -> Reply:
        prefix, _, op = target.partition(".")
        entry = self.services.get(prefix)
        em = self.emulator
        if entry is None:
            return _error(UnknownOperationException(f"Unsupported service target {prefix!r}."))
        service, handlers = entry
        handler = handlers.get(op)
        if handler is None:
            return _error(UnknownOperationException(f"Operation {op} is not supported."))
        em.count(op, "calls")
        try:
            verified = em.authenticate("POST", path, headers, body, service)
        except AuthFailure as failure:
            em.count(op, f"auth.{failure.code}")
            return auth_error(failure, "json")
        if em.faults.credentials_expired():
            em.count(op, "expired_credentials")
            return _error(ExpiredTokenException("The security token included in the request is expired"))
        denied = _access_denied(em, service, op)
        if denied is not None:
            return denied
        latency = em.profile.latency_for(op)
        if latency is not None:
            time.sleep(latency.sample(em.rng))
        fault = em.faults.api_fault(op)
        if fault == "throttle" or not em.take_token(op):
            em.count(op, "throttled")
            return _error(ThrottlingException())
        if fault == "connection_reset":
            em.count(op, "connection_reset")
            return Reply(0, b"", after="reset")
        if fault == "server_error":
            em.count(op, "server_error")
            return _error(ServerException("Service Unavailable. Please try again later."))
        try:
            params = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError):
            return _error(SerializationException("Start of structure or map found where not expected."))
        principal = current_principal.set(verified.principal)  # who asked, for handlers that care
        try:
            check_request(service, op, params)
            result = handler(params)
        except AwsError as err:
            em.count(op, f"error.{err.code}")
            return _error(err)
        except Exception:  # a bug in the emulator must answer 500, never kill the server
            _log.exception("%s failed", op)
            em.count(op, "error.internal")
            return _error(ServerException("An internal error occurred in the emulator."))
        finally:
            current_principal.reset(principal)
        if em.validate_responses:
            problems = check_response(service, op, result)
            if problems:
                em.record_shape_problems(op, problems)
        reply = _json(200, result)
        if fault == "lost_response":
            em.count(op, "lost_response")
            reply.after = "hold"
            reply.hold_seconds = em.profile.faults.lost_response_hold
        return reply


def _access_denied(em: Host, service: str, op: str) -> Reply | None:
    """An injected ``access_denied`` fault: IAM's answer to a caller whose policies do not allow the action.

    Authorisation follows authentication and comes before throttling and validation; ECS and CloudWatch
    Logs both answer ``AccessDeniedException`` (HTTP 400) in their JSON protocol (the services' "Common
    Errors" pages).
    """
    if not em.faults.access_denied(op):
        return None
    em.count(op, "access_denied")
    action = f"{service}:{op}"
    return _error(
        AccessDeniedException(
            f"The caller is not authorized to perform: {action} because no identity-based policy allows "
            f"the {action} action"
        )
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Small request/response pairs on keep-alive connections: without TCP_NODELAY, Nagle's
    # algorithm and the peer's delayed ACK add about 40 ms to every call.
    disable_nagle_algorithm = True
    server: EmulatorHTTPServer
    received_body: bytes | None = None  # the request log's view of the request being served
    recorded = False

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("%s " + format, self.address_string(), *args)

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = self._chunked_body()
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
        self.received_body = body  # for the request log
        return body

    def _chunked_body(self) -> bytes:
        # HTTP/1.1 chunked transfer coding (botocore streams S3 uploads this way).
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailer fields
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk

    def parse_request(self) -> bool:
        """Parse as usual, then refuse whatever a web browser sends: the emulator serves SDKs only.

        A page open in the developer's browser can send "simple" cross-origin requests (GET, or
        POST as text/plain) to 127.0.0.1 without asking, and would read the answer if it carried
        ``Access-Control-Allow-Origin``. Browsers mark their requests (``Origin`` on cross-origin
        and POST requests, ``Sec-Fetch-*`` fetch metadata); the AWS SDKs never send those.
        """
        if not super().parse_request():
            return False
        lower = {k.lower() for k in self.headers}
        browser = "origin" in lower or any(k.startswith("sec-fetch-") for k in lower)
        if self.command != "OPTIONS" and not browser:
            return True
        self._body()  # read what was sent, so the connection stays in step
        what = "CORS preflight (OPTIONS)" if self.command == "OPTIONS" else "a request from a web browser"
        self._send(
            _json(
                403,
                {"message": f"The emulator refuses {what}: it serves AWS SDKs only and allows no cross-origin access."},
                "application/json",
            )
        )
        return False

    def _send(self, reply: Reply) -> None:
        self._record(reply)  # before the answer leaves: a client that has its answer finds its line
        self.send_response(reply.status)
        if reply.headers is not None:
            for key, value in reply.headers:
                lower = key.lower()
                # No CORS header ever leaves the emulator (moto's S3 reflects the Origin).
                if lower.startswith("access-control-"):
                    continue
                if lower not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(key, value)
        else:
            self.send_header("Content-Type", reply.content_type)
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.send_header("Content-Length", str(len(reply.body)))
        # Headers and body leave in one write, so a response is one segment where it fits.
        self._headers_buffer.append(b"\r\n")  # type: ignore[attr-defined]
        if self.command != "HEAD":
            self._headers_buffer.append(reply.body)  # type: ignore[attr-defined]
        self.flush_headers()

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST: the client sees "connection reset".
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def do_POST(self) -> None:
        body = self._body()
        if self.path.startswith(CONTROL_PREFIX):
            self._send(self.server.control(self.command, self.path, dict(self.headers), body))
            return
        target = self.headers.get("X-Amz-Target")
        # JSON-protocol services the emulator does not implement (KMS, SQS, EventBridge) are moto's
        # too; any other target is answered UnknownOperationException by the dispatcher, as AWS does.
        if not target or target.partition(".")[0] in MOTO_JSON_TARGETS:
            self._send(self.server.other(self.command, self.path, dict(self.headers), body))
            return
        reply = self.server.dispatcher.aws(target, body, dict(self.headers), path=self.path)
        if reply.after == "reset":
            self._reset()
        elif reply.after == "hold":
            # The work is done but the answer is lost: hold the connection, then drop it unanswered.
            time.sleep(reply.hold_seconds)
            self._reset()
        else:
            self._send(reply)

    def do_GET(self) -> None:
        body = self._body()
        if self.path.startswith(TASK_CREDENTIALS_PREFIX) and self.command == "GET":
            self._send(self.server.task_credentials(self.path, dict(self.headers)))
        elif self.path.startswith(CONTROL_PREFIX):
            self._send(self.server.control(self.command, self.path, dict(self.headers), body))
        else:
            self._send(self.server.other(self.command, self.path, dict(self.headers), body))

    do_PUT = do_GET
    do_DELETE = do_GET
    do_HEAD = do_GET

    def handle_one_request(self) -> None:
        """Serve one request; with a request log (``requestlog.py``), then write its line."""
        log = self.server.request_log
        if log is None:
            super().handle_one_request()
            return
        log.begin()
        self.received_body = None
        self.recorded = False
        self.command = ""  # stays empty when no request line arrives
        super().handle_one_request()
        self._record(None)  # no answer was sent (a reset or lost response)

    def _record(self, reply: Reply | None) -> None:
        log = self.server.request_log
        if log is None or self.recorded or not self.command or self.received_body is None:
            return
        self.recorded = True
        log.record(
            method=self.command,
            path=self.path,
            headers=dict(self.headers),
            body=self.received_body,
            status=reply.status if reply is not None else None,
            reply_body=reply.body if reply is not None else None,
        )

    def finish(self) -> None:
        with contextlib.suppress(OSError):  # the connection was reset on purpose, or by the client
            super().finish()


class RequestRecorder(Protocol):
    """What the handler needs of a request log (``requestlog.RequestLog``)."""

    def begin(self) -> None: ...

    def record(
        self,
        *,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        status: int | None,
        reply_body: bytes | None,
    ) -> None: ...


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP/1.1 server with keep-alive, bound to 127.0.0.1."""

    request_log: RequestRecorder | None = None  # set by the emulator when it keeps one
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(
        self,
        port: int,
        dispatcher: Dispatcher,
        control: Callable[[str, str, dict[str, str], bytes], Reply],
        other: Callable[[str, str, dict[str, str], bytes], Reply],
        task_credentials: Callable[[str, dict[str, str]], Reply],
    ) -> None:
        # Loopback only: the emulator is a development tool and must never listen on a network.
        super().__init__(("127.0.0.1", port), _Handler)
        self.dispatcher = dispatcher
        self.control = control
        self.other = other
        self.task_credentials = task_credentials
        self._thread: threading.Thread | None = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="ecs-emulator-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread:
            self._thread.join(timeout=5)


def json_reply(status: int, payload: Any) -> Reply:
    """A plain JSON answer (the control API)."""
    return _json(status, payload, "application/json")

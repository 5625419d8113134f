"""Verifying AWS Signature Version 4 on every request the emulator serves.

The signature is recomputed with botocore's own signer (``SigV4Auth``: canonical request, string
to sign, signing key) from what arrived: the method, the raw path and query, the headers the
client says it signed, and the body. Both ways the SDKs sign are accepted: the ``Authorization``
header and the query string of a presigned URL. For S3 the payload hash is the
``X-Amz-Content-SHA256`` header: a hex SHA-256 (checked against the body), ``UNSIGNED-PAYLOAD``,
or an ``aws-chunked`` stream (``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``, whose chunk signatures are
checked, or ``STREAMING-UNSIGNED-PAYLOAD-TRAILER``).

Sources: "Create a signed AWS API request" and "Elements of an AWS API request signature"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html,
https://docs.aws.amazon.com/IAM/latest/UserGuide/signing-elements.html), S3's "Authenticating
Requests (AWS Signature Version 4)" with its header, query-string and chunked-upload pages
(https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import unquote

from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials

ALGORITHM: Final = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED: Final = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
STREAMING_SIGNED_TRAILER: Final = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
STREAMING_UNSIGNED_TRAILER: Final = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
_EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()
# How far a request's X-Amz-Date may be from the emulator's clock. "In most cases, a request must
# reach AWS within five minutes of the time stamp in the request" (signing-elements.html); S3
# answers RequestTimeTooSkewed beyond 15 minutes (S3 API reference, "Error responses").
MAX_SKEW_SECONDS: Final = {"s3": 15 * 60}
DEFAULT_MAX_SKEW_SECONDS: Final = 5 * 60
# A presigned URL is valid for at most seven days (X-Amz-Expires, S3 query-string auth page).
MAX_PRESIGN_SECONDS: Final = 7 * 24 * 3600
_AUTH_HEADER = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<signature>[0-9a-f]{64})\s*$"
)
_TIMESTAMP = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Principal:
    """Who signed a request: the emulator's own key, or a task's temporary one."""

    access_key_id: str
    role_arn: str | None = None  # the task role whose credentials signed; None for the emulator's key
    task_arn: str | None = None


@dataclass(frozen=True)
class SigningKey:
    """What the emulator knows about one access key ID."""

    secret_access_key: str
    principal: Principal
    session_token: str | None = None  # required, and must match, when set
    expires_at: float | None = None  # epoch seconds


@dataclass(frozen=True)
class Verified:
    """A request whose signature checked out."""

    principal: Principal
    service: str
    region: str
    body: bytes  # the payload, decoded from aws-chunked where it was sent so


# The signer of the request being served (set by the dispatcher around each ECS and Logs handler),
# for checks that depend on who asks: the emulator's own key, or a task role.
current_principal: ContextVar[Principal | None] = ContextVar("current_principal", default=None)


class AuthFailure(Exception):
    """A request the emulator refuses; ``code`` as the real service names it."""

    def __init__(self, code: str, message: str, service: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.service = service


@dataclass(frozen=True)
class _Parsed:
    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: list[str]
    signature: str
    timestamp: str
    presigned: bool
    expires: int | None
    canonical_query: str | None  # presigned: the query without X-Amz-Signature


class _ReceivedSigner(SigV4Auth):  # type: ignore[misc]  # botocore has no type hints
    """botocore's SigV4 signer, told which headers the client signed and what its payload hash was."""

    def __init__(self, credentials: Any, service: str, region: str, signed: list[str], payload_hash: str) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed
        self._payload_hash = payload_hash

    def headers_to_sign(self, request: Any) -> Any:
        header_map = super().headers_to_sign(request)
        for name in list(header_map.keys()):
            if name not in self._signed:
                del header_map[name]
        return header_map

    def payload(self, request: Any) -> str:
        return self._payload_hash


class _ReceivedS3Signer(_ReceivedSigner):
    # S3 signs the path as sent, without normalising it (botocore's S3SigV4Auth).
    _normalize_url_path = S3SigV4Auth._normalize_url_path


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _query_pairs(query: str) -> list[tuple[str, str]]:
    pairs = []
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((key, value))
    return pairs


def _parse(path: str, headers: Mapping[str, str]) -> _Parsed | None:
    """The signature's parts, from the Authorization header or a presigned URL; None when unsigned."""
    lower = _lower(headers)
    _, _, query = path.partition("?")
    auth = lower.get("authorization")
    pairs = _query_pairs(query)
    params = {unquote(k): unquote(v) for k, v in pairs}
    if (auth or "").startswith("AWS ") or ("AWSAccessKeyId" in params and "Signature" in params):
        # Signature Version 2 (boto3's default for presigned S3 URLs unless signature_version="s3v4"):
        # S3 refuses it for buckets created since June 2020; so does the emulator, always.
        raise AuthFailure(
            "InvalidRequest",
            "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256 "
            "(boto3: Config(signature_version='s3v4')).",
            "s3",
        )
    if auth is not None:
        match = _AUTH_HEADER.match(auth.strip())
        if match is None:
            raise AuthFailure(
                "IncompleteSignature",
                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
                f"parameters of the {ALGORITHM} algorithm.",
                None,
            )
        credential, signed, signature = match["credential"], match["signed"], match["signature"]
        timestamp = lower.get("x-amz-date", "")
        presigned, expires, canonical_query = False, None, None
    elif "X-Amz-Signature" in params or "X-Amz-Credential" in params:
        if params.get("X-Amz-Algorithm") != ALGORITHM:
            raise AuthFailure("AuthorizationQueryParametersError", f"X-Amz-Algorithm must be {ALGORITHM}.", None)
        try:
            credential, signed = params["X-Amz-Credential"], params["X-Amz-SignedHeaders"]
            signature, timestamp = params["X-Amz-Signature"], params["X-Amz-Date"]
            expires = int(params["X-Amz-Expires"])
        except (KeyError, ValueError):
            raise AuthFailure(
                "AuthorizationQueryParametersError",
                "Query-string authentication requires X-Amz-Credential, X-Amz-Date, X-Amz-Expires, "
                "X-Amz-SignedHeaders and X-Amz-Signature.",
                None,
            ) from None
        presigned = True
        kept = sorted((k, v) for k, v in pairs if unquote(k) != "X-Amz-Signature")
        canonical_query = "&".join(f"{k}={v}" for k, v in kept)
    else:
        return None
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise AuthFailure(
            "IncompleteSignature", f"Credential {credential!r} is not key/date/region/service/aws4_request.", None
        )
    return _Parsed(
        access_key_id=parts[0],
        date=parts[1],
        region=parts[2],
        service=parts[3],
        signed_headers=signed.split(";"),
        signature=signature,
        timestamp=timestamp,
        presigned=presigned,
        expires=expires,
        canonical_query=canonical_query,
    )


class Verifier:
    """Checks SigV4 signatures against the keys ``lookup`` knows.

    ``lookup(access_key_id)`` answers the key's secret and principal, or None for an unknown key.
    """

    def __init__(
        self, region: str, lookup: Callable[[str], SigningKey | None], clock: Callable[[], float] = time.time
    ) -> None:
        self.region = region
        self._lookup = lookup
        self._clock = clock

    def verify(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, *, service_hint: str | None = None
    ) -> Verified:
        """The signer of a request, or ``AuthFailure`` saying why it is refused."""
        parsed = _parse(path, headers)
        if parsed is None:
            raise AuthFailure("MissingAuthenticationToken", "Missing Authentication Token", service_hint)
        service = parsed.service
        lower = _lower(headers)
        now = self._clock()
        self._check_time(parsed, now)
        if parsed.region != self.region:
            raise AuthFailure(
                "SignatureDoesNotMatch" if service == "s3" else "InvalidSignatureException",
                f"Credential should be scoped to a valid region, not '{parsed.region}'. "
                f"The emulator serves '{self.region}'.",
                service,
            )
        if service_hint is not None and service != service_hint:
            raise AuthFailure(
                "InvalidSignatureException",
                f"Credential should be scoped to correct service: '{service_hint}'.",
                service,
            )
        key = self._lookup(parsed.access_key_id)
        if key is None:
            raise AuthFailure(
                "InvalidAccessKeyId" if service == "s3" else "UnrecognizedClientException",
                "The AWS Access Key Id you provided does not exist in our records."
                if service == "s3"
                else "The security token included in the request is invalid.",
                service,
            )
        token = (
            {unquote(k): unquote(v) for k, v in _query_pairs(path.partition("?")[2])}.get("X-Amz-Security-Token")
            if parsed.presigned
            else lower.get("x-amz-security-token")
        )
        if key.session_token is not None and not hmac.compare_digest(
            (token or "").encode(), key.session_token.encode()
        ):
            raise AuthFailure(
                "InvalidToken" if service == "s3" else "UnrecognizedClientException",
                "The provided token is malformed or otherwise invalid."
                if service == "s3"
                else "The security token included in the request is invalid.",
                service,
            )
        if key.expires_at is not None and now >= key.expires_at:
            raise AuthFailure(
                "ExpiredToken" if service == "s3" else "ExpiredTokenException",
                "The provided token has expired."
                if service == "s3"
                else "The security token included in the request is expired",
                service,
            )
        required = {"host"} | ({"x-amz-date"} if not parsed.presigned else set())
        required |= {name for name in ("x-amz-target", "x-amz-security-token", "x-amz-content-sha256") if name in lower}
        missing = sorted(name for name in required if name not in parsed.signed_headers)
        if parsed.presigned:
            missing = [m for m in missing if m != "x-amz-security-token"]  # sent in the query instead
        if missing:
            raise AuthFailure(
                "SignatureDoesNotMatch" if service == "s3" else "InvalidSignatureException",
                f"The request must sign these headers: {', '.join(missing)}.",
                service,
            )
        payload_hash, decoded = self._payload(parsed, lower, body, service)
        expected = self._signature(method, path, headers, body, parsed, key, payload_hash)
        if not hmac.compare_digest(expected.encode(), parsed.signature.encode()):
            raise AuthFailure(
                "SignatureDoesNotMatch" if service == "s3" else "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method."
                if service == "s3"
                else "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
                service,
            )
        if payload_hash == STREAMING_SIGNED:
            decoded = _signed_chunks(body, parsed, key, expected)
        return Verified(principal=key.principal, service=service, region=parsed.region, body=decoded)

    # -- the parts ---------------------------------------------------------------------------------
    def _check_time(self, parsed: _Parsed, now: float) -> None:
        service = parsed.service
        try:
            stamp = datetime.strptime(parsed.timestamp, _TIMESTAMP).replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise AuthFailure(
                "AccessDenied" if service == "s3" else "IncompleteSignature",
                f"X-Amz-Date must be a {ALGORITHM} timestamp (YYYYMMDDTHHMMSSZ), not {parsed.timestamp!r}.",
                service,
            ) from None
        if parsed.timestamp[:8] != parsed.date:
            raise AuthFailure(
                "SignatureDoesNotMatch" if service == "s3" else "InvalidSignatureException",
                f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{parsed.date}' != '{parsed.timestamp[:8]}'.",
                service,
            )
        if parsed.presigned:
            assert parsed.expires is not None
            if not 1 <= parsed.expires <= MAX_PRESIGN_SECONDS:
                raise AuthFailure(
                    "AuthorizationQueryParametersError",
                    "X-Amz-Expires must be between 1 and 604800 seconds.",
                    service,
                )
            if now > stamp + parsed.expires:
                raise AuthFailure("AccessDenied", "Request has expired", service)
            if stamp > now + MAX_SKEW_SECONDS.get(service, DEFAULT_MAX_SKEW_SECONDS):
                raise AuthFailure("AccessDenied", "Request is not valid yet", service)
            return
        skew = MAX_SKEW_SECONDS.get(service, DEFAULT_MAX_SKEW_SECONDS)
        if abs(now - stamp) > skew:
            when = datetime.fromtimestamp(now, UTC).strftime(_TIMESTAMP)
            if service == "s3":
                raise AuthFailure(
                    "RequestTimeTooSkewed",
                    "The difference between the request time and the current time is too large.",
                    service,
                )
            raise AuthFailure(
                "InvalidSignatureException",
                f"Signature expired: {parsed.timestamp} is now earlier than {when} ({when} - {skew // 60} min.)"
                if stamp < now
                else f"Signature not yet current: {parsed.timestamp} is still later than {when} "
                f"({when} + {skew // 60} min.)",
                service,
            )

    def _payload(self, parsed: _Parsed, lower: Mapping[str, str], body: bytes, service: str) -> tuple[str, bytes]:
        """The payload hash to sign with, and the payload (aws-chunked decoded)."""
        if parsed.presigned:
            return (UNSIGNED_PAYLOAD if service == "s3" else hashlib.sha256(body).hexdigest()), body
        declared = lower.get("x-amz-content-sha256")
        if declared is None:
            if service == "s3":
                raise AuthFailure(
                    "InvalidRequest", "Missing required header for this request: x-amz-content-sha256", service
                )
            return hashlib.sha256(body).hexdigest(), body
        if service == "s3" and declared == UNSIGNED_PAYLOAD:
            return declared, body
        if service == "s3" and declared == STREAMING_UNSIGNED_TRAILER:
            return declared, _unsigned_chunks(body)
        if service == "s3" and declared == STREAMING_SIGNED:
            return declared, body  # decoded, chunk signatures checked, once the seed signature holds
        if re.fullmatch(r"[0-9a-f]{64}", declared):
            actual = hashlib.sha256(body).hexdigest()
            if not hmac.compare_digest(actual, declared):
                raise AuthFailure(
                    "XAmzContentSHA256Mismatch" if service == "s3" else "InvalidSignatureException",
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                    service,
                )
            return declared, body
        raise AuthFailure(
            "InvalidArgument" if service == "s3" else "InvalidSignatureException",
            f"x-amz-content-sha256 must be a SHA-256 hex digest or UNSIGNED-PAYLOAD, not {declared[:80]!r}.",
            service,
        )

    def _signature(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        parsed: _Parsed,
        key: SigningKey,
        payload_hash: str,
    ) -> str:
        raw_path, _, query = path.partition("?")
        host = _lower(headers).get("host", "")
        request = AWSRequest(method=method, url=f"http://{host}{raw_path}", headers=dict(headers), data=body)
        request.context["timestamp"] = parsed.timestamp
        signer_class = _ReceivedS3Signer if parsed.service == "s3" else _ReceivedSigner
        signer = signer_class(
            BotocoreCredentials(parsed.access_key_id, key.secret_access_key),
            parsed.service,
            parsed.region,
            parsed.signed_headers,
            payload_hash,
        )
        # The query exactly as sent (its pairs sorted, as botocore's signer sorts them); a presigned
        # URL's without its signature.
        canonical_query = (
            parsed.canonical_query
            if parsed.canonical_query is not None
            else "&".join(f"{k}={v}" for k, v in sorted(_query_pairs(query)))
        )
        canonical = signer.canonical_request(request).split("\n")
        canonical[2] = canonical_query
        # botocore takes the payload hash from an X-Amz-Content-SHA256 header when one is present;
        # ours is the same value, checked against the body above.
        canonical[-1] = payload_hash
        canonical_request = "\n".join(canonical)
        string_to_sign = signer.string_to_sign(request, canonical_request)
        return str(signer.signature(string_to_sign, request))


def _read_chunks(body: bytes) -> list[tuple[int, str, bytes]]:
    """(size, chunk extension, data) of each chunk of an aws-chunked body, the final empty one included."""
    chunks: list[tuple[int, str, bytes]] = []
    at = 0
    while True:
        end = body.find(b"\r\n", at)
        if end < 0:
            raise AuthFailure("IncompleteBody", "The aws-chunked body ends inside a chunk header.", "s3")
        size_text, _, extension = body[at:end].decode("latin-1").partition(";")
        try:
            size = int(size_text, 16)
        except ValueError:
            raise AuthFailure("IncompleteBody", "An aws-chunked chunk size is not hexadecimal.", "s3") from None
        data = body[end + 2 : end + 2 + size]
        if len(data) != size:
            raise AuthFailure("IncompleteBody", "The aws-chunked body is shorter than its chunks say.", "s3")
        chunks.append((size, extension, data))
        at = end + 2 + size
        if size == 0:
            return chunks
        if body[at : at + 2] != b"\r\n":
            raise AuthFailure("IncompleteBody", "An aws-chunked chunk does not end with CRLF.", "s3")
        at += 2


def _unsigned_chunks(body: bytes) -> bytes:
    return b"".join(data for _, _, data in _read_chunks(body))


def _signed_chunks(body: bytes, parsed: _Parsed, key: SigningKey, seed: str) -> bytes:
    """The payload of a signed aws-chunked body, each chunk's signature checked.

    Each chunk signature chains from the previous one, the first from the seed signature (S3,
    "Signature Calculations for the Authorization Header: Transferring Payload in Multiple Chunks").
    """
    signing_key = _signing_key(key.secret_access_key, parsed.date, parsed.region, parsed.service)
    scope = f"{parsed.date}/{parsed.region}/{parsed.service}/aws4_request"
    previous = seed
    out: list[bytes] = []
    for _, extension, data in _read_chunks(body):
        name, _, given = extension.partition("=")
        if name != "chunk-signature":
            raise AuthFailure("SignatureDoesNotMatch", "An aws-chunked chunk carries no chunk-signature.", "s3")
        string_to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                parsed.timestamp,
                scope,
                previous,
                _EMPTY_SHA256,
                hashlib.sha256(data).hexdigest(),
            ]
        )
        expected = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, given.strip()):
            raise AuthFailure(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
                "s3",
            )
        previous = expected
        out.append(data)
    return b"".join(out)


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key

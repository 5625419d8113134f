"""Every request is signed with the emulator's key (or a task role's), and browsers get nothing.

What AWS answers, and the sources the emulator follows:
- SigV4 and its errors: https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html and
  https://docs.aws.amazon.com/IAM/latest/UserGuide/signing-elements.html ("a request must reach AWS
  within five minutes of the time stamp"); the JSON APIs' common errors
  (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/CommonErrors.html:
  IncompleteSignature, InvalidSignatureException, MissingAuthenticationTokenException,
  UnrecognizedClientException, ExpiredTokenException).
- S3: https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html (AccessDenied,
  SignatureDoesNotMatch, InvalidAccessKeyId, RequestTimeTooSkewed after 15 minutes),
  https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html (presigned URLs),
  https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html (aws-chunked uploads).
- Task role credentials: https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html
  (the SDK's container credentials provider reads AWS_CONTAINER_CREDENTIALS_FULL_URI with
  AWS_CONTAINER_AUTHORIZATION_TOKEN; botocore accepts a loopback http URL).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import io
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from ecs_emulator import Emulator
from ecs_emulator.runners import STRIPPED_ENV
from tests.helpers import PYTHON, aws_client, presign_s3, sign, wait_stopped

# The emulator imports no Airflow: these run once, on the newest Airflow only (make test budget).
pytestmark = pytest.mark.newest_only
ECS_TARGET = "AmazonEC2ContainerServiceV20141113."
BUCKET = "task-logs"
SECRET_OBJECT = b"remote task log: secret-ish content"


def _raw(
    em: Emulator, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", em.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _client(service: str, em: Emulator, **overrides: Any) -> Any:
    kwargs = {**em.client_kwargs(), **overrides}
    return boto3.client(service, **kwargs, config=Config(retries={"total_max_attempts": 1}))


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


@pytest.fixture
def s3_with_data(emulator: Emulator) -> Any:
    s3 = aws_client("s3", emulator, read_timeout=60)  # moto's first call imports its S3 (seconds on a busy machine)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="dag/run/task.log", Body=SECRET_OBJECT)
    return s3


# -- ECS and CloudWatch Logs (JSON) --------------------------------------------------------------
def test_unsigned_json_requests_are_refused(emulator: Emulator) -> None:
    for service, call in (("ecs", "list_clusters"), ("logs", "describe_log_groups")):
        client = boto3.client(service, **emulator.client_kwargs(), config=Config(signature_version=UNSIGNED))
        with pytest.raises(ClientError) as exc:
            getattr(client, call)()
        assert _code(exc) == "MissingAuthenticationTokenException"


def test_wrong_secret_or_unknown_key_is_refused(emulator: Emulator) -> None:
    wrong_secret = _client("ecs", emulator, aws_secret_access_key="x" * 40)
    with pytest.raises(ClientError) as exc:
        wrong_secret.list_clusters()
    assert _code(exc) == "InvalidSignatureException"
    assert "does not match the signature you provided" in str(exc.value)
    unknown = _client("logs", emulator, aws_access_key_id="AKIAUNKNOWNUNKNOWN12")
    with pytest.raises(ClientError) as exc:
        unknown.describe_log_groups()
    assert _code(exc) == "UnrecognizedClientException"
    # The key of another emulator is unknown here.
    with Emulator("fast", runner="simulated") as other:
        with pytest.raises(ClientError) as exc:
            _client(
                "ecs", emulator, aws_access_key_id=other.access_key_id, aws_secret_access_key=other.secret_access_key
            ).list_clusters()
        assert _code(exc) == "UnrecognizedClientException"
    assert emulator.ecs.task_rows() == []
    assert _client("ecs", emulator).list_clusters()["clusterArns"] == []


@pytest.mark.parametrize("minutes", [-6, 6], ids=["stale", "future"])
def test_a_skewed_date_is_refused(emulator: Emulator, minutes: int) -> None:
    body = b'{"clusterName": "skewed"}'
    headers = {"X-Amz-Target": ECS_TARGET + "CreateCluster", "Content-Type": "application/x-amz-json-1.1"}
    when = datetime.now(UTC) + timedelta(minutes=minutes)
    status, _, payload = _raw(
        emulator, "POST", "/", body, sign(emulator, "POST", "/", body, headers, service="ecs", when=when)
    )
    answer = json.loads(payload)
    assert (status, answer["__type"]) == (400, "InvalidSignatureException")
    assert "Signature expired" in answer["message"] or "not yet current" in answer["message"]
    assert _client("ecs", emulator).list_clusters()["clusterArns"] == []  # nothing was created


def test_a_body_changed_after_signing_is_refused(emulator: Emulator) -> None:
    signed_for = b'{"clusterName": "a"}'
    headers = sign(
        emulator,
        "POST",
        "/",
        signed_for,
        {"X-Amz-Target": ECS_TARGET + "CreateCluster", "Content-Type": "application/x-amz-json-1.1"},
        service="ecs",
    )
    status, _, payload = _raw(emulator, "POST", "/", b'{"clusterName": "b"}', headers)
    assert (status, json.loads(payload)["__type"]) == (400, "InvalidSignatureException")
    # Another operation under the same signature is refused too: X-Amz-Target is signed.
    headers["X-Amz-Target"] = ECS_TARGET + "DeleteCluster"
    status, _, payload = _raw(emulator, "POST", "/", signed_for, headers)
    assert (status, json.loads(payload)["__type"]) == (400, "InvalidSignatureException")
    assert _client("ecs", emulator).list_clusters()["clusterArns"] == []


def test_expired_credentials_fault_still_answers_expired_token(emulator: Emulator) -> None:
    emulator.inject("expired_credentials", seconds=30)
    with pytest.raises(ClientError) as exc:
        _client("ecs", emulator).list_clusters()
    assert _code(exc) == "ExpiredTokenException"


# -- S3 and the other moto services ----------------------------------------------------------------
def test_s3_without_signature_reads_nothing(emulator: Emulator, s3_with_data: Any) -> None:
    for path in ("/", f"/{BUCKET}", f"/{BUCKET}/dag/run/task.log", f"/{BUCKET}?list-type=2"):
        status, headers, body = _raw(emulator, "GET", path)
        assert status == 403, path
        assert b"<Code>AccessDenied</Code>" in body
        assert BUCKET.encode() not in body and SECRET_OBJECT not in body
        assert not [h for h in headers if h.startswith("access-control-")]
    anonymous = boto3.client("s3", **emulator.client_kwargs(), config=Config(signature_version=UNSIGNED))
    with pytest.raises(ClientError) as exc:
        anonymous.list_buckets()
    assert _code(exc) == "AccessDenied"
    # Unsigned writes are refused too, and change nothing.
    status, _, _ = _raw(emulator, "PUT", f"/{BUCKET}/dag/run/task.log", b"overwritten")
    assert status == 403
    assert s3_with_data.get_object(Bucket=BUCKET, Key="dag/run/task.log")["Body"].read() == SECRET_OBJECT


def test_s3_wrong_secret_unknown_key_or_skew_is_refused(emulator: Emulator, s3_with_data: Any) -> None:
    with pytest.raises(ClientError) as exc:
        _client("s3", emulator, aws_secret_access_key="y" * 40).list_buckets()
    assert _code(exc) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as exc:
        _client("s3", emulator, aws_access_key_id="AKIAUNKNOWNUNKNOWN12").list_buckets()
    assert _code(exc) == "InvalidAccessKeyId"
    when = datetime.now(UTC) - timedelta(minutes=16)
    headers = sign(emulator, "GET", "/", b"", {}, service="s3", when=when)
    status, _, body = _raw(emulator, "GET", "/", b"", headers)
    assert status == 403 and b"<Code>RequestTimeTooSkewed</Code>" in body
    assert BUCKET.encode() not in body


def test_sts_without_signature_is_refused_in_the_query_protocol(emulator: Emulator) -> None:
    anonymous = boto3.client("sts", **emulator.client_kwargs(), config=Config(signature_version=UNSIGNED))
    with pytest.raises(ClientError) as exc:
        anonymous.get_caller_identity()
    assert _code(exc) == "MissingAuthenticationToken"
    with pytest.raises(ClientError) as exc:
        _client("sts", emulator, aws_secret_access_key="z" * 40).get_caller_identity()
    assert _code(exc) == "SignatureDoesNotMatch"


# -- browsers ----------------------------------------------------------------------------------
def test_cross_origin_simple_post_is_refused_without_cors_headers(emulator: Emulator, s3_with_data: Any) -> None:
    # What a web page can send without a preflight: the curl (text/plain POST with an Origin).
    for path in ("/", f"/{BUCKET}", "/_emulator/faults"):
        status, headers, body = _raw(
            emulator,
            "POST",
            path,
            b'{"kind": "expired_credentials"}',
            {"Origin": "http://evil.example", "Content-Type": "text/plain"},
        )
        assert status == 403, path
        assert not [h for h in headers if h.startswith("access-control-")], headers
        assert BUCKET.encode() not in body and SECRET_OBJECT not in body
    # A GET a page makes with fetch() (fetch metadata, no Origin on a same-site GET) is refused too.
    status, headers, body = _raw(
        emulator, "GET", "/", headers={"Sec-Fetch-Mode": "cors", "Sec-Fetch-Site": "cross-site"}
    )
    assert status == 403 and BUCKET.encode() not in body
    assert emulator.faults.snapshot()["credentials_expired"] is False


def test_cors_preflight_is_refused(emulator: Emulator) -> None:
    for path in ("/", f"/{BUCKET}", "/_emulator/faults"):
        status, headers, _ = _raw(
            emulator,
            "OPTIONS",
            path,
            headers={
                "Origin": "http://evil.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-ecs-emulator-token",
            },
        )
        assert status == 403, path
        assert not [h for h in headers if h.startswith("access-control-")], headers
    # Without an Origin too: OPTIONS is nothing an SDK sends.
    assert _raw(emulator, "OPTIONS", "/")[0] == 403


# -- S3 uploads as the SDK sends them ---------------------------------------------------------------
def test_boto3_uploads_and_presigned_urls_are_accepted(emulator: Emulator, s3_with_data: Any) -> None:
    s3 = s3_with_data
    s3.put_object(Bucket=BUCKET, Key="small", Body=b"x" * 10)
    s3.put_object(Bucket=BUCKET, Key="checksummed", Body=b"y" * 100, ChecksumAlgorithm="SHA256")
    big = bytes(range(256)) * (6 * 4096)  # 6 MiB: a multipart upload of two parts
    s3.upload_fileobj(io.BytesIO(big), BUCKET, "big", Config=TransferConfig(multipart_threshold=5 * 2**20))
    assert s3.get_object(Bucket=BUCKET, Key="big")["Body"].read() == big

    # Presigned URLs with SigV4 (boto3 presigns S3 with SigV2 unless told; SigV2 is refused).
    v2_url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "small"}, ExpiresIn=60)
    with pytest.raises(urllib.error.HTTPError) as v2:
        urllib.request.urlopen(v2_url, timeout=10)
    assert v2.value.code == 400 and b"<Code>InvalidRequest</Code>" in v2.value.read()
    s3 = boto3.client("s3", **emulator.client_kwargs(), config=Config(signature_version="s3v4"))
    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": "presigned"}, ExpiresIn=60)
    # (urllib would label the body a form, which moto then reads as one: say what it is.)
    request = urllib.request.Request(
        put_url, data=b"via a presigned URL", method="PUT", headers={"Content-Type": "application/octet-stream"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert not [h for h in response.headers if h.lower().startswith("access-control-")]
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": "presigned"}, ExpiresIn=60)
    with urllib.request.urlopen(get_url, timeout=10) as response:
        assert response.read() == b"via a presigned URL"

    tampered = (
        get_url.replace("Key=presigned", "Key=other") if "Key=" in get_url else get_url.replace("/presigned?", "/big?")
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(tampered, timeout=10)
    assert refused.value.code == 403 and b"SignatureDoesNotMatch" in refused.value.read()

    # Made 10 minutes ago: valid for 900 s it is still good, for 300 s it has expired.
    when = datetime.now(UTC) - timedelta(minutes=10)
    with urllib.request.urlopen(presign_s3(emulator, f"/{BUCKET}/presigned", when=when, expires=900), timeout=10) as r:
        assert r.read() == b"via a presigned URL"
    short = presign_s3(emulator, f"/{BUCKET}/presigned", when=when, expires=300)
    with pytest.raises(urllib.error.HTTPError) as expired:
        urllib.request.urlopen(short, timeout=10)
    assert expired.value.code == 403 and b"Request has expired" in expired.value.read()


def _chunk_signature(signing_key: bytes, timestamp: str, scope: str, previous: str, data: bytes) -> str:
    # As the S3 "sigv4-streaming" page defines it; written here independently of the emulator's code.
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256-PAYLOAD",
            timestamp,
            scope,
            previous,
            hashlib.sha256(b"").hexdigest(),
            hashlib.sha256(data).hexdigest(),
        ]
    )
    return hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def test_signed_aws_chunked_upload_is_verified_chunk_by_chunk(emulator: Emulator, s3_with_data: Any) -> None:
    chunks = [b"a" * 70000, b"b" * 1000]
    now = datetime.now(UTC)
    timestamp, date = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    path = f"/{BUCKET}/chunked"
    decoded_length = sum(len(c) for c in chunks)

    def body(seed: str, corrupt: bool = False) -> bytes:
        key = hmac.new(f"AWS4{emulator.secret_access_key}".encode(), date.encode(), hashlib.sha256).digest()
        for part in ("us-east-1", "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        scope = f"{date}/us-east-1/s3/aws4_request"
        out, previous = b"", seed
        for data in [*chunks, b""]:
            previous = _chunk_signature(key, timestamp, scope, previous, data)
            sent = (b"c" * len(data)) if corrupt and data else data
            out += f"{len(data):x};chunk-signature={previous}\r\n".encode() + sent + b"\r\n"
        return out

    base = {
        "X-Amz-Content-SHA256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(decoded_length),
    }
    headers = sign(emulator, "PUT", path, b"", base, service="s3", when=now)
    seed = headers["Authorization"].rsplit("Signature=", 1)[1]
    status, _, answer = _raw(emulator, "PUT", path, body(seed, corrupt=True), headers)
    assert status == 403 and b"SignatureDoesNotMatch" in answer
    status, _, answer = _raw(emulator, "PUT", path, body(seed), headers)
    assert status == 200, answer
    assert s3_with_data.get_object(Bucket=BUCKET, Key="chunked")["Body"].read() == b"".join(chunks)


# -- task role credentials -----------------------------------------------------------------------
TASK_PROGRAM = """
import json, os
import boto3
from botocore.exceptions import NoCredentialsError
out = {"inherited": sorted(k for k in os.environ if k in %(stripped)r)}
out["values"] = sorted(os.environ.values())
try:
    out["arn"] = boto3.client("sts").get_caller_identity()["Arn"]
    out["buckets"] = [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
    out["clusters"] = boto3.client("ecs").list_clusters()["clusterArns"]
except NoCredentialsError as exc:
    out["error"] = type(exc).__name__
print(json.dumps(out), flush=True)
"""


def test_a_task_signs_with_its_task_role_credentials_and_never_sees_the_emulators(
    emulator: Emulator, ecs: Any, s3_with_data: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The emulator's own key is in the environment of the process that runs it (as in a shell
    # after `eval "$(python -m ecs_emulator env)"`): tasks must not inherit it.
    for name, value in emulator.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_PROFILE", "developer")
    role = "arn:aws:iam::123456789012:role/airflow-task"
    ecs.create_cluster(clusterName="c")
    emulator.register_container_instances("c")
    container = {
        "name": "main",
        "image": "python:3.11-slim",
        "memory": 256,
        "command": [PYTHON, "-c", TASK_PROGRAM % {"stripped": sorted(STRIPPED_ENV)}],
    }
    ecs.register_task_definition(family="with-role", taskRoleArn=role, containerDefinitions=[container])
    ecs.register_task_definition(family="no-role", containerDefinitions=[container])
    with_role = ecs.run_task(cluster="c", taskDefinition="with-role")["tasks"][0]["taskArn"]
    no_role = ecs.run_task(cluster="c", taskDefinition="no-role")["tasks"][0]["taskArn"]

    def output(arn: str) -> dict[str, Any]:
        task = wait_stopped(ecs, "c", arn, timeout=60)
        row = next(r for r in emulator.tasks() if r["taskArn"] == arn)
        assert task["containers"][0]["exitCode"] == 0, row["containers"][0]["tail"]
        return dict(json.loads(row["containers"][0]["tail"][-1]))

    seen = output(with_role)
    task_id = with_role.rsplit("/", 1)[1]
    assert seen["arn"] == f"arn:aws:sts::123456789012:assumed-role/airflow-task/{task_id}"
    assert seen["buckets"] == [BUCKET]
    assert seen["clusters"] == [ecs.describe_clusters(clusters=["c"])["clusters"][0]["clusterArn"]]
    assert [k for k in seen["inherited"] if not k.startswith("AWS_CONTAINER_")] == []
    assert emulator.secret_access_key not in seen["values"]
    assert emulator.access_key_id not in seen["values"]
    assert emulator.control_token not in seen["values"]

    # No task role, no credentials (as on ECS): boto3 finds none at all.
    unseen = output(no_role)
    assert unseen == {"inherited": [], "values": unseen["values"], "error": "NoCredentialsError"}
    assert emulator.secret_access_key not in unseen["values"]


def test_the_credentials_endpoint_needs_the_tasks_token(emulator: Emulator) -> None:
    credential_id, token = emulator.keys.task_slot(
        "arn:aws:ecs:us-east-1:123456789012:task/c/abc", "arn:aws:iam::123456789012:role/r"
    )
    path = f"/_task-credentials/{credential_id}"
    assert _raw(emulator, "GET", path, headers={"Authorization": "wrong"})[0] == 403
    assert _raw(emulator, "GET", path)[0] == 403
    status, _, body = _raw(emulator, "GET", path, headers={"Authorization": token})
    issued = json.loads(body)
    assert status == 200
    assert issued["AccessKeyId"].startswith("ASIA") and issued["Token"] and issued["Expiration"].endswith("Z")
    # Signed without the session token, the temporary key is refused.
    client = _client(
        "ecs", emulator, aws_access_key_id=issued["AccessKeyId"], aws_secret_access_key=issued["SecretAccessKey"]
    )
    with pytest.raises(ClientError) as exc:
        client.list_clusters()
    assert _code(exc) == "UnrecognizedClientException"
    client = _client(
        "ecs",
        emulator,
        aws_access_key_id=issued["AccessKeyId"],
        aws_secret_access_key=issued["SecretAccessKey"],
        aws_session_token=issued["Token"],
    )
    assert client.list_clusters()["clusterArns"] == []

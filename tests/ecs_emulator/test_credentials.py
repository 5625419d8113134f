"""The emulator's per-start credentials, its env file, ``ecs_emulator env`` and the control token."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ecs_emulator import Emulator
from ecs_emulator import credentials as creds
from ecs_emulator.emulator import ControlClient
from tests.helpers import aws_client

# The emulator imports no Airflow: these run once, on the newest Airflow only (make test budget).
pytestmark = pytest.mark.newest_only


def test_each_emulator_draws_its_own_credentials_and_token() -> None:
    with Emulator("fast", runner="simulated") as one, Emulator("fast", runner="simulated") as two:
        for em in (one, two):
            # Access key IDs: 'AKIA' (long-term key) and 16 uppercase letters or digits
            # (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-unique-ids).
            assert re.fullmatch(r"AKIA[A-Z0-9]{16}", em.access_key_id)
            assert re.fullmatch(r"[A-Za-z0-9+/]{40}", em.secret_access_key)
            assert len(em.control_token) >= 32
            assert em.client_kwargs() == {
                "endpoint_url": em.endpoint_url,
                "region_name": "us-east-1",
                "aws_access_key_id": em.access_key_id,
                "aws_secret_access_key": em.secret_access_key,
            }
            assert em.secret_access_key not in repr(em.credentials)
        assert one.access_key_id != two.access_key_id
        assert one.secret_access_key != two.secret_access_key
        assert one.control_token != two.control_token


def test_given_credentials_and_token_are_used() -> None:
    key = ("AKIAFIXEDFIXEDFIXED1", "s" * 40)
    with Emulator("fast", runner="simulated", credentials=key, control_token="tok-" + "x" * 40) as em:
        assert (em.access_key_id, em.secret_access_key) == key
        assert em.control_token == "tok-" + "x" * 40
        assert ControlClient(em.endpoint_url, token=em.control_token).health()["ok"] is True


def _control(em: Emulator, route: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(em.endpoint_url + "/_emulator/" + route, data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_control_api_refuses_requests_without_token_or_json() -> None:
    with Emulator("fast", runner="simulated") as em:
        fault = json.dumps({"kind": "expired_credentials", "seconds": 60}).encode()
        token = {creds.CONTROL_TOKEN_HEADER: em.control_token}
        refused = [
            ("no token", {"Content-Type": "application/json"}),
            ("wrong token", {"Content-Type": "application/json", creds.CONTROL_TOKEN_HEADER: "guess"}),
            # A web page can POST text/plain cross-origin without a preflight: never accepted.
            ("text/plain", {"Content-Type": "text/plain", **token}),
            ("form", {"Content-Type": "application/x-www-form-urlencoded", **token}),
        ]
        for what, headers in refused:
            status, payload = _control(em, "faults", fault, headers)
            assert status == 403, what
            assert "control API" in payload["message"], what
        status, payload = _control(em, "counters", None, {})
        assert status == 403 and "X-Ecs-Emulator-Token" in payload["message"]
        assert em.faults.snapshot() == {"injected": {}, "pending": [], "credentials_expired": False}
        assert aws_client("ecs", em).list_clusters()["clusterArns"] == []  # no fault reached ECS
        # With the token and JSON the same request is served.
        status, _ = _control(em, "faults", fault, {"Content-Type": "application/json", **token})
        assert status == 200
        assert em.faults.snapshot()["credentials_expired"] is True


def test_control_client_takes_its_token_from_argument_environment_or_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(creds.CONTROL_TOKEN_ENV, raising=False)
    with Emulator("fast", runner="simulated") as em:
        with pytest.raises(RuntimeError, match="no control token for the emulator on port"):
            ControlClient(em.endpoint_url).health()
        creds.write_env_file(creds.default_env_file(em.port), em.env())
        assert ControlClient(em.endpoint_url).health()["ok"] is True
        monkeypatch.setenv(creds.CONTROL_TOKEN_ENV, "stale")
        with pytest.raises(RuntimeError, match="403"):
            ControlClient(em.endpoint_url).health()
        assert ControlClient(em.endpoint_url, token=em.control_token).health()["ok"] is True


def _cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ECS_EMULATOR_CONTROL"))}
    env["HOME"] = str(home)
    return env


def test_cli_writes_a_private_env_file_that_env_prints_and_stop_removes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv(creds.CONTROL_TOKEN_ENV, raising=False)
    env = _cli_env(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecs_emulator", "--port", "0", "--runner", "simulated"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        assert "ECS emulator ready at http://127.0.0.1:" in lines[0]
        url = lines[0].split(" at ", 1)[1].split(" ", 1)[0]
        port = creds.port_of(url)
        path = tmp_path / ".cache" / "ecs-emulator" / f"127.0.0.1-{port}.env"
        assert str(path) in lines[1]
        assert f'eval "$(python -m ecs_emulator env --port {port})"' in lines[2]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        values = creds.read_env_file(path)
        assert set(values) == set(creds.ENV_FILE_NAMES)
        assert values["AWS_ENDPOINT_URL"] == url

        ControlClient(url).wait_ready()  # the token from the env file
        assert aws_client("ecs", url).list_clusters()["clusterArns"] == []

        out = subprocess.run(
            [sys.executable, "-m", "ecs_emulator", "env", "--port", str(port)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=True,
        )
        exported = dict(line.removeprefix("export ").split("=", 1) for line in out.stdout.splitlines())
        assert set(exported) == set(creds.ENV_FILE_NAMES)
        # What a shell gets from eval: the same values, ready for any AWS SDK.
        shell = subprocess.run(
            [
                "sh",
                "-c",
                'eval "$1"; printf "%s\\n" "$AWS_SECRET_ACCESS_KEY" "$ECS_EMULATOR_CONTROL_TOKEN"',
                "sh",
                out.stdout,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        assert shell.stdout.split() == [values["AWS_SECRET_ACCESS_KEY"], values["ECS_EMULATOR_CONTROL_TOKEN"]]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        assert proc.stdout is not None
        proc.stdout.close()
    assert not path.exists()
    gone = subprocess.run(
        [sys.executable, "-m", "ecs_emulator", "env", "--port", str(port)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert gone.returncode == 2
    assert f"no emulator runs on 127.0.0.1:{port}" in gone.stderr
    assert gone.stdout == ""


def test_env_refuses_a_stale_file(tmp_path: Path) -> None:
    path = tmp_path / "stale.env"
    creds.write_env_file(
        path,
        {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_ACCESS_KEY_ID": "AKIAOLDOLDOLDOLDOLD1",
            "AWS_SECRET_ACCESS_KEY": "x" * 40,
            "AWS_DEFAULT_REGION": "us-east-1",
            "ECS_EMULATOR_CONTROL_TOKEN": "old",
        },
    )
    out = subprocess.run(
        [sys.executable, "-m", "ecs_emulator", "env", "--env-file", str(path)],
        capture_output=True,
        text=True,
        env=_cli_env(tmp_path),
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    assert "does not answer" in out.stderr
    assert out.stdout == ""

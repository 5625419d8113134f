"""A throwaway PostgreSQL cluster on 127.0.0.1: the metadata database for several Airflow schedulers.

Airflow runs several schedulers at once only on a database with row locks that skip locked rows
(PostgreSQL; SQLite cannot). ``Postgres().start()`` creates a cluster in a temporary directory with
Debian's ``initdb`` and ``pg_ctl`` (``make postgres`` installs them), listening on 127.0.0.1 on a
free port with its Unix socket in that directory, and one database for Airflow; ``stop()`` stops the
server and removes the directory. PostgreSQL refuses to run as root, so as root (CI) the cluster
belongs to ``nobody``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

DATABASE = "airflow"
USER = "airflow"
UNPRIVILEGED = "nobody"
START_TIMEOUT = 60  # seconds pg_ctl waits for the server to accept connections
# Airflow's processes each keep a pool (5 + 10 overflow, sync and async): two schedulers, the API
# server, the DAG processor and the triggerer need more than PostgreSQL's default of 100.
MAX_CONNECTIONS = 300
# A throwaway cluster: durability is worth nothing here, speed is.
SERVER_SETTINGS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    f"max_connections={MAX_CONNECTIONS}",
    # A session waiting more than deadlock_timeout (1 s) for a lock is logged with the session holding it.
    "log_lock_waits=on",
)


class PostgresNotInstalled(RuntimeError):
    """PostgreSQL's server programs (initdb, pg_ctl) are not on this machine."""


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: on PATH, else Debian's newest version."""
    on_path = [shutil.which(name) for name in ("initdb", "pg_ctl")]
    if all(on_path):
        # Debian links them from /usr/local/bin or wraps them (pg_wrapper); the real ones sit together.
        real = Path(os.path.realpath(str(on_path[0]))).parent
        if (real / "pg_ctl").exists():
            return real
    # Debian installs the server programs outside PATH, one directory per major version.
    candidates = sorted(
        (p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if (p.parent / "pg_ctl").exists()),
        key=lambda bindir: _version_key(bindir / "initdb"),
    )
    if candidates:
        return candidates[-1]
    raise PostgresNotInstalled(
        "PostgreSQL's initdb and pg_ctl were found neither on PATH nor in /usr/lib/postgresql/<version>/bin. "
        "Several schedulers need PostgreSQL as Airflow's metadata database: run `make postgres` "
        "(installs Debian's postgresql package) or `apt-get install postgresql`."
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Postgres:
    """One PostgreSQL server and one database, in a temporary directory, until ``stop()``."""

    def __init__(self, *, database: str = DATABASE) -> None:
        self.database = database
        self.port = 0
        self.dir: Path | None = None
        self._password = secrets.token_hex(16)
        self._bindir: Path | None = None
        self._run_as: dict[str, Any] = {}

    @property
    def url(self) -> str:
        """The SQLAlchemy URL Airflow connects with (TCP on 127.0.0.1, password checked)."""
        if self.dir is None:
            raise RuntimeError("PostgreSQL is not running: call start() first")
        return f"postgresql+psycopg2://{USER}:{self._password}@127.0.0.1:{self.port}/{self.database}"

    @property
    def log_file(self) -> Path | None:
        return self.dir / "server.log" if self.dir else None

    def _run(self, program: str, *args: str) -> None:
        assert self._bindir is not None
        assert self.dir is not None
        result = subprocess.run(
            [str(self._bindir / program), *args],
            cwd=self.dir,
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"},
            **self._run_as,
        )
        if result.returncode != 0:
            log = self.log_file.read_text(errors="replace")[-2000:] if self.log_file and self.log_file.exists() else ""
            raise RuntimeError(
                f"PostgreSQL's {program} failed with exit code {result.returncode}:\n"
                f"{result.stdout}{result.stderr}{log}".rstrip()
            )

    def start(self) -> Postgres:
        """initdb, start on 127.0.0.1 on a free port, create the database."""
        self._bindir = find_bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="devstack-postgres-"))
        try:
            if os.geteuid() == 0:
                # initdb and postgres refuse to run as root: the cluster belongs to an unprivileged user.
                user = pwd.getpwnam(UNPRIVILEGED)
                os.chown(self.dir, user.pw_uid, user.pw_gid)
                self._run_as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
            pwfile = self.dir / "pwfile"
            pwfile.write_text(self._password + "\n")
            if self._run_as:
                os.chown(pwfile, self._run_as["user"], self._run_as["group"])
            # Local (Unix socket, in this directory) connections are trusted; TCP ones need the password.
            self._run(
                "initdb",
                "--pgdata",
                str(self.dir / "data"),
                "--username",
                USER,
                "--pwfile",
                str(pwfile),
                "--auth-local",
                "trust",
                "--auth-host",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--no-locale",
                "--no-sync",
            )
            pwfile.unlink()
            self.port = _free_port()
            options = f"-h 127.0.0.1 -p {self.port} -k {self.dir} " + " ".join(f"-c {s}" for s in SERVER_SETTINGS)
            self._run(
                "pg_ctl",
                "--pgdata",
                str(self.dir / "data"),
                "--log",
                str(self.log_file),
                "--options",
                options,
                "--wait",
                "--timeout",
                str(START_TIMEOUT),
                "start",
            )
            self._run("createdb", "--host", str(self.dir), "--port", str(self.port), "--username", USER, self.database)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown: connections are cut) and remove its directory."""
        if self.dir is None:
            return
        if (self.dir / "data" / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "--pgdata", str(self.dir / "data"), "--mode", "fast", "--wait", "stop")
            except RuntimeError:
                with contextlib.suppress(RuntimeError):
                    self._run("pg_ctl", "--pgdata", str(self.dir / "data"), "--mode", "immediate", "--wait", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def __enter__(self) -> Postgres:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

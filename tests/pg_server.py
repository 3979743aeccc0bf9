"""A throwaway PostgreSQL server on 127.0.0.1 for the tests (Debian's postgresql, started here).

`python tests/pg_server.py COMMAND...` runs COMMAND with TEST_POSTGRES_URL pointing at a fresh server
(tests/with_postgres.sh does this for the suite's second pass). In-process, `PostgresServer` is a
context manager; the marketplace tests start their own, with password authentication over TCP, so
that a wrong password fails as it would in production.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

SUPERUSER = "postgres"


def _bin_dir() -> Path:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: [int(x) for x in Path(p).parent.name.split(".")]
    )
    if not found:
        raise RuntimeError("The tests need a PostgreSQL server: apt-get install postgresql")
    return Path(found[-1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """initdb + pg_ctl in a temporary folder; `url` is a SQLAlchemy URL for the superuser.

    With `password`, TCP connections need it (scram-sha-256); the superuser still connects over the
    unix socket without one, which is how the tests build schemas and roles.
    """

    def __init__(self, *, password: str | None = None, timezone: str = "America/New_York"):
        self.bin = _bin_dir()
        self.password = password
        self.timezone = timezone
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="pg-"))
        self.data = self.root / "db"

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> PostgresServer:
        if os.getuid() == 0:
            os.chown(self.root, pwd.getpwnam("postgres").pw_uid, -1)
        auth = ["-A", "trust"] if self.password is None else ["--auth-host=scram-sha-256", "--auth-local=trust"]
        self._as_pg([str(self.bin / "initdb"), "-D", str(self.data), "-U", SUPERUSER, *auth])
        self.start()
        if self.password is not None:
            self.sql(f"ALTER ROLE {SUPERUSER} PASSWORD '{self.password}'")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c timezone={self.timezone} -c max_connections=200"
        )
        log = self.root / "server.log"
        self._as_pg([str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(log), "-w", "start"])

    def stop(self) -> None:
        """Stop at once (connections are cut, as when the machine goes away)."""
        if self.data.exists():
            self._as_pg([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"], check=False)

    def _as_pg(self, argv: list[str], check: bool = True) -> None:
        if os.getuid() == 0:  # initdb refuses to run as root
            argv = ["runuser", "-u", "postgres", "--", *argv]
        subprocess.run(argv, check=check, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    # -- using it ----------------------------------------------------------------------------
    def url(self, database: str = "postgres", user: str = SUPERUSER, password: str | None = None) -> str:
        secret = f":{password}" if password else (f":{self.password}" if self.password and user == SUPERUSER else "")
        return f"postgresql+psycopg://{user}{secret}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres"):  # type: ignore[no-untyped-def]
        """A psycopg connection as the superuser over the unix socket (autocommit)."""
        import psycopg

        return psycopg.connect(host=str(self.root), port=self.port, user=SUPERUSER, dbname=database, autocommit=True)

    def sql(self, statement: str, database: str = "postgres") -> None:
        with self.connect(database) as conn:
            conn.execute(statement)


def main(argv: list[str]) -> int:
    with PostgresServer() as server:
        version = subprocess.run([str(server.bin / "postgres"), "--version"], capture_output=True, text=True)
        print(f"PostgreSQL {version.stdout.split()[2]} on 127.0.0.1:{server.port}", flush=True)
        env = {**os.environ, "TEST_POSTGRES_URL": server.url()}
        return subprocess.run(argv, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

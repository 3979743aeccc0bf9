"""A throwaway redis-server on 127.0.0.1 for the job tests (Debian's redis-server, started here).

Like tests/pg_server.py for PostgreSQL: a fresh server in a temporary folder, on a free port, with a
password (so the tests can check that it never shows), no persistence, stopped at the end.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from pg_server import free_port

PASSWORD = "redis-pass-not-real-8c1f2e"


class RedisServer:
    def __init__(self, password: str = PASSWORD):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("The job tests need a Redis server: apt-get install redis-server")
        self.binary, self.password, self.port = binary, password, free_port()
        self.root = Path(tempfile.mkdtemp(prefix="redis-"))
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def __enter__(self) -> RedisServer:
        options = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        options += ["--dir", str(self.root), "--requirepass", self.password]
        self.proc = subprocess.Popen([self.binary, *options], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not self._answers():
            assert self.proc.poll() is None, f"redis-server exited with {self.proc.returncode}"
            assert time.monotonic() < deadline, "redis-server did not answer within 30 s"
            time.sleep(0.05)  # polling for the server to listen, not a stand-in for synchronisation
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)

    def client(self):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis.from_url(self.url)

    def flush(self) -> None:
        """Empty it: each test starts with an empty queue."""
        with self.client() as client:
            client.flushall()

    def _answers(self) -> bool:
        import redis

        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

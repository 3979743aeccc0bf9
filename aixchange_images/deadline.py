"""A wall-clock deadline for a whole HTTP call.

httpx times each connect, read and write on its own: a server that sends a byte every second keeps
a call with a 2 s timeout alive for as long as it likes. `DeadlineClient` gives every network
operation made inside `deadline(seconds)` at most the time left, and fails one past the end as a
read (or connect, or write) timeout, which the openai SDK reports as `APITimeoutError`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore2
import httpx2

_ends: ContextVar[float | None] = ContextVar("http_deadline", default=None)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """HTTP calls made in this block (in this thread) end `seconds` from now at the latest."""
    end = time.monotonic() + seconds
    outer = _ends.get()
    token = _ends.set(end if outer is None else min(end, outer))
    try:
        yield
    finally:
        _ends.reset(token)


def _left(timeout: float | None, error: type[Exception]) -> float | None:
    """The timeout for one network operation: the shorter of its own and what the deadline leaves."""
    end = _ends.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise error("The call ran past its deadline.")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore2.NetworkStream):
    def __init__(self, stream: httpcore2.NetworkStream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, httpcore2.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, httpcore2.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None) -> _Stream:
        left = _left(timeout, httpcore2.ConnectTimeout)
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _Backend(httpcore2.NetworkBackend):
    def __init__(self, backend: httpcore2.NetworkBackend):
        self._backend = backend

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, *args: Any, **kwargs: Any) -> _Stream:
        left = _left(timeout, httpcore2.ConnectTimeout)
        return _Stream(self._backend.connect_tcp(host, port, left, *args, **kwargs))

    def connect_unix_socket(self, path: str, timeout: float | None = None, *args: Any, **kwargs: Any) -> _Stream:
        left = _left(timeout, httpcore2.ConnectTimeout)
        return _Stream(self._backend.connect_unix_socket(path, left, *args, **kwargs))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _with_deadlines(transport: Any) -> Any:
    # httpx2 offers no public way to give its connection pool a network backend; the pool takes it
    # from this attribute for every connection it opens. A test drives a trickling server through it.
    pool = transport._pool
    pool._network_backend = _Backend(pool._network_backend)
    return transport


class DeadlineClient(httpx2.Client):
    """An httpx2 client (proxies from the environment included) whose calls keep to `deadline()`."""

    def _init_transport(self, *args: Any, **kwargs: Any) -> Any:
        return _with_deadlines(super()._init_transport(*args, **kwargs))

    def _init_proxy_transport(self, *args: Any, **kwargs: Any) -> Any:
        return _with_deadlines(super()._init_proxy_transport(*args, **kwargs))

    def __del__(self) -> None:  # as the SDK's own client does: a dropped provider's connections close
        with contextlib.suppress(Exception):
            if not self.is_closed:
                self.close()

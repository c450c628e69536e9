"""``deconflict serve --workers N``: N processes, each with its own listening socket.

uvicorn's own ``workers`` option shares one listening socket among its processes, and an
asyncio server accepts every connection waiting on it at once: whichever process wakes first
takes all of a burst of connections, and clients that keep their connections open (every
HTTP client library, every reverse proxy) then talk to one process while the others idle.
Here each process binds the port with ``SO_REUSEPORT``, so the kernel spreads connections
evenly over the processes. The parent process only starts the workers, starts a new one when
one dies, and stops them all on SIGINT or SIGTERM.

Written here because neither uvicorn nor Starlette offers it; gunicorn's ``reuse_port`` also
shares one socket among its workers.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from types import FrameType
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

if TYPE_CHECKING:
    from fastapi import FastAPI

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
GRACEFUL_SHUTDOWN_S = 5
"""Seconds a stopping server lets the requests in flight finish."""

ACCESS_LOGGER = "uvicorn.access"
SECRET_QUERY_PARAMETERS = frozenset({"access_token"})
REDACTED = "[redacted]"


def redact_query(target: str) -> str:
    """``target`` (a path with its query) with the value of every secret parameter replaced:
    the event stream takes its token as ``?access_token=``, and access logs are read by more
    people than tokens are given to. Names are compared decoded, as the app reads them
    (``access%5Ftoken`` is the same parameter)."""
    path, mark, query = target.partition("?")
    if not mark:
        return target
    pairs = []
    for pair in query.split("&"):
        name, equals, _value = pair.partition("=")
        if equals and unquote_plus(name) in SECRET_QUERY_PARAMETERS:
            pair = f"{name}={REDACTED}"
        pairs.append(pair)
    return f"{path}?{'&'.join(pairs)}"


class RedactTokens(logging.Filter):
    """Redacts secret query parameters in uvicorn's access log records. Its message is
    ``'%s - "%s %s HTTP/%s" %d'`` with the path (and query) as the third argument; any
    string argument that holds a query is redacted, so a change of that order still hides
    the token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_query(arg) if isinstance(arg, str) and "?" in arg else arg
                for arg in record.args
            )
        if isinstance(record.msg, str) and "?" in record.msg:
            record.msg = redact_query_in_text(record.msg)
        return True


def redact_query_in_text(text: str) -> str:
    """Redact each whitespace-separated word of ``text`` that holds a query."""
    return " ".join(redact_query(word) if "?" in word else word for word in text.split(" "))


def redact_access_log() -> None:
    """Install ``RedactTokens`` on uvicorn's access logger (once per process). Called when the
    app starts serving, after uvicorn configured its logging, in every worker."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())


def serve_app(app: FastAPI, host: str, port: int, log_level: str) -> None:
    """Serve ``app`` in this process until interrupted."""
    import uvicorn  # here: the command line imports this module's defaults at every start

    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )


def default_workers() -> int:
    """One process per core, at most four: each holds its own copy of the conflict index."""
    return max(1, min(os.cpu_count() or 1, 4))


def listening_socket(host: str, port: int, *, shared: bool = True) -> socket.socket:
    """A socket bound to ``host:port``. ``shared``: other processes of this user may bind it
    too, and the kernel shares incoming connections among them."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.set_inheritable(False)
    return sock


def _die_with(parent: int) -> None:
    """Have the kernel stop this worker (SIGTERM: a graceful stop) when the parent process
    dies, even by SIGKILL, so no worker is left holding the port. Linux only, through libc's
    ``prctl`` (the standard library has no binding for it)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the line above
        sys.exit(0)


def _worker(parent: int, host: str, port: int, log_level: str, ready: EventType) -> None:
    import uvicorn

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:  # the index is loaded and the socket listens
                ready.set()

    _die_with(parent)
    sock = listening_socket(host, port)
    config = uvicorn.Config(
        "deconflict.api.asgi:create",
        factory=True,
        log_level=log_level,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    Server(config).run(sockets=[sock])


def serve_workers(host: str, port: int, workers: int, log_level: str) -> int:
    """Run ``workers`` processes serving the app built from the environment
    (``deconflict.api.asgi``) until SIGINT or SIGTERM; returns an exit code."""
    # Fail here, once and clearly, on an address that cannot be bound. Bound without
    # SO_REUSEPORT, so that a port another serve's workers hold counts as taken: sharing it
    # would mix two deployments' answers on one address.
    listening_socket(host, port, shared=False).close()
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()
    exit_code = 0

    def start() -> tuple[BaseProcess, EventType]:
        ready = context.Event()
        process = context.Process(
            target=_worker, args=(os.getpid(), host, port, log_level, ready), daemon=False
        )
        process.start()
        return process, ready

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = dict(start() for _ in range(workers))
    announced = False
    try:
        while not stopping.wait(0.5):
            if not announced and all(ready.is_set() for ready in processes.values()):
                # Said once every worker listens: until then, a client connecting may be
                # held by a worker still loading the index.
                print(f"all {workers} workers are serving", file=sys.stderr, flush=True)
                announced = True
            for process, ready in list(processes.items()):
                if process.is_alive():
                    continue
                del processes[process]
                code = process.exitcode or 0
                if not ready.is_set():
                    # It would only die again (a bad database URL, not enough memory).
                    print(f"a worker exited at start-up (code {code}); stopping", file=sys.stderr)
                    exit_code = code or 1
                    stopping.set()
                    break
                print(f"a worker exited (code {code}); starting another", file=sys.stderr)
                replacement, replacement_ready = start()
                processes[replacement] = replacement_ready
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + 15
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return exit_code

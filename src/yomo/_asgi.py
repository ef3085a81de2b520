"""Serve an ASGI app with uvicorn on the running event loop (the zipper's own).

The monitor endpoint and the AI bridge are HTTP sides of a zipper: they must
share its loop, so they read its state without locks and stop with it. This
drives ``uvicorn.Server`` by its steps (``startup``, ``main_loop``,
``shutdown``) instead of ``serve()``, because ``serve()`` takes over SIGINT
and SIGTERM, which belong to whoever runs the zipper (``yomo serve`` installs
its own handlers). We bind the socket ourselves so that port 0 works, the
real address is known, and a taken port raises ``OSError`` instead of
uvicorn's ``sys.exit``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import TYPE_CHECKING, Any

from yomo.errors import ConfigError

if TYPE_CHECKING:
    import uvicorn

__all__ = ["AsgiServer", "parse_http_address", "serve_asgi"]

#: Seconds open HTTP requests get to finish when the server stops.
_GRACEFUL_SHUTDOWN = 2
#: Seconds an idle keep-alive connection stays open by default (uvicorn's default).
_KEEP_ALIVE = 5


class AsgiServer:
    """An ASGI app being served; ``address`` is where, ``await stop()`` ends it."""

    def __init__(
        self,
        server: uvicorn.Server,
        sock: socket.socket,
        task: asyncio.Task[None],
        name: str,
        log: logging.Logger,
    ) -> None:
        self._server = server
        self._sock = sock
        self._task = task
        self._name = name
        self._log = log
        host, port = sock.getsockname()[:2]
        self.address: tuple[str, int] = (host, port)
        """The bound ``(host, port)``; the real port when 0 was asked for."""

    @property
    def url(self) -> str:
        """``http://host:port`` of the server (IPv6 hosts in brackets)."""
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def stop(self) -> None:
        """Stop accepting, give open requests a moment, and release the port. Idempotent."""
        if self._task.done() and not self._server.started:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._server.started:
            self._server.started = False
            await self._server.shutdown(sockets=[self._sock])
            self._log.debug("%s on %s stopped", self._name, self.url)


def parse_http_address(value: str, *, what: str = "address") -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``[V6]:PORT`` as ``(host, port)``; a bare host is an error.

    Raises:
        ConfigError: the text is not of that shape or the port is not 0..65535.
    """
    text = value.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ConfigError(f"{what}: expected HOST:PORT (e.g. 127.0.0.1:8222), got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"{what}: write an IPv6 host in brackets, e.g. [::1]:8222, got {value!r}")
    port = int(port_text)
    if port > 65535:
        raise ConfigError(f"{what}: port {port} is out of range 0..65535")
    return host or "127.0.0.1", port


def _bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, sockaddr = infos[0]
    # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then,
    # and without it every small response waits ~40 ms for a delayed ACK (measured).
    sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def serve_asgi(
    app: Any,
    host: str,
    port: int,
    *,
    name: str,
    log: logging.Logger,
    keep_alive: int = _KEEP_ALIVE,
) -> AsgiServer:
    """Serve ``app`` on ``host:port`` from the running loop and return once it accepts.

    Args:
        app: any ASGI application (e.g. a ``starlette.applications.Starlette``).
        host, port: where to listen; port 0 picks a free port (see ``AsgiServer.address``).
        name: what to call the server in log lines, e.g. ``"monitor"``.
        log: where the "listening" line goes.
        keep_alive: seconds an idle keep-alive connection stays open (uvicorn's
            ``timeout_keep_alive``). A client reusing a connection just as the server
            closes it loses that request, so servers whose clients pool connections
            should keep them longer than the clients' own idle limit.

    Returns:
        The running server; ``await server.stop()`` ends it.

    Raises:
        OSError: the address cannot be bound (taken, not local, ...).
        ConfigError: the app's lifespan startup failed.
    """
    import uvicorn  # here, so that parse_http_address() does not load the HTTP stack

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,  # leave logging to the application
        access_log=False,
        lifespan="auto",
        ws="none",
        server_header=False,
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN,
        timeout_keep_alive=keep_alive,
    )
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    uvicorn_log = logging.getLogger("uvicorn.error")
    if uvicorn_log.level == logging.NOTSET:  # uvicorn's "Shutting down" lines are noise here
        uvicorn_log.setLevel(logging.WARNING)
    sock = _bind(host, port)
    try:
        await server.startup(sockets=[sock])
    except SystemExit:  # uvicorn exits when the app's lifespan startup fails
        sock.close()
        raise ConfigError(f"{name}: the HTTP app failed to start (see the log above)") from None
    except BaseException:
        sock.close()
        raise
    task = asyncio.get_running_loop().create_task(server.main_loop(), name=f"yomo-{name}")
    served = AsgiServer(server, sock, task, name, log)
    log.info("%s listening on %s", name, served.url)
    return served

"""Who may register with the zipper: the handshake policy, on either data path.

Go: core/server.go handshake, as a numbered pipeline: the first frame must be a
HandshakeFrame, then version negotiation, authentication (behind a per-address
brake), the client type, an LLM function's definition (its name becomes its
target), and the connector's ``store``. A refusal is answered with a
RejectedFrame (a ConnectToFrame for a redirect), counted under its reason in
``stats()["rejections_by_reason"]`` and logged without secrets and with the
client's strings clipped. What happens to an admitted client (routes, the
acknowledgement, its connection's life) is the zipper's (``yomo.zipper.server``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import time
from collections.abc import Callable
from typing import Any

from yomo.ai import FUNCTION_CALL_TAG, FunctionCallError, FunctionDefinition
from yomo.errors import (
    ConnectionClosedError,
    ConnectToError,
    ProtocolError,
    RejectedError,
    RemoteProtocolError,
)
from yomo.session.handshake import ZipperHandshake
from yomo.transport.connection import Connection
from yomo.transport.native import NativeServer
from yomo.wire import (
    ClientType,
    ConnectToFrame,
    Frame,
    HandshakeFrame,
    RejectedFrame,
    decode_frame,
)
from yomo.wire import metadata as md_keys

from .auth import AuthBrake, AuthFailed, authenticate
from .functions import DuplicateFunctionError, FunctionRegistry
from .hooks import check_version, default_version_negotiator
from .options import ZipperOptions
from .registered import (
    CLIENT_TYPE_NAMES,
    LOG_TEXT_LIMIT,
    AnyConnection,
    NativeClient,
    RegisteredClient,
    ZipperParts,
    clip,
    tags_for_log,
    type_name,
)

__all__ = ["Admission", "Refusal", "refusal_frame"]

Refusal = tuple[str, "HandshakeFrame | None", str, "str | None"]
"""Why a handshake is refused: (message to the client, its frame, reason counted, what
the log says instead of the message, or None for the message itself, "" for nothing)."""


class Admission:
    """The zipper's handshake policy: a registration for each admitted client, or why not.

    Args:
        options: the zipper's options (authenticators and their brake, the version
            negotiator, the handshake timeout, the largest frame).
        parts: the zipper's counters (refusals, handshakes, protocol errors), logger and
            registry (admitted clients are stored in it; it may refuse them).
        functions: the LLM functions registered by handshake.
    """

    def __init__(
        self, options: ZipperOptions, parts: ZipperParts, functions: FunctionRegistry
    ) -> None:
        self._stats = parts.stats
        self._log = parts.log
        self._connector = parts.connector
        self._functions = functions
        self._negotiate = options.version_negotiator or default_version_negotiator
        self._authenticators = tuple(options.authenticators)
        self._auth_brake = AuthBrake(options.auth_failures_per_second)
        self._handshake_timeout = options.handshake_timeout
        self._max_frame_size = options.quic.max_frame_size
        self._numbers = itertools.count(1)
        self._last_throttle_log = 0.0
        self._throttled_since_log = 0

    # -- the pure-Python path ----------------------------------------------

    async def handshake(
        self, conn: Connection, stopping: Callable[[], bool]
    ) -> RegisteredClient | None:
        """Read ``conn``'s HandshakeFrame and admit it, or refuse and close ``conn``.

        Returns the registered client (stored in the connector; its LLM function, if
        any, registered), or None when ``conn`` was refused, timed out or went away.
        """
        first = await self._first_frame(conn, stopping)
        if first is None:
            return None
        admitted = self.admit(first, conn)
        if isinstance(admitted, tuple):
            await self._reject(conn, *admitted)
            return None
        return admitted

    async def _first_frame(self, conn: Connection, stopping: Callable[[], bool]) -> Frame | None:
        try:
            return await asyncio.wait_for(conn.read_frame(), self._handshake_timeout)
        except asyncio.TimeoutError:
            self._stats.reject("handshake_timeout")
            message = f"handshake timeout: no HandshakeFrame within {self._handshake_timeout:g} s"
            self._log.warning("closed %s: %s", conn.remote_address, message)
            conn.close(message)
        except ProtocolError as exc:
            self._stats.protocol_errors += 1
            self._log.warning("closed %s: %s", conn.remote_address, clip(exc.message, 256))
            conn.close(exc.message)
        except ConnectionClosedError as exc:
            if not stopping():
                # the client went away, or ended its stream, before a whole HandshakeFrame
                self._stats.protocol_errors += 1
                self._log.info(
                    "closed %s before its handshake: %s", conn.remote_address, clip(exc.reason)
                )
            conn.close(f"closed before the handshake: {exc.reason}")
        return None

    async def _reject(
        self,
        conn: Connection,
        message: str,
        hf: HandshakeFrame | None,
        reason: str,
        logged: str | None = None,
    ) -> None:
        """Send ``message`` in a RejectedFrame, then close."""
        self._log_rejection(message, hf, conn.remote_address, reason, logged)
        with contextlib.suppress(ConnectionClosedError):  # gone already: nothing to tell
            conn.send_nowait(refusal_frame(message, reason))
            await _flush(conn)
        conn.close(message)

    # -- the native path -----------------------------------------------------

    def native_handshake(
        self, server: NativeServer, handshake_id: int, data: bytes, address: tuple[str, int]
    ) -> RegisteredClient | None:
        """Admit the handshake the native path read (its frame's bytes), or refuse it
        there; the caller accepts an admitted client on the native side."""
        try:
            first = decode_frame(data, max_frame_size=self._max_frame_size)
        except ProtocolError as exc:
            self._stats.protocol_errors += 1
            self._log.warning("closed %s: %s", address, exc.message)
            server.reject(handshake_id, None, exc.message)
            return None
        handle = NativeClient(server, 0, address)
        admitted = self.admit(first, handle)
        if isinstance(admitted, tuple):
            message, hf, reason, logged = admitted
            self._log_rejection(message, hf, address, reason, logged)
            server.reject(handshake_id, refusal_frame(message, reason).encode(), message)
            return None
        handle.number = admitted.number
        return admitted

    def native_refused(self, address: tuple[str, int], why: str, reason: str) -> None:
        """A connection the native path closed before registering it: log (and count) it
        as the pure-Python path does."""
        if why == "full":
            self.refused_full(address, reason)
        elif why == "fin":  # counted natively, as a protocol error
            self._log.info("closed %s before its handshake: %s", address, clip(reason))
        elif why == "closed":
            self._log.debug("closed %s: %s", address, reason)
        else:
            self._log.warning("closed %s: %s", address, clip(reason, 2 * LOG_TEXT_LIMIT))

    # -- both paths ----------------------------------------------------------

    def refused_full(self, address: tuple[str, int], message: str) -> None:
        """Count a connection refused by ``max_connections``; log the 1st and every 1000th."""
        self._stats.reject("max_connections")
        refused = self._stats.rejections_by_reason["max_connections"]
        if refused == 1 or refused % 1000 == 0:
            self._log.warning("refused %s: %s (%d refused so far)", address, message, refused)

    def connected(self, client: RegisteredClient, address: tuple[str, int]) -> None:
        """Count and log a client whose handshake was acknowledged."""
        self._stats.handshakes += 1
        tags = tags_for_log(client.tags)
        self._log.info(
            "connected: %s from %s%s",
            client.describe(),
            address,
            f", observes [{tags}]" if tags else "",
        )

    def admit(self, first: Frame, conn: AnyConnection) -> RegisteredClient | Refusal:
        """The handshake policy, on either data path: a registration, or why not.

        Go: core/server.go handshake (version, auth, client type, LLM function
        registration, wanted target). The caller registers the returned client (its LLM
        function, if any, is registered already), or rejects with the message (the last
        item is the reason counted in ``rejections_by_reason``).
        """
        # Go: core/server.go RejectReservedTagMiddleware applies to data frames once
        # connected; the handshake needs the auth brake, the clipped log and no secret.
        try:
            hf = ZipperHandshake().receive(first)
        except RemoteProtocolError as exc:
            return exc.message, None, "unexpected_frame", None
        try:  # Go: versionNegotiateFunc, which may answer ConnectTo
            check_version(self._negotiate, hf.version)
        except ConnectToError as exc:
            return exc.endpoint, hf, "redirect", None
        except RejectedError as exc:  # clipped in the log: the version is the client's
            return exc.reason, hf, "version", None
        merge = self._authenticate(conn.remote_address, hf)
        if isinstance(merge, tuple):
            return merge
        if hf.client_type not in CLIENT_TYPE_NAMES:
            return f"unknown client type 0x{hf.client_type:02x}", hf, "client_type", None
        definition: FunctionDefinition | None = None
        if hf.client_type == ClientType.STREAM_FUNCTION and hf.function_definition:
            try:
                definition = FunctionDefinition.from_bytes(hf.function_definition)
            except FunctionCallError as exc:
                return exc.message, hf, "function_definition", None
            # Go: core/server.go tryUseFunctionNameAsTarget: an LLM function gets tool
            # calls on 0xE002, targeted at its name.
            hf = dataclasses.replace(
                hf,
                wanted_target=hf.name,
                observe_data_tags=(*hf.observe_data_tags, FUNCTION_CALL_TAG),
            )
        if hf.wanted_target:
            merge[md_keys.WANTED_TARGET] = hf.wanted_target
        client = RegisteredClient(next(self._numbers), hf, merge, conn)
        refusal = self._store(client, hf)
        if refusal is not None:
            return refusal
        if definition is not None:
            try:
                self._functions.register(client.number, definition)
            except DuplicateFunctionError as exc:
                self._connector.remove(client.number)
                return exc.message, hf, "duplicate_function", None
            self._log.info("registered LLM function %r (%s)", definition.name, client.describe())
        return client

    def _authenticate(
        self, address: tuple[str, int], hf: HandshakeFrame
    ) -> dict[str, str] | Refusal:
        """The connection's metadata from its credential, or the refusal.

        Per source address the auth brake allows ``auth_failures_per_second`` failed
        checks; past that the handshake is refused unchecked, counted, and logged at
        most once a second. The presented credential is never logged.
        """
        if not self._authenticators:
            return {}
        host = address[0]
        now = time.monotonic()
        brake = self._auth_brake
        if not brake.allows(host, now):
            self._throttled_since_log += 1
            wait = brake.retry_after(host, now)
            message = (
                f"yomo: too many failed authentication attempts from {host}; retry in {wait:.1f} s"
            )
            if now - self._last_throttle_log >= 1.0:
                self._last_throttle_log = now
                self._log.warning(
                    "auth brake: refused %d handshake(s) unchecked in the last second "
                    "(latest from %s; %g failures/s allowed per address)",
                    self._throttled_since_log,
                    host,
                    brake.rate,
                )
                self._throttled_since_log = 0
            return message, hf, "auth_throttled", ""
        try:
            return dict(authenticate(self._authenticators, hf.auth_name, hf.auth_payload))
        except AuthFailed as exc:
            brake.failed(host, now)
            return exc.message, hf, "auth", exc.logged

    def _store(self, client: RegisteredClient, hf: HandshakeFrame) -> Refusal | None:
        """Go: core/server.go createConnection (connector.Store); it may refuse or redirect."""
        try:
            self._connector.store(client)
        except ConnectToError as exc:
            return exc.endpoint, hf, "redirect", None
        except RejectedError as exc:
            return exc.reason, hf, "connector", None
        # Plug-in isolation: a failing connector refuses this handshake, not the zipper.
        except Exception as exc:
            self._log.exception("connector: cannot store %s", client.describe())
            return f"the zipper cannot register the connection: {exc!r}", hf, "connector", None
        return None

    def _log_rejection(
        self,
        message: str,
        hf: HandshakeFrame | None,
        address: tuple[str, int],
        reason: str,
        logged: str | None = None,
    ) -> None:
        """Count a refusal; the log says ``logged`` (no secrets, client strings clipped;
        ``""``: not logged, e.g. the auth brake's refusals, summed up once a second)."""
        self._stats.reject(reason)
        if logged == "":
            return
        who = (
            f"{type_name(hf.client_type)} {clip(hf.name)!r} (id {clip(hf.id)})" if hf else "client"
        )
        text = clip(logged if logged is not None else message, 2 * LOG_TEXT_LIMIT)
        if reason == "redirect":
            self._log.info("redirected %s from %s to %s", who, address, text)
        else:
            self._log.warning("rejected %s from %s: %s", who, address, text)


def refusal_frame(message: str, reason: str) -> Frame:
    """What a refused handshake is answered with: ConnectTo for a redirect, else Rejected."""
    if reason == "redirect":
        return ConnectToFrame(endpoint=message)
    return RejectedFrame(message=message)


async def _flush(conn: Any, limit: float = 0.5) -> None:
    """Wait (bounded) until what was queued on ``conn`` has left, so a close doesn't eat it."""
    deadline = asyncio.get_running_loop().time() + limit
    while conn.send_backlog > 0 and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.02)

"""The session under Source, StreamFunction and mesh links: dial, handshake, read loop,
reconnect, re-send.

Over 400 lines for a reason: ``ClientCore`` is one state machine (connect,
supervise, redial, keep a paused zipper's connection, write) whose parts share
its connection, journal and state; its pure parts live apart (``policy.py``,
``address.py``, ``handshake.py``, ``dial.py``, ``journal.py``, ``errorlog.py``).

Go: core/client.go. A broken connection is redialled with exponential backoff
and jitter (first retry after about a second, like Go), each time with a fresh
connection id ``<client id>-<n>`` and the same observed tags. A rejection or a
deliberate close ends the client; so does a GoawayFrame. Writes during an
outage wait up to ``write_timeout`` and then raise, so nothing is lost silently.

A zipper that stops answering (killed, paused, cut off) is noticed within
``ReconnectPolicy.dead_after`` (1 s) while written data waits for its
acknowledgement, and redialled at once. Frames the zipper's transport never
acknowledged are written again on the new connection, first and in order
(``journal.py``); when the old zipper speaks again on the old connection by the
time the new one is up (it was only paused), the old one is kept and the new
one closed, so nothing goes twice.
Frames it acknowledged just before it went silent may have died with it: they
are counted and reported to the error handler (``FramesMayBeLostError``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from yomo.errors import (
    ConnectError,
    ConnectionClosedError,
    ConnectToError,
    FramesMayBeLostError,
    HandshakeError,
    ProtocolError,
    RejectedError,
    TimeoutError,
    YomoError,
)
from yomo.transport import dial
from yomo.transport.connection import Connection, TrackedConnection
from yomo.wire import DataFrame, Frame, GoawayFrame, RejectedFrame

from .address import join_address, parse_address
from .dial import Dialer, handshake
from .errorlog import RepeatedErrorLog
from .handshake import DEFAULT_HANDSHAKE_TIMEOUT, hello_frame, rejection
from .journal import DEFAULT_JOURNAL_BYTES, Journal
from .options import ClientKeywords, ClientOptions
from .policy import new_id

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "THREAD_PENDING_BYTES",
    "ClientCore",
    "ClientState",
    "ErrorHandler",
    "FrameHandler",
    "ItemsHandler",
]

ErrorHandler = Callable[[BaseException], Any]
#: Bytes a thread may hand to the loop without waiting (see ``send_from_thread``).
THREAD_PENDING_BYTES = 1024 * 1024
#: Frames the zipper acknowledged this long before it went silent may not have been routed.
ACK_WINDOW = 0.5
#: A watchdog tick this much late means the event loop was busy: silence is not judged.
LOOP_LAG = 0.1
#: After a connection is lost, seconds during which the client redials without delay
#: (a restarted zipper is back within the time its supervisor and start-up take,
#: several seconds on a busy machine; a redial into a dead port costs one packet)...
FAST_REDIAL = 10.0
#: ... each attempt's QUIC handshake bounded to this while the zipper is silent (a
#: dead port must not hold the next; a zipper that answers gets its full handshake).
FAST_HANDSHAKE = 0.5
FrameHandler = Callable[[DataFrame], Awaitable[None]]
#: ``on_items(items, i)``: handle the DataFrames ``(tag, metadata, payload)`` from
#: ``items[i]`` on; returns the index of the first other item (``len(items)`` if none).
ItemsHandler = Callable[[Sequence[Any], int], Awaitable[int]]


class ClientState(enum.Enum):
    """Where a client is in its life; a closed client cannot be reopened."""

    NEW = "new"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


class ClientCore:
    """One logical client: keeps a connection to the zipper up and moves frames."""

    def __init__(
        self,
        name: str,
        zipper_addr: str,
        client_type: int,
        *,
        observe_data_tags: Sequence[int] = (),
        wanted_target: str = "",
        on_frame: FrameHandler | None = None,
        on_items: ItemsHandler | None = None,
        dialer: Dialer | None = None,
        options: ClientOptions | None = None,
        **keywords: Unpack[ClientKeywords],
    ) -> None:
        self.options = ClientOptions.build(options, keywords)
        """What the client was configured with (``yomo.session.options``)."""
        self.name = name
        self.host, self.port = parse_address(zipper_addr)
        self.zipper_addr = join_address(self.host, self.port)
        self.client_type = client_type
        self.credential = self.options.credential
        self.observe_data_tags: tuple[int, ...] = tuple(observe_data_tags)
        self.wanted_target = wanted_target
        #: JSON of the LLM function definition sent in the handshake (field 0x09).
        self.function_definition = b""
        self.tls = self.options.tls
        self.quic = self.options.quic
        self.reconnect = self.options.reconnect
        self.write_timeout = self.options.write_timeout
        self.log = self.options.logger or logging.getLogger("yomo")
        self.on_frame = on_frame
        self.on_items = on_items
        """Takes received DataFrames in batches where the transport can (the native path)."""
        self.dialer: Dialer = dialer or dial
        """Opens connections: ``yomo.transport.dial``; tests pass an in-memory one."""
        self.client_id = new_id()
        self.connection_id = ""
        self.state = ClientState.NEW
        self._attempts = 0
        self._conn: Connection | None = None
        self._connected = asyncio.Event()
        self._closed = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._error_handlers: list[ErrorHandler] = []
        self._reconnected_handlers: list[Callable[[], Any]] = []
        self.final_error: BaseException | None = None
        self._callback_tasks: set[asyncio.Future[Any]] = set()
        self._default_errors = RepeatedErrorLog(self.log)
        self._thread_lock = threading.Lock()
        self._thread_pending = 0
        self._journal: Journal | None = None
        self._suspect = asyncio.Event()
        self._watchdog: asyncio.Task[None] | None = None
        self._unsent: list[bytes] = []

    # -- callbacks ---------------------------------------------------------

    def add_error_handler(self, fn: ErrorHandler) -> None:
        """Call ``fn(error)`` when a connection fails or the zipper rejects the client."""
        if not callable(fn):
            raise TypeError(f"yomo: error handler must be callable, got {fn!r}")
        self._error_handlers.append(fn)

    def add_reconnected_handler(self, fn: Callable[[], Any]) -> None:
        """Call ``fn()`` after every successful reconnect."""
        self._reconnected_handlers.append(fn)

    def _report(self, error: BaseException) -> None:
        if not self._error_handlers:
            self._default_errors.report(f"{self._kind} {self.name!r}", error)
            return
        for fn in self._error_handlers:
            try:
                result = fn(error)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._callback_tasks.add(task)
                    task.add_done_callback(self._callback_tasks.discard)
            # Isolation: the user's error handler failing must not break the client.
            except Exception:
                self.log.exception("error handler of %r failed", self.name)

    @property
    def _kind(self) -> str:
        return {0x5F: "source", 0x5D: "stream function", 0x5E: "mesh link"}.get(
            self.client_type, "client"
        )

    # -- connecting --------------------------------------------------------

    async def _dial_once(self, host: str, port: int, budget: float | None) -> Connection:
        settings = self.quic
        if budget is not None and budget < settings.handshake_timeout:
            # connect() must give up at its connect timeout, not a handshake timeout later
            settings = replace(settings, handshake_timeout=max(budget, 0.05))
        conn = await self.dialer(host, port, tls=self.tls, settings=settings)
        self.connection_id = f"{self.client_id}-{self._attempts}"
        self._attempts += 1
        hello = hello_frame(
            name=self.name,
            connection_id=self.connection_id,
            client_type=self.client_type,
            observe_data_tags=self.observe_data_tags,
            credential=self.credential,
            wanted_target=self.wanted_target,
            function_definition=self.function_definition,
        )
        timeout = self.quic.handshake_timeout + DEFAULT_HANDSHAKE_TIMEOUT
        return await handshake(conn, hello, zipper=f"{host}:{port}", timeout=timeout)

    async def _dial(self, budget: float | None = None) -> Connection:
        host, port = self.host, self.port
        for _ in range(4):  # follow at most a few ConnectTo redirects
            try:
                return await self._dial_once(host, port, budget)
            except ConnectToError as exc:
                self.log.info("%s %r: zipper redirects to %s", self._kind, self.name, exc.endpoint)
                try:
                    host, port = parse_address(exc.endpoint)
                except ValueError as bad:
                    raise HandshakeError(
                        f"the zipper redirected to a bad endpoint: {str(bad).removeprefix('yomo: ')}"
                    ) from None
                self.host, self.port = host, port
                self.zipper_addr = join_address(host, port)
        raise HandshakeError("too many ConnectTo redirects")

    async def connect(self) -> None:
        """Dial and handshake; retries until ``reconnect.connect_timeout``.

        Raises:
            RejectedError: the zipper rejected the handshake (final).
            ConnectError: the zipper stayed unreachable for the connect timeout.
        """
        if self.state is ClientState.CLOSED:
            raise YomoError(f"{self._kind} {self.name!r} is closed and cannot reconnect")
        if self.state is not ClientState.NEW:
            return
        self.state = ClientState.CONNECTING
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.reconnect.connect_timeout
        attempt = 0
        while True:
            try:
                conn = await self._dial(deadline - loop.time())
                break
            except (RejectedError, ProtocolError) as exc:
                self._finish(exc)
                self._report(exc)
                raise
            except YomoError as exc:
                remaining = deadline - loop.time()
                delay = min(self.reconnect.delay(attempt), max(remaining, 0))
                if remaining <= 0 or not self.reconnect.enabled:
                    error = ConnectError(
                        f"cannot connect to zipper at {self.zipper_addr} after "
                        f"{attempt + 1} attempt(s) in {self.reconnect.connect_timeout:g} s: "
                        f"{_last_cause(exc.message)} (is `yomo serve` running at "
                        f"{self.zipper_addr}?)"
                    )
                    self._finish(error)
                    self._report(error)
                    raise error from exc
                self.log.info(
                    "%s %r: connecting to %s failed (%s), retrying in %.1f s",
                    self._kind,
                    self.name,
                    self.zipper_addr,
                    exc.message,
                    delay,
                )
                attempt += 1
                await asyncio.sleep(delay)
        self._use(conn)
        self.log.info(
            "%s %r connected to zipper %s (id %s)",
            self._kind,
            self.name,
            self.zipper_addr,
            self.connection_id,
        )
        self._supervisor = loop.create_task(self._supervise())

    def _use(self, conn: Connection, resend: Sequence[bytes] = ()) -> None:
        """Make ``conn`` the live connection: re-send ``resend`` on it first, then let writers in."""
        self._conn = conn
        self._suspect.clear()
        tracked = isinstance(conn, TrackedConnection)  # the aiopquic path cannot tell
        self._journal = (
            Journal(
                DEFAULT_JOURNAL_BYTES,
                self.connection_id,
                acked_to=lambda: _acked_offset(conn),
                clock=asyncio.get_running_loop().time,
            )
            if tracked
            else None
        )
        for data in resend:
            self._put(conn, data)
        self._unsent = []
        if isinstance(conn, TrackedConnection) and self.reconnect.dead_after > 0:
            self._watchdog = asyncio.get_running_loop().create_task(self._watch(conn))
        self.state = ClientState.CONNECTED
        self._connected.set()

    def _put(self, conn: Connection, data: bytes) -> None:
        """``send_nowait`` and book the frame until the zipper acknowledges it."""
        conn.send_nowait(data)
        journal = self._journal
        if journal is not None and conn is self._conn:
            journal.add(conn.bytes_sent, data)  # type: ignore[attr-defined]  # tracked: see _use

    async def _watch(self, conn: TrackedConnection) -> None:
        """Forget acknowledged frames; flag the connection when the zipper goes silent.

        A writer's data is answered by acknowledgements; a writer that hears nothing
        for a moment, and a reader whose frames stop arriving (for up to ``dead_after``
        + 1 s after the last frame), send PINGs, so both notice a dead zipper fast and
        never take a live one that holds their writes back for dead. An idle connection
        costs nothing.
        """
        dead_after = self.reconnect.dead_after
        tick = min(0.05, dead_after / 4)
        loop = asyncio.get_running_loop()
        received = conn.bytes_received
        last_data = prompt = loop.time()
        owed_since: float | None = None  # since when the zipper owes an answer
        while not conn.closed and self._conn is conn:
            await asyncio.sleep(tick)
            now = loop.time()
            if now - prompt > tick + LOOP_LAG:
                # This loop was busy (a handler hogging it, or a zipper in this very
                # process): datagrams may wait unread, so silence proves nothing yet.
                # Count it only from now on.
                conn.heard_now()
            prompt = now
            try:
                unacked = conn.unacknowledged()
            except ConnectionClosedError:  # the connection is gone underneath
                return
            journal = self._journal
            if journal is not None:
                journal.trim(conn.bytes_sent - unacked, now)
            if conn.bytes_received != received:
                received, last_data = conn.bytes_received, now
            silent = conn.silent_for()
            probing = now - last_data < dead_after + 1.0
            if not (unacked > 0 or probing) or conn.closed:
                owed_since = None
                continue
            if owed_since is None:
                owed_since = now  # an idle zipper had nothing to say: count from here
            if min(silent, now - owed_since) > dead_after:
                self._suspect.set()
                return
            if silent > 4 * tick:
                # a live zipper answers at once, even one that holds our writes back
                # (its flow control: written bytes wait, nothing is owed for them)
                conn.ping_nowait()

    def _finish(self, error: BaseException | None) -> None:
        self.state = ClientState.CLOSED
        if error is not None and self.final_error is None:
            self.final_error = error
        self._connected.set()  # wake writers; they see CLOSED
        self._closed.set()

    # -- the connection's life ---------------------------------------------

    async def _supervise(self) -> None:
        reader: asyncio.Task[BaseException | None] | None = None
        try:
            while True:
                conn = self._conn
                if conn is None:  # closed before the supervisor first ran
                    return
                loop = asyncio.get_running_loop()
                if reader is None or reader.done():
                    reader = loop.create_task(self._read_loop(conn))
                suspect = loop.create_task(self._suspect.wait())
                try:
                    await asyncio.wait({reader, suspect}, return_when=asyncio.FIRST_COMPLETED)
                finally:  # also when close() cancels us: no pending task is left behind
                    suspect.cancel()
                silent = not reader.done()  # the zipper went silent; its connection is open
                if self.state is ClientState.CLOSED:
                    return
                outcome = None if silent else reader.result()
                if outcome is not None:  # goaway or a protocol error: final
                    unsent = self._take_journal(conn, dead=True)
                    self._finish(outcome)
                    self._report(outcome)  # the cause first, then what it may have cost
                    self._report_unsent(unsent)
                    return
                reason = (
                    f"zipper not answering for {self.reconnect.dead_after:g} s"
                    if silent
                    else conn.close_reason
                )
                error = ConnectionClosedError(
                    f"connection to zipper {self.zipper_addr} lost: {reason}",
                    remote=not silent and conn.closed_by_peer,
                )
                if not self.reconnect.enabled:
                    if silent:
                        conn.close(reason or "")
                    unsent = self._take_journal(conn, dead=True)
                    self._finish(error)
                    self._report(error)
                    self._report_unsent(unsent)
                    return
                self._report(error)
                silent_conn = conn if silent and isinstance(conn, TrackedConnection) else None
                ok, kept = await self._redial(silent_conn, reader)
                if not ok:
                    return
                reader = kept  # the old connection's reader when the zipper answered there
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not leave writers hanging
            self.log.exception("%s %r: supervisor failed", self._kind, self.name)
            self._finish(exc)
        finally:
            if reader is not None and not reader.done():
                reader.cancel()

    def _take_journal(self, old: Connection, *, dead: bool) -> tuple[list[bytes], int]:
        """The old connection's unacknowledged frames, and how many acknowledged ones may be lost."""
        journal, self._journal = self._journal, None
        if journal is None or not isinstance(old, TrackedConnection):
            return [], 0
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ConnectionClosedError):  # a closed one still knows what was acked
            journal.trim(old.bytes_sent - old.unacknowledged(), loop.time())
        maybe = journal.untracked
        if dead:
            heard = loop.time() - old.silent_for()
            maybe += journal.acked_since(heard - ACK_WINDOW)
        return journal.resend(), maybe

    def _report_unsent(self, taken: tuple[list[bytes], int], resent: bool = False) -> None:
        frames, maybe = taken
        lost = maybe + (0 if resent else len(frames))
        if lost or (resent and frames):
            self._report(FramesMayBeLostError(lost, resent=len(frames) if resent else 0))

    @staticmethod
    def _answers(old: TrackedConnection, since: float) -> bool:
        """Has the zipper spoken on ``old`` since ``since``? Then it was only slow or paused."""
        loop = asyncio.get_running_loop()
        return not old.closed and loop.time() - old.silent_for() > since

    async def _read_loop(self, conn: Connection) -> BaseException | None:
        on_items = self.on_items
        read_items = getattr(conn, "read_items", None)  # the native path hands over batches
        if on_items is not None and read_items is not None:
            return await self._read_items(conn, read_items, on_items)
        read_batch = getattr(conn, "read_batch", None)
        while True:
            try:
                frames = await read_batch() if read_batch is not None else [await conn.read_frame()]
            except ConnectionClosedError:
                return None
            except ProtocolError as exc:
                return exc
            for frame in frames:
                end = await self._dispatch(conn, frame)
                if end is not None:
                    return end

    async def _read_items(
        self,
        conn: Connection,
        read_items: Callable[[], Awaitable[Sequence[Any]]],
        on_items: ItemsHandler,
    ) -> BaseException | None:
        """The read loop on the native path: DataFrames go to ``on_items`` a batch at a
        time as ``(tag, metadata, payload)`` (no frame object, no call per frame here);
        other frames, rare, are decoded and dispatched one by one, in their place."""
        decode = conn.decode_item  # type: ignore[attr-defined]  # NativeConnection's
        while True:
            try:
                items = await read_items()
            except ConnectionClosedError:
                return None
            except ProtocolError as exc:
                return exc
            i, n = 0, len(items)
            while i < n:
                i = await on_items(items, i)
                if i < n:
                    end = await self._dispatch(conn, decode(items[i]))
                    if end is not None:
                        return end
                    i += 1

    async def _dispatch(self, conn: Connection, frame: Frame) -> BaseException | None:
        """One received frame: a DataFrame to ``on_frame``; a goaway or a rejection ends
        the connection (returns why); anything else is ignored (returns None: go on)."""
        if type(frame) is DataFrame:
            if self.on_frame is not None:
                await self.on_frame(frame)
        elif isinstance(frame, GoawayFrame):
            self.log.info("%s %r: zipper says goaway: %s", self._kind, self.name, frame.message)
            await conn.aclose(frame.message)
            return ConnectionClosedError(f"goaway: {frame.message}", remote=True)
        elif isinstance(frame, RejectedFrame):
            await conn.aclose(frame.message)
            return rejection(frame.message)
        else:
            self.log.debug("%s %r: ignoring %s", self._kind, self.name, type(frame).__name__)
        return None

    async def _redial(
        self,
        old: TrackedConnection | None = None,
        old_reader: asyncio.Task[BaseException | None] | None = None,
    ) -> tuple[bool, asyncio.Task[BaseException | None] | None]:
        """Dial again until it works or the client closes; returns (connected, reader to keep).

        ``old`` is a silent connection still open. When the zipper speaks on it again
        by the time a new connection is up, it was only slow or paused: the new one
        is closed and ``old`` kept (with ``old_reader``), so nothing is written twice,
        lost or reordered. Otherwise ``old`` is closed and its unacknowledged frames
        are written again on the new connection.
        """
        self.state = ClientState.RECONNECTING
        self._connected.clear()
        loop = asyncio.get_running_loop()
        since = loop.time()
        last = self._conn
        if old is None and last is not None:  # closed: what it did not deliver is known now
            self._unsent, maybe = self._take_journal(last, dead=True)
            if maybe:
                self._report(FramesMayBeLostError(maybe))
        kept = False
        try:
            result = await self._redial_loop(old, since)
            kept = result == "kept"
            return result is not False, old_reader if kept else None
        finally:
            if old is not None and not kept:
                if old_reader is not None and not old_reader.done():
                    old_reader.cancel()
                await old.aclose("zipper not answering")

    def _keep(self, old: TrackedConnection, connection_id: str) -> None:
        """The zipper answered on ``old`` after all: go on with it."""
        self.connection_id = connection_id
        self._conn = old
        self._suspect.clear()
        if self.reconnect.dead_after > 0:
            self._watchdog = asyncio.get_running_loop().create_task(self._watch(old))
        self.state = ClientState.CONNECTED
        self._connected.set()
        self.log.info(
            "%s %r: zipper %s answers again on connection %s; keeping it",
            self._kind,
            self.name,
            self.zipper_addr,
            connection_id,
        )

    async def _redial_loop(self, old: TrackedConnection | None, since: float) -> bool | str:
        attempt = slow = 0
        loop = asyncio.get_running_loop()
        fast_until = loop.time() + FAST_REDIAL
        old_id = self.connection_id
        started = -1.0
        while self.state is ClientState.RECONNECTING:
            # A zipper that just went away is often back within seconds (a restart): for
            # FAST_REDIAL seconds dial again at once (at most 10 a second), each QUIC
            # handshake bounded to FAST_HANDSHAKE; then back off as the policy says.
            fast = loop.time() < fast_until
            if fast:
                delay = max(0.0, started + 0.1 - loop.time())
            else:
                delay = self.reconnect.delay(slow)
                slow += 1
            self.log.info(
                "%s %r: reconnecting to %s in %.1f s (attempt %d)",
                self._kind,
                self.name,
                self.zipper_addr,
                delay,
                attempt + 1,
            )
            await asyncio.sleep(delay)
            if self.state is not ClientState.RECONNECTING:
                return False
            started = loop.time()
            try:
                conn = await self._dial(FAST_HANDSHAKE if fast else None)
            except (RejectedError, ProtocolError) as exc:
                self._finish(exc)
                self._report(exc)
                return False
            except YomoError as exc:
                if not fast or attempt == 0:  # the quick retries report once
                    self._report(exc)
                attempt += 1
                continue
            if self.state is not ClientState.RECONNECTING:
                await conn.aclose("client closed")
                return False
            resend = self._unsent
            if old is not None:
                if self._answers(old, since):
                    await conn.aclose("the zipper answered on the old connection")
                    self._keep(old, old_id)
                    await self._call_reconnected()
                    return "kept"
                resend, maybe = self._take_journal(old, dead=True)
                if maybe:
                    self._report(FramesMayBeLostError(maybe))
            if not self.reconnect.resend:
                self._report_unsent((resend, 0))
                resend = []
            elif resend:
                self._report(FramesMayBeLostError(0, resent=len(resend)))
            self._use(conn, resend)
            self.log.info(
                "%s %r reconnected to %s (id %s)",
                self._kind,
                self.name,
                self.zipper_addr,
                self.connection_id,
            )
            await self._call_reconnected()
            return True
        return False

    async def _call_reconnected(self) -> None:
        for fn in self._reconnected_handlers:
            try:
                result = fn()
                if inspect.isawaitable(result):
                    await result
            # Isolation: the user's reconnect handler failing must not break the client.
            except Exception:
                self.log.exception("reconnect handler of %r failed", self.name)

    # -- writing -----------------------------------------------------------

    async def _live_connection(self, timeout: float) -> Connection:
        if self.state is ClientState.NEW:
            raise YomoError(f"{self._kind} {self.name!r} is not connected: call connect() first")
        if not self._connected.is_set():
            try:
                await asyncio.wait_for(self._connected.wait(), timeout)
            except asyncio.TimeoutError:
                raise TimeoutError(
                    f"{self._kind} {self.name!r}: zipper {self.zipper_addr} unreachable for "
                    f"{timeout:g} s; the frame was not sent"
                ) from None
        conn = self._conn
        if self.state is ClientState.CLOSED or conn is None:
            raise ConnectionClosedError(f"{self._kind} {self.name!r} is closed")
        return conn

    def put_nowait(self, data: bytes) -> bool | None:
        """The common write, without a coroutine: queue ``data`` if the connection is up.

        Returns True when queued with room for more; False when queued but the writer
        must now wait for room (``wait_room``) before the next write; None when nothing
        was done (no connection): then ``send`` it, which waits (bounded) for one.
        """
        conn = self._conn
        if conn is None or self.state is not ClientState.CONNECTED or not self._connected.is_set():
            return None
        # _put inlined: this runs for every frame
        try:
            conn.send_nowait(data)
        except ConnectionClosedError:
            self._connected.clear()  # the supervisor will redial; send() waits for it
            return None
        journal = self._journal
        if journal is not None:
            journal.add(conn.bytes_sent, data)  # type: ignore[attr-defined]  # see _use
        return conn.has_room

    async def wait_room(self) -> None:
        """After ``put_nowait`` said False: wait (up to ``write_timeout``) until the
        connection's backlog is below half its high-water mark.

        Raises:
            TimeoutError: the zipper did not read for ``write_timeout``.
        """
        conn = self._conn
        if conn is not None and not conn.has_room:
            with contextlib.suppress(ConnectionClosedError):
                await conn.drain(self.write_timeout)

    async def send(self, data: bytes) -> None:
        """Send an encoded frame; waits (bounded) for room and through reconnects.

        Raises:
            TimeoutError: no connection, or the zipper did not read, for ``write_timeout``.
            ConnectionClosedError: the client is closed.
        """
        room = self.put_nowait(data)
        if room is not None:
            if not room:
                await self.wait_room()
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.write_timeout
        while True:
            conn = await self._live_connection(max(deadline - loop.time(), 0.0))
            try:
                self._put(conn, data)
            except ConnectionClosedError:
                if self.state is ClientState.CLOSED:
                    raise
                self._connected.clear()  # the supervisor will redial
                continue
            if not conn.has_room:
                with contextlib.suppress(ConnectionClosedError):
                    await conn.drain(max(deadline - loop.time(), 0.001))
            return

    def send_from_thread(self, data: bytes, loop: asyncio.AbstractEventLoop) -> None:
        """Send from a thread other than ``loop``'s (sync API, worker-thread handlers).

        While the connection is up and has room, the frame is handed to the loop
        without waiting for it (order is kept: the loop runs hand-offs in order),
        with at most ``THREAD_PENDING_BYTES`` in hand-off; otherwise this blocks
        like ``send``. A hand-off that finds the connection gone goes through
        ``send`` (waiting for the reconnect); if that fails the error handler
        gets the error, so nothing is lost silently.
        """
        conn = self._conn
        size = len(data)
        with self._thread_lock:
            fast = (
                self.state is ClientState.CONNECTED
                and conn is not None
                and conn.has_room
                and self._thread_pending + size <= THREAD_PENDING_BYTES
            )
            if fast:
                self._thread_pending += size
        if fast:
            loop.call_soon_threadsafe(self._hand_off, data)
            return
        asyncio.run_coroutine_threadsafe(self.send(data), loop).result()

    def _hand_off(self, data: bytes) -> None:
        with self._thread_lock:
            self._thread_pending -= len(data)
        conn = self._conn
        if conn is not None and not conn.closed and self.state is ClientState.CONNECTED:
            try:
                self._put(conn, data)
                return
            except ConnectionClosedError:
                pass
        task = asyncio.ensure_future(self._send_reporting(data))
        self._callback_tasks.add(task)
        task.add_done_callback(self._callback_tasks.discard)

    async def _send_reporting(self, data: bytes) -> None:
        try:
            await self.send(data)
        except YomoError as exc:
            self._report(exc)

    # -- closing -----------------------------------------------------------

    async def close(self, reason: str = "client closed", drain_timeout: float = 5.0) -> None:
        """Send what was written, then close; idempotent."""
        if self.state is ClientState.CLOSED and self._conn is None:
            return
        was = self.state
        self.state = ClientState.CLOSED
        if self._unsent:  # lost with a connection and never written again
            self._report_unsent((self._unsent, 0))
            self._unsent = []
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed and was is ClientState.CONNECTED:
            with contextlib.suppress(YomoError, ConnectionError):
                await conn.drain_all(drain_timeout)
        if conn is not None:
            await conn.aclose(reason)
        supervisor = self._supervisor
        if supervisor is not None and supervisor is not asyncio.current_task():
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await supervisor
        self._finish(None)
        self._default_errors.flush()
        self.log.info("%s %r closed", self._kind, self.name)

    async def wait(self) -> None:
        """Wait until the client is closed (by ``close``, a rejection or a goaway)."""
        await self._closed.wait()

    @property
    def closed(self) -> bool:
        """True once the client is closed."""
        return self._closed.is_set()

    @property
    def connection(self) -> Connection | None:
        """The connection in use (None while not connected)."""
        return self._conn


def _acked_offset(conn: Any) -> int:
    """The stream offset ``conn``'s peer has acknowledged, as far as is known (0: unknown)."""
    try:
        return int(conn.bytes_sent - conn.unacknowledged())
    except ConnectionClosedError:
        return 0


def _last_cause(message: str) -> str:
    """``"cannot connect to zipper h:p: no handshake"`` -> ``"no handshake"`` (no repeats)."""
    prefix = "cannot connect to zipper "
    if message.startswith(prefix) and ": " in message:
        return message.split(": ", 1)[1]
    return message

"""What a Source and a StreamFunction share, on either front door.

``ClientBase`` (asyncio) reads a client's identity, options and state from its
session core; ``SyncClientBase`` (``yomo._sync``) reads them from the asyncio
client it drives, so each member is written once per front door.
"""

from __future__ import annotations

from yomo.session import ClientCore, ClientOptions, ClientState, ErrorHandler

__all__ = ["ClientBase"]


class ClientBase:
    """The members ``yomo.aio.Source`` and ``yomo.aio.StreamFunction`` share."""

    _core: ClientCore

    @property
    def name(self) -> str:
        """The client's name, shown in the zipper's logs."""
        return self._core.name

    @property
    def client_id(self) -> str:
        """The client id: a source writes it as ``yomo-source-id``; connection ids are
        ``<client_id>-<n>``."""
        return self._core.client_id

    @property
    def options(self) -> ClientOptions:
        """What the client was configured with (``yomo.ClientOptions``)."""
        return self._core.options

    @property
    def state(self) -> ClientState:
        """Where the client is in its life."""
        return self._core.state

    def set_error_handler(self, fn: ErrorHandler) -> None:
        """Call ``fn(error)`` on connection failures and rejections (and, for a stream
        function, when a handler raises); the default logs them."""
        self._core.add_error_handler(fn)

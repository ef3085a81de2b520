"""``YOMO_QLOG_TRACE=true``: a qlog file per QUIC connection, for debugging QUIC itself.

Go: core/client_options.go qlogTraceEnabled / qlogTracer: with the variable set
to ``true`` (any case) each connection writes ``./log_<connection id>_<role>.qlog``
in the working directory, ``role`` being ``client`` or ``server``, as the events
happen (JSON-SEQ, qlog 0.3, which qvis at https://qvis.quictools.info reads), so
a process that dies still leaves its trace. Go traces its clients only; here the
zipper's connections are traced too when it runs on a Python QUIC library (qh3,
aioquic: they produce the events). The native data path (quinn) and aiopquic
write none; they say so once in the log.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import IO, Any

__all__ = ["QLOG_ENV", "qlog_enabled", "qlog_logger", "warn_unsupported"]

QLOG_ENV = "YOMO_QLOG_TRACE"
_RS = "\x1e"  # JSON-SEQ record separator (RFC 7464)
_warned: set[str] = set()


def qlog_enabled() -> bool:
    """True when ``YOMO_QLOG_TRACE`` is ``true`` (Go compares it without case)."""
    return os.environ.get(QLOG_ENV, "").lower() == "true"


def warn_unsupported(path: str) -> None:
    """Log once that ``path`` (a data path or QUIC library) writes no qlog."""
    if qlog_enabled() and path not in _warned:
        _warned.add(path)
        logging.getLogger("yomo.transport").warning(
            "%s=true: the %s writes no qlog; YOMO_QUIC_BACKEND=qh3 or aioquic does", QLOG_ENV, path
        )


def qlog_logger(library: str, *, is_client: bool, directory: str = ".") -> Any:
    """A ``quic_logger`` for the QuicConfiguration of ``library`` (``qh3`` or ``aioquic``).

    Each connection's events go to ``<directory>/log_<original destination connection
    id>_<client|server>.qlog`` as they happen.
    """
    import importlib

    module = importlib.import_module(f"{library}.quic.logger")
    return _FileLogger(module.QuicLoggerTrace, module.QLOG_VERSION, is_client, directory)


class _FileLogger:
    """What the QUIC library asks of its logger: ``start_trace`` and ``end_trace``."""

    def __init__(self, trace_class: type, version: str, is_client: bool, directory: str) -> None:
        self._trace_class = _streaming(trace_class)
        self._version = version
        self._role = "client" if is_client else "server"
        self._directory = os.path.abspath(directory)  # where the process was when dialling

    def start_trace(self, is_client: bool, odcid: bytes) -> Any:
        path = os.path.join(self._directory, f"log_{odcid.hex()}_{self._role}.qlog")
        try:
            out: IO[str] | None = open(path, "w", buffering=1)
        except OSError as exc:  # a debugging aid must never break the connection
            logging.getLogger("yomo.transport").warning("qlog: cannot write %s: %s", path, exc)
            out = None
        trace = self._trace_class(is_client=is_client, odcid=odcid)
        trace.start(out, self._version)
        return trace

    def end_trace(self, trace: Any) -> None:
        trace.finish()


_streaming_classes: dict[type, type] = {}


def _streaming(trace_class: type) -> type:
    """``trace_class`` writing each event to its file instead of keeping it."""
    cached = _streaming_classes.get(trace_class)
    if cached is not None:
        return cached

    class StreamingTrace(trace_class):  # type: ignore[misc,valid-type]
        _out: IO[str] | None = None

        def start(self, out: IO[str] | None, version: str) -> None:
            self._out = out
            header = self.to_dict()  # common fields and vantage point; no events yet
            header.pop("events", None)
            self._write({"qlog_version": version, "qlog_format": "JSON-SEQ", "trace": header})

        def log_event(self, *, category: str, event: str, data: dict[str, Any]) -> None:
            name = f"{category}:{event}"
            self._write({"time": self.encode_time(time.time()), "name": name, "data": data})

        def _write(self, record: dict[str, Any]) -> None:
            if self._out is not None:
                self._out.write(_RS + json.dumps(record) + "\n")

        def finish(self) -> None:
            if self._out is not None:
                self._out.close()
                self._out = None

    _streaming_classes[trace_class] = StreamingTrace
    return StreamingTrace

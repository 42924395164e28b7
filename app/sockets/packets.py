"""Malformed packets: what python-socketio cannot decode (``42["x",``) costs one log line per
connection per minute, with a count, and a connection that keeps sending them is closed.

python-socketio decodes packets in its Engine.IO ``message`` handler and lets a decoding error
escape to Engine.IO, which logs a full traceback for each (3.3 KB for a 7-byte packet). The
guard wraps that handler, through Engine.IO's own ``on()`` registration.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import socketio

from app.sockets.guard import client_address

logger = logging.getLogger(__name__)

MALFORMED_WINDOW = 60.0  # seconds: one log line per connection per window
MALFORMED_LIMIT = 20  # malformed packets in one window before the connection is closed


@dataclass(slots=True)
class _Window:
    started: float
    count: int = 0
    closing: bool = False  # the close line was written; later packets are counted silently


@dataclass(frozen=True, slots=True)
class Verdict:
    log: bool  # the first of a window: write one line now
    previous: int  # malformed packets in the window before, for that line
    count: int  # malformed packets in this window so far
    close: bool  # the connection keeps sending them: close it


class MalformedPackets:
    """Malformed packets per Engine.IO connection, in windows of ``MALFORMED_WINDOW`` s.

    The caller logs one line per window (with the count of the window before) and closes the
    connection once a window holds ``limit`` packets; ``forget`` returns the count not yet
    logged, for a last line when the connection goes away.
    """

    def __init__(
        self,
        limit: int = MALFORMED_LIMIT,
        window: float = MALFORMED_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._by_conn: dict[str, _Window] = {}

    def record(self, conn: str) -> Verdict:
        now = self._clock()
        w = self._by_conn.get(conn)
        previous = 0
        if w is None or now - w.started >= self.window:
            previous = w.count if w is not None else 0
            w = self._by_conn[conn] = _Window(now)
        w.count += 1
        close = w.count >= self.limit and not w.closing
        w.closing = w.closing or close
        return Verdict(log=w.count == 1, previous=previous, count=w.count, close=close)

    def forget(self, conn: str) -> int:
        """Stop tracking ``conn``; how many packets of its last window no line has counted."""
        w = self._by_conn.pop(conn, None)
        return w.count - 1 if w is not None and not w.closing else 0


def guard_packets(
    sio: socketio.AsyncServer,
    malformed: MalformedPackets,
    spawn: Callable[[Coroutine[Any, Any, None]], None],
) -> None:
    """Wrap ``sio``'s Engine.IO message and disconnect handlers with ``malformed``'s policy;
    ``spawn`` runs the close in the background."""
    eio = sio.eio
    on_message, on_close = eio.handlers["message"], eio.handlers["disconnect"]

    async def message(eio_sid: str, data: Any) -> None:
        try:
            await on_message(eio_sid, data)
        except Exception as exc:
            environ = sio.environ.get(eio_sid)
            if environ is None:
                return  # in flight when the connection closed: nothing to tell or log
            verdict = malformed.record(eio_sid)
            address = client_address(environ)
            if verdict.log:
                logger.warning(
                    "malformed packet from %s (%s): %s: %s; %d in the minute before",
                    eio_sid, address, type(exc).__name__, str(exc)[:100], verdict.previous,
                )
            if verdict.close:
                logger.warning("closing %s (%s): %d malformed packets within %.0f s",
                               eio_sid, address, verdict.count, malformed.window)
                spawn(eio.disconnect(eio_sid))

    async def close(eio_sid: str, *args: Any) -> None:
        # Forget only after python-socketio dropped the environ (at the end of its handler,
        # which may wait on Redis): a packet in flight meanwhile must find the old window.
        try:
            await on_close(eio_sid, *args)
        finally:
            extra = malformed.forget(eio_sid)
            if extra:
                logger.warning("%s sent %d more malformed packets before it closed",
                               eio_sid, extra)

    eio.on("message", message)
    eio.on("disconnect", close)

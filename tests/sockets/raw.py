"""A Socket.IO client that speaks raw frames over a websocket, for what python-socketio's client
refuses to send: events named ``connect``/``disconnect``, extra arguments, broken packets.

Engine.IO v4 over websocket: the server opens with ``0{...}``, pings with ``2`` (we answer
``3``), and Socket.IO packets ride in ``4`` messages: ``40`` connect, ``42[...]`` event,
``42<id>[...]`` event with ack id, ``43<id>[...]`` ack, ``41`` disconnect.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


class RawSocket:
    def __init__(self, url: str) -> None:
        self.url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        self.packets: list[str] = []  # every text frame received, in order
        self.closed = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._next_id = 0

    async def open(self, auth: dict[str, Any] | None = None) -> str:
        """Connect and join the default namespace; the Socket.IO sid."""
        self._ws = await connect(self.url, open_timeout=5)
        first = await asyncio.wait_for(self._ws.recv(), 5)
        assert isinstance(first, str) and first.startswith("0"), first
        self._reader = asyncio.get_running_loop().create_task(self._read())
        await self.send("40" + (json.dumps(auth) if auth is not None else ""))
        packet = await self.wait_packet(lambda p: p.startswith("40") or p.startswith("44"))
        assert packet.startswith("40{"), packet
        sid: str = json.loads(packet[2:])["sid"]
        return sid

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for frame in self._ws:
                if frame == "2":
                    await self._ws.send("3")
                elif frame == "1":  # Engine.IO close: the server is done with us
                    self.packets.append(frame)
                    break
                elif isinstance(frame, str):
                    self.packets.append(frame)
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()

    async def send(self, frame: str) -> None:
        assert self._ws is not None
        await self._ws.send(frame)

    async def emit(self, event: str, *args: Any) -> None:
        """An event without ack."""
        await self.send("42" + json.dumps([event, *args]))

    async def call(self, event: str, *args: Any, timeout: float = 5.0) -> Any:
        """An event with an ack id; the ack's first argument."""
        self._next_id += 1
        ack_id = str(self._next_id)
        await self.send("42" + ack_id + json.dumps([event, *args]))
        prefix = "43" + ack_id + "["
        packet = await self.wait_packet(lambda p: p.startswith(prefix), timeout)
        return json.loads(packet[len(prefix) - 1 :])[0]

    def events(self, name: str) -> list[Any]:
        """Data of every event ``name`` received (``42["name", data]``)."""
        out = []
        for p in self.packets:
            if p.startswith("42["):
                body = json.loads(p[2:])
                if body[0] == name:
                    out.append(body[1] if len(body) > 1 else None)
        return out

    async def wait_packet(self, pred: Any, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for p in self.packets[seen:]:
                if pred(p):
                    return p
            seen = len(self.packets)
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching packet; last {self.packets[-5:]}")
            if self.closed.is_set():
                raise AssertionError(f"connection closed; last {self.packets[-5:]}")
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await self._reader

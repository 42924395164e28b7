"""A real uvicorn server on loopback with the game's handlers and routers, and real clients."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import socketio
import uvicorn
from fastapi import FastAPI

from app.api import decks as decks_api
from app.api import rooms as rooms_api
from app.cache.shared import SharedRedis
from app.core.cards import KEY_PREFIX, Combination
from app.core.config import Settings
from app.game.decks import load_library
from app.game.registry import RoomRegistry, get_registry
from app.main import create_sio
from app.sockets import GameServer, VideoMaker, register_socket_handlers
from app.state.store import MemoryRoomStore
from app.state.wiring import GameState


class FakeVideoService:
    """Test double of app.video.service: records the combinations it is given."""

    def __init__(self, *, fail: bool = False, delay: float = 0.0) -> None:
        self.fail = fail
        self.delay = delay
        self.created: list[tuple[Combination, bool]] = []  # (combination, permanent)
        self.plays: list[Combination] = []

    async def get_or_create(self, combo: Combination, /, *, permanent: bool = False) -> str:
        await asyncio.sleep(self.delay)
        self.created.append((combo, permanent))
        if self.fail:
            raise RuntimeError("renderer exploded")
        return f"/videos/{combo.key.removeprefix(KEY_PREFIX)}.mp4"

    async def record_play(self, combo: Combination, /) -> None:
        self.plays.append(combo)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LiveServer:
    """The game (sockets + REST) served by uvicorn in a thread, as app/main.py would wire it."""

    def __init__(
        self,
        settings: Settings,
        video_service: VideoMaker | None,
        clock: Callable[[], float] = time.time,
        extra_lifespan: Callable[[], contextlib.AbstractAsyncContextManager[Any]] | None = None,
        shared: Callable[[], SharedRedis | None] = lambda: None,  # connections counted in memory
    ) -> None:
        library = load_library()
        self.registry = RoomRegistry(library, clock=clock)  # the clock of round timers
        self.state = GameState(settings, library, clock=clock)  # rooms in this process
        self.sio = create_sio(settings)
        self.game: GameServer = register_socket_handlers(
            self.sio,
            registry=self.registry,
            state=self.state,
            video_service=video_service,
            settings=settings,
            resolve_video=lambda: None,
            tick_interval=0.05,
            shared=shared,
        )
        game = self.game

        @contextlib.asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            async with contextlib.AsyncExitStack() as stack:
                if extra_lifespan is not None:  # e.g. the real video service
                    await stack.enter_async_context(extra_lifespan())
                await game.start()
                yield
                await game.stop()

        api = FastAPI(lifespan=lifespan)
        api.include_router(rooms_api.router)
        api.include_router(decks_api.router)
        api.dependency_overrides[get_registry] = lambda: self.registry
        api.state.game_state = self.state
        app = socketio.ASGIApp(self.sio, other_asgi_app=api)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def room_count(self) -> int:
        """Rooms in the server's (in-process) store."""
        store = self.state.book.store
        assert isinstance(store, MemoryRoomStore)
        return len(store)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


class Client:
    """A real python-socketio client that records every event it receives."""

    def __init__(self, url: str, name: str = "") -> None:
        self.url = url
        self.name = name
        self.sio = socketio.AsyncClient(reconnection=False)
        self.received: list[tuple[str, Any]] = []
        self.player_id = ""
        self.token = ""
        self.room_code = ""

        async def record(event: str, data: Any = None) -> None:
            self.received.append((event, data))

        self.sio.on("*", handler=record)

    async def connect(self, token: str | None = None) -> None:
        auth = {"token": token} if token is not None else None
        await self.sio.connect(self.url, transports=["websocket"], auth=auth, wait_timeout=5)

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()

    async def call(self, event: str, data: Any = None) -> dict[str, Any]:
        ack: dict[str, Any] = await self.sio.call(event, data, timeout=5)
        return ack

    async def create(self, settings: dict[str, Any] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"name": self.name}
        if settings is not None:
            payload["settings"] = settings
        return self._take_seat(await self.call("create_room", payload))

    async def join(self, code: str) -> dict[str, Any]:
        return self._take_seat(await self.call("join_room", {"room_code": code, "name": self.name}))

    def _take_seat(self, ack: dict[str, Any]) -> dict[str, Any]:
        """Remember the seat a successful create/join ack gave this client."""
        assert ack["ok"], ack
        self.player_id, self.token, self.room_code = (
            ack["player_id"],
            ack["token"],
            ack["room_code"],
        )
        return ack

    def all(self, event: str) -> list[Any]:
        return [data for name, data in self.received if name == event]

    def last(self, event: str) -> Any:
        found = self.all(event)
        return found[-1] if found else None

    async def wait_for(
        self, event: str, pred: Callable[[Any], bool] = lambda _: True, timeout: float = 5.0
    ) -> Any:
        """The latest ``event`` matching ``pred``, waiting for it if needed."""
        deadline = time.monotonic() + timeout
        while True:
            matches = [d for d in self.all(event) if pred(d)]
            if matches:
                return matches[-1]
            if time.monotonic() > deadline:
                seen = [name for name, _ in self.received][-20:]
                raise AssertionError(f"{self.name}: no matching {event!r}; last events {seen}")
            await asyncio.sleep(0.01)


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# --- game helpers ----------------------------------------------------------------------------


async def table(clients: Any, server: LiveServer, n: int, **settings: Any) -> list[Client]:
    """``n`` connected players in one room; the first is the host."""
    names = ["Ada", "Bo", "Cy", "Di", "Ed"][:n]
    players: list[Client] = await clients(server, *names)
    await players[0].create(settings or None)
    for p in players[1:]:
        await p.join(players[0].room_code.lower())
    return players


def of_round(rnd: int) -> Callable[[Any], bool]:
    return lambda payload: bool(payload["round"] == rnd)


def dealt(state: dict[str, Any], player_id: str, hand_size: int = 10) -> int:
    """How many cards ``player_id`` holds in the round of ``state``: the hand size, plus the black
    card's extra draw (pick-3 cards deal 2 more) for everyone but the czar."""
    extra = state["black_card"]["draw"] if player_id != state["czar_id"] else 0
    return hand_size + int(extra)


def by_id(players: list[Client], player_id: str) -> Client:
    return next(p for p in players if p.player_id == player_id)


def czar_and_others(players: list[Client], state: dict[str, Any]) -> tuple[Client, list[Client]]:
    """The czar of the round in ``state``, and the other players in seat order."""
    czar = by_id(players, state["czar_id"])
    return czar, [p for p in players if p is not czar]


async def round_state(client: Client, rnd: int, phase: str = "submitting") -> dict[str, Any]:
    state: dict[str, Any] = await client.wait_for(
        "room_state", lambda s: s["round"] == rnd and s["phase"] == phase
    )
    return state


async def submit_all(players: list[Client], state: dict[str, Any]) -> None:
    rnd, pick = state["round"], state["black_card"]["pick"]
    for p in players:
        if p.player_id == state["czar_id"]:
            continue
        hand = await p.wait_for("hand", lambda h: h["round"] == rnd)
        ack = await p.call("submit_cards", {"card_ids": [c["id"] for c in hand["cards"][:pick]]})
        assert ack == {"ok": True}, ack


async def start_round_one(players: list[Client]) -> dict[str, Any]:
    """The host (``players[0]``) starts the game; round 1's room state."""
    host = players[0]
    await host.call("start_game")
    return await round_state(host, 1)


async def play_first_round(
    players: list[Client], choice: int = 0, timeout: float = 5.0
) -> dict[str, Any]:
    """The game starts, everyone plays round 1 and the czar picks submission ``choice``
    (waiting ``timeout`` for the submissions); round 1's room state."""
    state = await start_round_one(players)
    await submit_all(players, state)
    czar = by_id(players, state["czar_id"])
    subs = await czar.wait_for("submissions", timeout=timeout)
    submission_id = subs["submissions"][choice]["submission_id"]
    await czar.call("pick_winner", {"submission_id": submission_id})
    return state

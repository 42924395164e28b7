"""Socket.IO events mapped onto the game rules (docs/protocol.md).

Each client event: rate limit, validate the payload, apply one transition to the room under the
room's lock, broadcast what changed, and acknowledge with ``{"ok": true, ...}`` or
``{"ok": false, "error": {"code", "message"}}``. No input may crash the server: anything
unexpected is logged and acknowledged as ``internal``.

Only the server decides connect and disconnect. python-socketio hands a client *event* named
``connect`` or ``disconnect`` (``42["connect",{}]``) to the same handlers as the real ones, so
each handler first checks that it was called by the library: a real connect passes the
connection's own environ object, which no packet can forge, and a real disconnect runs after the
connection was marked as leaving. Anything else is refused as ``unknown_event``.

The server needs ``socketio.AsyncServer(always_connect=True)``: the connection is accepted before
the connect handler runs, so the handler can send a reconnecting player their screen directly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any

import socketio
from pydantic import ValidationError

from app.cache.shared import SharedRedis
from app.core.config import Settings, get_settings
from app.core.ratelimit import RateLimits
from app.game import events as ev
from app.game.errors import GameError, InvalidSettings
from app.game.players import name_key
from app.game.registry import RoomRegistry
from app.game.room import Room
from app.game.settings import RoomSettings
from app.sockets import payloads
from app.sockets.connections import ConnectionCounter, default_shared
from app.sockets.guard import client_address
from app.sockets.logwindow import LogWindows
from app.sockets.packets import MalformedPackets, guard_packets
from app.sockets.ratelimit import TokenBucket
from app.sockets.schemas import (
    CreateRoomIn,
    EmptyIn,
    JoinRoomIn,
    KickPlayerIn,
    PickWinnerIn,
    SubmitCardsIn,
    UpdateSettingsIn,
)
from app.sockets.sessions import AlreadyInRoom, NotInRoom, Seat, Sessions
from app.sockets.video import VideoJobs, VideoMaker, default_video_service
from app.video.deadlines import video_deadline_seconds

logger = logging.getLogger(__name__)

Ack = dict[str, Any]
Action = Callable[[str, Any], Awaitable[Ack]]


class InvalidPayload(GameError):
    code = "invalid_payload"


class UnknownEvent(GameError):
    code = "unknown_event"


class TooManyRooms(GameError):
    code = "too_many_rooms"


class TooManyJoins(GameError):
    code = "too_many_joins"


def ok(**fields: Any) -> Ack:
    return {"ok": True, **fields}


def fail(code: str, message: str) -> Ack:
    return {"ok": False, "error": {"code": code, "message": message}}


def channel(room_code: str) -> str:
    return f"room:{room_code}"


def describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(x) for x in err["loc"]) or "payload"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)[:300]


class GameServer:
    def __init__(
        self,
        sio: socketio.AsyncServer,
        registry: RoomRegistry,
        *,
        settings: Settings | None = None,
        video_service: VideoMaker | None = None,
        resolve_video: Callable[[], VideoMaker | None] = default_video_service,
        clock: Callable[[], float] = time.monotonic,
        tick_interval: float = 0.5,
        rate_limits: RateLimits | None = None,
        shared: Callable[[], SharedRedis | None] = default_shared,
    ) -> None:
        s = settings if settings is not None else get_settings()
        self.sio = sio
        self.registry = registry
        self.sessions = Sessions()
        self.grace = s.reconnect_grace_seconds
        self.idle = s.room_idle_seconds
        self.rate = s.socket_rate_limit_per_second
        self.burst = s.socket_rate_limit_burst
        # Open connections per address: in Redis (shared by every instance) when it is in use.
        self.connections = ConnectionCounter(
            s.socket_max_connections_per_address, s.socket_connection_ttl_seconds, shared,
            alive=lambda sid: not self._gone(sid))
        self.rooms_rate = s.socket_rooms_per_address
        self.joins_rate = s.socket_joins_per_address
        # Per-address rates; built here (and closed by stop()) unless the app shares its own.
        self._own_limits = rate_limits is None
        self.limits = rate_limits if rate_limits is not None else RateLimits.from_settings(s)
        self.malformed = MalformedPackets()
        self.refusals = LogWindows()  # refused connections: one log line per address a minute
        self.tick_interval = tick_interval
        self._clock = clock
        video_timeout = video_deadline_seconds(s)  # the service's own longest legitimate wait
        self.videos = VideoJobs(
            self._emit,
            video_service,
            resolve=resolve_video,
            speculative=s.speculative_render,
            timeout=video_timeout,
        )
        # Per connection, created on its first event and dropped only by the real disconnect.
        self._buckets: dict[str, TokenBucket] = {}
        self._address: dict[str, str] = {}  # sid -> client address, while connected
        self._locks: dict[str, asyncio.Lock] = {}
        self._active: dict[str, float] = {}  # room code -> clock of its players' last event
        self._unattended: dict[str, float] = {}  # room code -> since when nobody is connected
        self._ticker: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- wiring and lifecycle -----------------------------------------------------------------

    def register(self) -> None:
        actions: dict[str, Action] = {
            "create_room": self._create_room,
            "join_room": self._join_room,
            "start_game": self._start_game,
            "submit_cards": self._submit_cards,
            "pick_winner": self._pick_winner,
            "leave_room": self._leave_room,
            "kick_player": self._kick_player,
            "update_settings": self._update_settings,
        }
        if not getattr(self.sio, "always_connect", False):
            raise RuntimeError("the game needs socketio.AsyncServer(always_connect=True)")
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        for name, action in actions.items():
            self.sio.on(name, self._handler(name, action))
        self.sio.on("*", self._on_unknown)
        guard_packets(self.sio, self.malformed, self._spawn)

    async def start(self) -> None:
        """Start the ticker (round timers, reconnect grace). Call from the app's lifespan."""
        if self._own_limits:
            await self.limits.start()
        name_key("warm-up")  # builds the confusables table now, not during someone's join
        self._ensure_ticker()

    async def stop(self) -> None:
        """Stop the ticker and background video jobs. Call at shutdown."""
        tasks = list(self._tasks)
        if self._ticker is not None:
            tasks.append(self._ticker)
            self._ticker = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.videos.close()
        await self.connections.aclose()
        if self._own_limits:
            await self.limits.aclose()

    def _ensure_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._run_ticker())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- plumbing -----------------------------------------------------------------------------

    def _lock(self, room_code: str) -> asyncio.Lock:
        return self._locks.setdefault(room_code, asyncio.Lock())

    def _forget_room(self, room_code: str) -> None:
        self._locks.pop(room_code, None)
        self._active.pop(room_code, None)
        self._unattended.pop(room_code, None)

    def _handler(self, name: str, action: Action) -> Callable[..., Awaitable[Ack]]:
        async def handler(sid: str, *args: Any) -> Ack:
            return await self._dispatch(sid, name, args, action)

        handler.__name__ = f"on_{name}"
        return handler

    async def _dispatch(self, sid: str, name: str, args: Sequence[Any], action: Action) -> Ack:
        try:
            self._ensure_ticker()
            bucket = self._buckets.get(sid)
            if bucket is None:
                bucket = self._buckets[sid] = TokenBucket(self.rate, self.burst, self._clock)
            if not bucket.take():
                return fail("rate_limited", "too many events; slow down")
            if len(args) > 1:
                raise InvalidPayload("send a single object")
            return await action(sid, args[0] if args else None)
        except GameError as exc:
            return fail(exc.code, exc.message)
        except ValidationError as exc:
            return fail("invalid_payload", describe(exc))
        except Exception:
            logger.error("event %r from %s failed", name, sid, exc_info=True)
            return fail("internal", "internal server error")

    async def _on_unknown(self, event: Any, sid: str, *args: Any) -> Ack:
        async def unknown(_sid: str, _data: Any) -> Ack:
            raise UnknownEvent(f"unknown event {str(event)[:40]!r}")

        return await self._dispatch(sid, "*", args[:1], unknown)

    async def _reserved(self, sid: str, name: str, args: Sequence[Any]) -> Ack:
        """A client event named like a library event: refused, and rate limited like any."""

        async def refuse(_sid: str, _data: Any) -> Ack:
            raise UnknownEvent(f"{name!r} is reserved for the server")

        return await self._dispatch(sid, name, args[:1], refuse)

    async def _send_error(self, sid: str, code: str, message: str) -> None:
        await self._emit("error", payloads.ErrorOut(code=code, message=message).model_dump(), sid)

    async def _check_rate(self, sid: str, name: str, rate: str, error: type[GameError]) -> None:
        address = self._address.get(sid, "unknown")
        if not await self.limits.hit(f"socket_{name}", address, rate):
            wait = await self.limits.retry_after(f"socket_{name}", address, rate)
            raise error(f"too many {name} from your address (limit {rate}); "
                        f"try again in {wait} s")

    async def _emit(self, event: str, data: dict[str, Any], to: str) -> None:
        try:
            await self.sio.emit(event, data, to=to)
        except Exception:
            logger.error("emit %r to %s failed", event, to, exc_info=True)

    @asynccontextmanager
    async def _seated(self, sid: str) -> AsyncIterator[tuple[Seat, Room]]:
        """The caller's seat and room, with the room's lock held."""
        seat = self.sessions.require(sid)
        async with self._lock(seat.room_code):
            if self.sessions.by_sid(sid) is not seat:
                raise NotInRoom("you are no longer in that room")
            room = self.registry.get(seat.room_code)
            self._touch(room.code)
            yield seat, room

    def _touch(self, room_code: str) -> None:
        """A player did something in the room. Timers alone never keep a room alive."""
        self._active[room_code] = self._clock()

    async def _publish(self, room: Room, events: Sequence[ev.Event]) -> None:
        """Broadcast the outcome of a transition; call with the room's lock held."""
        to_room = channel(room.code)
        for e in events:
            if isinstance(e, ev.PlayerLeft):
                await self._unseat(room.code, e)
            elif isinstance(e, ev.SubmissionsRevealed):
                subs = payloads.revealed(e)
                await self._emit("submissions", subs.model_dump(mode="json"), to_room)
                self.videos.on_revealed(e)
            elif isinstance(e, ev.RoundWon):
                await self._emit("round_won", payloads.round_won(e).model_dump(), to_room)
                ended = payloads.RoundEndedOut(round=e.round, reason="won")
                await self._emit("round_ended", ended.model_dump(), to_room)
                self.videos.on_won(to_room, e)
            elif isinstance(e, ev.RoundVoided):
                ended = payloads.RoundEndedOut(round=e.round, reason=e.reason)
                await self._emit("round_ended", ended.model_dump(), to_room)
            elif isinstance(e, ev.GamePaused):
                paused = payloads.GamePausedOut(reason=e.reason, scores=e.scores)
                await self._emit("game_paused", paused.model_dump(), to_room)
            elif isinstance(e, ev.GameStarted) and e.resumed:
                resumed = payloads.GameResumedOut(scores=room.scores())
                await self._emit("game_resumed", resumed.model_dump(), to_room)
            elif isinstance(e, ev.GameOver):
                await self._emit("game_over", payloads.game_over(e).model_dump(), to_room)
        if room.is_empty:
            self.registry.discard_if_empty(room)
            self._forget_room(room.code)
            logger.info("room %s closed", room.code)
            return
        await self._emit("room_state", payloads.to_json(room.public_state()), to_room)
        for player in room.players:
            seat = self.sessions.by_player(room.code, player.id)
            if seat is not None and seat.sid is not None:
                hand = payloads.hand(room.code, room.round_number, player.hand)
                await self._emit("hand", hand.model_dump(), seat.sid)

    async def _unseat(self, room_code: str, e: ev.PlayerLeft) -> None:
        seat = self.sessions.drop(room_code, e.player_id)
        if seat is None or seat.sid is None:
            return
        await self.sio.leave_room(seat.sid, channel(room_code))
        if e.reason == "kicked":
            await self._send_error(seat.sid, "kicked", "the host removed you from the room")

    async def _close_room(self, room: Room, reason: str, message: str) -> None:
        """Close a room whoever sits in it: tell them why, and take them out of its channel."""
        async with self._lock(room.code):
            if self.registry.find(room.code) is not room:
                return
            to_room = channel(room.code)
            closed = payloads.RoomClosedOut(room_code=room.code, reason=reason, message=message)
            await self._emit("room_closed", closed.model_dump(), to_room)
            for player in room.players:
                seat = self.sessions.drop(room.code, player.id)
                if seat is not None and seat.sid is not None:
                    await self.sio.leave_room(seat.sid, to_room)
            self.registry.close(room)
            self._forget_room(room.code)
        logger.info("room %s closed (%s)", room.code, reason)

    # --- client events ------------------------------------------------------------------------

    def _joined(self, room: Room, seat: Seat) -> Ack:
        return ok(
            room_code=room.code,
            player_id=seat.player_id,
            token=seat.token,
            room=payloads.to_json(room.public_state()),
        )

    async def _create_room(self, sid: str, data: Any) -> Ack:
        body = CreateRoomIn.model_validate(data)
        if self.sessions.by_sid(sid) is not None:
            raise AlreadyInRoom("this connection is already in a room; leave it first")
        await self._check_rate(sid, "create_room", self.rooms_rate, TooManyRooms)
        settings = body.settings.to_settings() if body.settings is not None else RoomSettings()
        room, player, events = self.registry.create_room(body.name, settings)
        seat = self.sessions.seat(room.code, player.id, sid)
        async with self._lock(room.code):
            await self.sio.enter_room(sid, channel(room.code))
            self._touch(room.code)
            await self._publish(room, events)
            logger.info("room %s created", room.code)
            return self._joined(room, seat)

    async def _join_room(self, sid: str, data: Any) -> Ack:
        body = JoinRoomIn.model_validate(data)
        await self._check_rate(sid, "join_room", self.joins_rate, TooManyJoins)
        code = self.registry.get(body.room_code).code
        async with self._lock(code):
            room = self.registry.get(code)  # it may have closed while we waited
            if self.sessions.by_sid(sid) is not None:
                raise AlreadyInRoom("this connection is already in a room; leave it first")
            player, events = room.add_player(body.name)
            seat = self.sessions.seat(room.code, player.id, sid)
            await self.sio.enter_room(sid, channel(room.code))
            self._touch(room.code)
            await self._publish(room, events)
            return self._joined(room, seat)

    async def _start_game(self, sid: str, data: Any) -> Ack:
        EmptyIn.model_validate(data if data is not None else {})
        async with self._seated(sid) as (seat, room):
            await self._publish(room, room.start_game(seat.player_id))
        return ok()

    async def _submit_cards(self, sid: str, data: Any) -> Ack:
        body = SubmitCardsIn.model_validate(data)
        async with self._seated(sid) as (seat, room):
            await self._publish(room, room.submit(seat.player_id, body.card_ids))
        return ok()

    async def _pick_winner(self, sid: str, data: Any) -> Ack:
        body = PickWinnerIn.model_validate(data)
        async with self._seated(sid) as (seat, room):
            await self._publish(room, room.pick_winner(seat.player_id, body.submission_id))
        return ok()

    async def _leave_room(self, sid: str, data: Any) -> Ack:
        EmptyIn.model_validate(data if data is not None else {})
        async with self._seated(sid) as (seat, room):
            await self._publish(room, room.remove(seat.player_id, "left"))
        return ok()

    async def _kick_player(self, sid: str, data: Any) -> Ack:
        body = KickPlayerIn.model_validate(data)
        async with self._seated(sid) as (seat, room):
            await self._publish(room, room.kick(seat.player_id, body.player_id))
        return ok()

    async def _update_settings(self, sid: str, data: Any) -> Ack:
        body = UpdateSettingsIn.model_validate(data)
        async with self._seated(sid) as (seat, room):
            settings = body.merged(room.settings)
            decks = []
            for deck_id in settings.deck_ids:
                deck = self.registry.library.get(deck_id)
                if deck is None:
                    raise InvalidSettings(f"unknown deck {deck_id!r}")
                decks.append(deck)
            await self._publish(room, room.update_settings(seat.player_id, settings, decks))
        return ok()

    # --- connections --------------------------------------------------------------------------

    async def _on_connect(self, sid: str, *args: Any) -> Any:
        environ = args[0] if args else None
        if environ is None or environ is not self.sio.get_environ(sid):
            return await self._reserved(sid, "connect", args[1:])  # a client event
        auth = args[1] if len(args) > 1 else None
        try:
            address = client_address(environ)
            if not await self.connections.open(sid, address):
                limit = self.connections.limit
                await self._send_error(sid, "too_many_connections",
                                       f"at most {limit} open connections from one address")
                self._log_refusal(address)
                return False
            if self._gone(sid):  # left while we counted it
                await self.connections.close(sid)
                return True
            self._address[sid] = address
            self._ensure_ticker()
            token = auth.get("token") if isinstance(auth, dict) else None
            if token is None:
                return True
            seat = self.sessions.by_token(token) if isinstance(token, str) else None
            if seat is None:
                await self._send_error(sid, "session_expired",
                                       "that seat is gone; create or join a room")
                return True
            await self._resume(sid, seat)
        except Exception:
            logger.error("connect of %s failed", sid, exc_info=True)
        return True

    def _log_refusal(self, address: str) -> None:
        quiet = self.refusals.hit(address)
        if quiet is not None:
            logger.warning("refused a connection from %s: %d open; %d more refused since "
                           "the last line", address, self.connections.limit, quiet)
        self._log_quiet_refusals()

    def _log_quiet_refusals(self) -> None:
        for address, quiet in self.refusals.sweep():
            logger.warning("refused %d more connections from %s", quiet, address)

    async def _resume(self, sid: str, seat: Seat) -> None:
        """Put ``sid`` in its seat and send it what it needs to rebuild its screen: the room
        state and its hand (with everyone), and the submissions while the czar judges."""
        async with self._lock(seat.room_code):
            room = self.registry.find(seat.room_code)
            if room is None or not room.has_player(seat.player_id):
                await self._send_error(sid, "session_expired",
                                       "that seat is gone; create or join a room")
                return
            old = self.sessions.attach(seat, sid)
            await self.sio.enter_room(sid, channel(seat.room_code))
            if old is not None:
                await self._replace(old, seat.room_code)
            self._touch(room.code)
            await self._publish(room, room.mark_reconnected(seat.player_id))
            subs = payloads.submissions(room.public_state())
            if subs is not None:
                await self._emit("submissions", subs.model_dump(mode="json"), sid)
            logger.info("player %s reconnected to room %s", seat.player_id, room.code)

    async def _replace(self, old_sid: str, room_code: str) -> None:
        """A second connection took the seat: tell the first one and close it."""
        await self.sio.leave_room(old_sid, channel(room_code))
        await self._send_error(old_sid, "session_replaced", "you connected from elsewhere")
        self._spawn(self.sio.disconnect(old_sid))

    async def _on_disconnect(self, sid: str, *args: Any) -> Any:
        if self.sio.manager.is_connected(sid, "/"):
            return await self._reserved(sid, "disconnect", args)  # a client event
        try:
            self._buckets.pop(sid, None)
            self._address.pop(sid, None)
            await self.connections.close(sid)
            await self._detach(sid)
        except Exception:
            logger.error("disconnect of %s failed", sid, exc_info=True)
        return None

    async def _detach(self, sid: str) -> None:
        """The connection ``sid`` is gone: its seat waits for a reconnect."""
        seat = self.sessions.detach(sid, self._clock())
        if seat is None:
            return
        async with self._lock(seat.room_code):
            room = self.registry.find(seat.room_code)
            if seat.sid is not None or room is None or not room.has_player(seat.player_id):
                return
            await self._publish(room, room.mark_disconnected(seat.player_id))

    # --- time ---------------------------------------------------------------------------------

    async def _run_ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            await self.tick()

    async def tick(self) -> None:
        """Remove players whose grace period is over, close rooms that nobody attends or that
        sat idle, and apply round timers."""
        self._log_quiet_refusals()
        for seat in self.sessions.attached():
            if seat.sid is not None and self._gone(seat.sid):
                logger.warning("seat of %s had a dead connection; detached", seat.player_id)
                await self._detach(seat.sid)  # a connection the library no longer knows
        for sid in [sid for sid in self._buckets if self._gone(sid)]:
            del self._buckets[sid]  # an event that raced its connection's disconnect
        try:
            await self.connections.heartbeat()
        except Exception:
            logger.error("connection heartbeat failed", exc_info=True)
        for seat in self.sessions.expired(self._clock(), self.grace):
            try:
                async with self._lock(seat.room_code):
                    if seat.sid is not None:
                        continue  # came back while we waited for the lock
                    room = self.registry.find(seat.room_code)
                    if room is None or not room.has_player(seat.player_id):
                        self.sessions.drop(seat.room_code, seat.player_id)
                        continue
                    await self._publish(room, room.remove(seat.player_id, "timed_out"))
            except Exception:
                logger.error("removing %s failed", seat.player_id, exc_info=True)
        await self._close_unattended()
        for room in self.registry.rooms():
            try:
                async with self._lock(room.code):
                    if self.registry.find(room.code) is room:
                        events = room.tick()
                        if events:
                            await self._publish(room, events)
            except Exception:
                logger.error("tick of room %s failed", room.code, exc_info=True)

    def _gone(self, sid: str) -> bool:
        """The library no longer knows the connection ``sid``."""
        return self.sio.manager.eio_sid_from_sid(sid, "/") is None

    async def _close_unattended(self) -> None:
        """Close rooms without a connected player for the grace period (whatever led there),
        and rooms where nothing happened for ``ROOM_IDLE_SECONDS``."""
        now = self._clock()
        for room in self.registry.rooms():
            try:
                seats = (self.sessions.by_player(room.code, p.id) for p in room.players)
                if any(seat is not None and seat.sid is not None for seat in seats):
                    self._unattended.pop(room.code, None)
                elif now - self._unattended.setdefault(room.code, now) >= self.grace:
                    await self._close_room(room, "abandoned", "nobody was connected")
                    continue
                if now - self._active.setdefault(room.code, now) >= self.idle:
                    minutes = round(self.idle / 60)
                    await self._close_room(
                        room, "idle", f"nothing happened in this room for {minutes} minutes"
                    )
            except Exception:
                logger.error("closing room %s failed", room.code, exc_info=True)

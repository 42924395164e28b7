"""Socket.IO events mapped onto the game rules (docs/protocol.md).

Each client event: rate limit, validate the payload, apply one transition to the room through
the room book (app/state/book.py: the room lives in the store, Redis or in-process, and is saved
only if nobody changed it meanwhile), broadcast what changed through the Socket.IO manager (which
reaches clients on every instance), and acknowledge with ``{"ok": true, ...}`` or
``{"ok": false, "error": {"code", "message"}}``. No input may crash the server: anything
unexpected is logged and acknowledged as ``internal``.

Which connection sits where is part of the room's record (``seats``); this instance only keeps,
for its own connections, which room and player each one is (``self.local``), and checks it
against the record on every event.

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
from dataclasses import dataclass
from typing import Any

import socketio
from pydantic import ValidationError

from app.cache.shared import SharedRedis
from app.core.config import Settings, get_settings
from app.core.ratelimit import RateLimits
from app.game import events as ev
from app.game.errors import GameError, InvalidSettings, RoomNotFound
from app.game.players import name_key
from app.game.registry import RoomRegistry
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
from app.sockets.video import VideoJobs, VideoMaker, default_video_service
from app.state.book import RoomBook, ServiceDegraded
from app.state.instances import Instances
from app.state.record import RoomRecord, SeatState, hash_token, new_token, room_of_token
from app.video.deadlines import video_deadline_seconds

logger = logging.getLogger(__name__)

Ack = dict[str, Any]
SHUTDOWN_VIDEO_DRAIN_SECONDS = 12.0  # inside the shutdown step's own bound (15 s)
Action = Callable[[str, Any], Awaitable[Ack]]


class InvalidPayload(GameError):
    code = "invalid_payload"


class UnknownEvent(GameError):
    code = "unknown_event"


class TooManyRooms(GameError):
    code = "too_many_rooms"


class TooManyJoins(GameError):
    code = "too_many_joins"


class NotInRoom(GameError):
    code = "not_in_room"


class AlreadyInRoom(GameError):
    code = "already_in_room"


class SessionExpired(GameError):
    code = "session_expired"


@dataclass(frozen=True, slots=True)
class LocalSeat:
    """Where one of this instance's connections sits (the record has the truth)."""

    room_code: str
    player_id: str


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
        book: RoomBook,
        instances: Instances,
        *,
        settings: Settings | None = None,
        video_service: VideoMaker | None = None,
        resolve_video: Callable[[], VideoMaker | None] = default_video_service,
        tick_interval: float = 0.5,
        rate_limits: RateLimits | None = None,
        shared: Callable[[], SharedRedis | None] = default_shared,
    ) -> None:
        s = settings if settings is not None else get_settings()
        self.sio = sio
        self.registry = registry
        self.book = book
        self.instances = instances
        self.local: dict[str, LocalSeat] = {}  # this instance's connections that sit in a room
        self._seating_now: set[str] = set()  # connections with a create/join in progress
        self.grace = s.reconnect_grace_seconds
        self.idle = s.room_idle_seconds
        self.rate = s.socket_rate_limit_per_second
        self.burst = s.socket_rate_limit_burst
        # Open connections per address: in Redis (shared by every instance) when it is in use.
        self.connections = ConnectionCounter(
            s.socket_max_connections_per_address, s.socket_connection_ttl_seconds, shared,
            alive=lambda sid: not self._gone(sid), instance_id=instances.id)
        self.rooms_rate = s.socket_rooms_per_address
        self.joins_rate = s.socket_joins_per_address
        # Per-address rates; built here (and closed by stop()) unless the app shares its own.
        self._own_limits = rate_limits is None
        self.limits = rate_limits if rate_limits is not None else RateLimits.from_settings(s)
        self.malformed = MalformedPackets()
        self.refusals = LogWindows()  # refused connections: one log line per address a minute
        self.tick_interval = tick_interval
        self._clock = book.clock
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
        # Disconnects that could not be saved (store unreachable): retried by the ticker.
        self._pending_detach: dict[str, LocalSeat] = {}
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
        # A rolling restart must not lose a winner's video: its render finishes first.
        await self.videos.close(drain=SHUTDOWN_VIDEO_DRAIN_SECONDS)
        await self.connections.aclose()
        await self.instances.leave()
        close_manager = getattr(self.sio.manager, "aclose", None)  # the Redis manager's
        if close_manager is not None:
            await close_manager()
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
                bucket = self._buckets[sid] = TokenBucket(self.rate, self.burst, time.monotonic)
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

    async def _emit(self, event: str, data: dict[str, Any], to: str,
                    local_only: bool = False) -> None:
        """Emit to a room or a connection on any instance. A connection of this instance, or a
        room whose seats are all here (``local_only``), skips the pub/sub round: the other
        instances would only decode it to find nobody to send it to."""
        try:
            here = local_only or self.sio.manager.is_connected(to, "/")
            await self.sio.emit(event, data, to=to, ignore_queue=here)
        except Exception:
            logger.error("emit %r to %s failed", event, to, exc_info=True)

    async def _act(self, sid: str,
                   change: Callable[[RoomRecord, str], Sequence[ev.Event]]) -> RoomRecord:
        """Apply a player's action to their room: ``change(record, player_id)``."""
        local = self.local.get(sid)
        if local is None:
            raise NotInRoom("create or join a room first")

        def transition(record: RoomRecord) -> Sequence[ev.Event]:
            seat = record.seats.get(local.player_id)
            if seat is None or seat.sid != sid:
                raise NotInRoom("you are no longer in that room")
            record.last_active = self._clock()  # timers alone never keep a room alive
            return change(record, local.player_id)

        try:
            return await self._transact(local.room_code, transition)
        except (NotInRoom, RoomNotFound):
            self._drop_local(sid, local)
            raise NotInRoom("you are no longer in that room") from None

    async def _transact(self, code: str, transition: Callable[[RoomRecord], Sequence[ev.Event]],
                        *, reschedule: bool = False) -> RoomRecord:
        record, _ = await self.book.transact(code, transition, publish=self._publish,
                                             reschedule=reschedule)
        return record

    def _drop_local(self, sid: str, local: LocalSeat) -> None:
        if self.local.get(sid) == local:
            del self.local[sid]

    @asynccontextmanager
    async def _seating(self, sid: str) -> AsyncIterator[None]:
        """Create or join for ``sid``: one at a time per connection, and only without a seat."""
        if sid in self._seating_now or await self._holds_seat(sid):
            raise AlreadyInRoom("this connection is already in a room; leave it first")
        self._seating_now.add(sid)
        try:
            yield
        finally:
            self._seating_now.discard(sid)

    async def _holds_seat(self, sid: str) -> bool:
        """Does this connection still sit in a room? (Another instance may have removed it.)"""
        local = self.local.get(sid)
        if local is None:
            return False
        record = await self.book.peek(local.room_code)
        seat = record.seats.get(local.player_id) if record is not None else None
        if seat is None or seat.sid != sid:
            self._drop_local(sid, local)
            return False
        return True

    async def _publish(self, record: RoomRecord, events: Sequence[ev.Event]) -> None:
        """Broadcast the outcome of a saved transition (called with the room's lock held)."""
        room = record.room
        to_room = channel(room.code)
        here = self._all_seats_here(record)
        for e in events:
            if isinstance(e, ev.PlayerLeft):
                await self._unseat(record, e)
            elif isinstance(e, ev.SubmissionsRevealed):
                subs = payloads.revealed(e)
                await self._emit("submissions", subs.model_dump(mode="json"), to_room, here)
                self.videos.on_revealed(e)
            elif isinstance(e, ev.RoundWon):
                await self._emit("round_won", payloads.round_won(e).model_dump(), to_room, here)
                ended = payloads.RoundEndedOut(round=e.round, reason="won")
                await self._emit("round_ended", ended.model_dump(), to_room, here)
                self.videos.on_won(to_room, e)
            elif isinstance(e, ev.RoundVoided):
                ended = payloads.RoundEndedOut(round=e.round, reason=e.reason)
                await self._emit("round_ended", ended.model_dump(), to_room, here)
            elif isinstance(e, ev.GamePaused):
                paused = payloads.GamePausedOut(reason=e.reason, scores=e.scores)
                await self._emit("game_paused", paused.model_dump(), to_room, here)
            elif isinstance(e, ev.GameStarted) and e.resumed:
                resumed = payloads.GameResumedOut(scores=room.scores())
                await self._emit("game_resumed", resumed.model_dump(), to_room, here)
            elif isinstance(e, ev.GameOver):
                await self._emit("game_over", payloads.game_over(e).model_dump(), to_room, here)
        if record.closed is not None:
            await self._announce_close(record)
            return
        if room.is_empty:
            self._forget_room(room.code)
            logger.info("room %s closed", room.code)
            return
        await self._emit("room_state", payloads.to_json(room.public_state()), to_room, here)
        for player in room.players:
            seat = record.seats.get(player.id)
            if seat is not None and seat.sid is not None:
                hand = payloads.hand(room.code, room.round_number, player.hand)
                await self._emit("hand", hand.model_dump(), seat.sid)

    def _all_seats_here(self, record: RoomRecord) -> bool:
        """Every seated connection of the room is on this instance (so is any that left)."""
        mine = self.instances.id
        return all(seat.instance in (None, mine) for seat in
                   (*record.seats.values(), *record.left_seats.values()))

    def _forget_room(self, code: str) -> None:
        for sid, local in list(self.local.items()):
            if local.room_code == code:
                del self.local[sid]
        self._spawn(self.instances.untrack(code))

    async def _unseat(self, record: RoomRecord, e: ev.PlayerLeft) -> None:
        seat = record.left_seats.get(e.player_id)
        if seat is None or seat.sid is None:
            return
        self._drop_local(seat.sid, LocalSeat(record.code, e.player_id))
        await self.sio.leave_room(seat.sid, channel(record.code))
        if e.reason == "kicked":
            await self._send_error(seat.sid, "kicked", "the host removed you from the room")

    async def _announce_close(self, record: RoomRecord) -> None:
        """The room was closed whoever sits in it: tell them why, and empty its channel."""
        to_room = channel(record.code)
        if record.closed == "idle":
            minutes = round(self.idle / 60)
            message = f"nothing happened in this room for {minutes} minutes"
        else:
            message = "nobody was connected"
        closed = payloads.RoomClosedOut(room_code=record.code, reason=record.closed,
                                        message=message)
        await self._emit("room_closed", closed.model_dump(), to_room)
        await self.sio.close_room(to_room)
        self._forget_room(record.code)
        logger.info("room %s closed (%s)", record.code, record.closed)

    # --- client events ------------------------------------------------------------------------

    def _joined(self, record: RoomRecord, player_id: str, token: str) -> Ack:
        return ok(
            room_code=record.code,
            player_id=player_id,
            token=token,
            room=payloads.to_json(record.room.public_state()),
        )

    async def _seat_here(self, sid: str, code: str, player_id: str) -> None:
        self.local[sid] = LocalSeat(code, player_id)
        await self.instances.track(code)

    async def _create_room(self, sid: str, data: Any) -> Ack:
        body = CreateRoomIn.model_validate(data)
        async with self._seating(sid):
            return await self._create_seated(sid, body)

    async def _create_seated(self, sid: str, body: CreateRoomIn) -> Ack:
        await self._check_rate(sid, "create_room", self.rooms_rate, TooManyRooms)
        settings = body.settings.to_settings() if body.settings is not None else RoomSettings()
        for _ in range(8):  # codes are random: a clash with a live room is rare
            room, player, events = self.registry.create_room(body.name, settings)
            token = new_token(room.code)
            seat = SeatState(hash_token(token), sid, self.instances.id)
            record = RoomRecord(room, {player.id: seat})
            self.book.new_record(record)
            async with self.book.lock(room.code):
                if not await self.book.create(record):
                    continue
                await self.sio.enter_room(sid, channel(room.code))
                await self._seat_here(sid, room.code, player.id)
                await self._publish(record, events)
            logger.info("room %s created", room.code)
            return self._joined(record, player.id, token)
        raise ServiceDegraded("could not find a free room code; try again")

    async def _join_room(self, sid: str, data: Any) -> Ack:
        body = JoinRoomIn.model_validate(data)
        await self._check_rate(sid, "join_room", self.joins_rate, TooManyJoins)
        code = self.registry.check_code(body.room_code)
        async with self._seating(sid):
            return await self._join_seated(sid, code, body)

    async def _join_seated(self, sid: str, code: str, body: JoinRoomIn) -> Ack:
        token = new_token(code)
        joined: list[str] = []

        def join(record: RoomRecord) -> Sequence[ev.Event]:
            player, events = record.room.add_player(body.name)
            record.seats[player.id] = SeatState(hash_token(token), sid, self.instances.id)
            record.last_active = self._clock()
            joined[:] = [player.id]
            return events

        await self.sio.enter_room(sid, channel(code))  # so that it gets the room_state
        try:
            record = await self._transact(code, join)
        except BaseException:
            await self.sio.leave_room(sid, channel(code))
            raise
        await self._seat_here(sid, code, joined[0])
        return self._joined(record, joined[0], token)

    async def _start_game(self, sid: str, data: Any) -> Ack:
        EmptyIn.model_validate(data if data is not None else {})
        await self._act(sid, lambda record, me: record.room.start_game(me))
        return ok()

    async def _submit_cards(self, sid: str, data: Any) -> Ack:
        body = SubmitCardsIn.model_validate(data)
        await self._act(sid, lambda record, me: record.room.submit(me, body.card_ids))
        return ok()

    async def _pick_winner(self, sid: str, data: Any) -> Ack:
        body = PickWinnerIn.model_validate(data)
        await self._act(sid, lambda record, me: record.room.pick_winner(me, body.submission_id))
        return ok()

    async def _leave_room(self, sid: str, data: Any) -> Ack:
        EmptyIn.model_validate(data if data is not None else {})
        await self._act(sid, lambda record, me: record.room.remove(me, "left"))
        return ok()

    async def _kick_player(self, sid: str, data: Any) -> Ack:
        body = KickPlayerIn.model_validate(data)
        await self._act(sid, lambda record, me: record.room.kick(me, body.player_id))
        return ok()

    async def _update_settings(self, sid: str, data: Any) -> Ack:
        body = UpdateSettingsIn.model_validate(data)

        def update(record: RoomRecord, me: str) -> Sequence[ev.Event]:
            settings = body.merged(record.room.settings)
            decks = []
            for deck_id in settings.deck_ids:
                deck = self.registry.library.get(deck_id)
                if deck is None:
                    raise InvalidSettings(f"unknown deck {deck_id!r}")
                decks.append(deck)
            return record.room.update_settings(me, settings, decks)

        await self._act(sid, update)
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
            code = room_of_token(token) if isinstance(token, str) else None
            if code is None:
                await self._send_error(sid, "session_expired",
                                       "that seat is gone; create or join a room")
                return True
            await self._resume(sid, code, token)
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

    async def _resume(self, sid: str, code: str, token: str) -> None:
        """Put ``sid`` in the seat its token opens and send it what it needs to rebuild its
        screen: the room state and its hand (with everyone), and the submissions while the czar
        judges. The seat may have been held by a connection on any instance."""
        wanted = hash_token(token)
        found: dict[str, str | None] = {}

        def attach(record: RoomRecord) -> Sequence[ev.Event]:
            player_id = next((pid for pid, seat in record.seats.items()
                              if seat.token_hash == wanted), None)
            if player_id is None or not record.room.has_player(player_id):
                raise SessionExpired("that seat is gone; create or join a room")
            seat = record.seats[player_id]
            found.update(player=player_id, old=seat.sid)
            seat.sid, seat.instance, seat.disconnected_at = sid, self.instances.id, None
            return record.room.mark_reconnected(player_id)

        await self.sio.enter_room(sid, channel(code))
        try:
            record = await self._transact(code, attach)
        except (SessionExpired, RoomNotFound):
            await self.sio.leave_room(sid, channel(code))
            await self._send_error(sid, "session_expired",
                                   "that seat is gone; create or join a room")
            return
        except ServiceDegraded as exc:
            await self.sio.leave_room(sid, channel(code))
            await self._send_error(sid, exc.code, exc.message)
            return
        player_id, old = found["player"], found["old"]
        assert player_id is not None
        await self._seat_here(sid, code, player_id)
        if old is not None and old != sid:
            await self._replace(old, code)
        subs = payloads.submissions(record.room.public_state())
        if subs is not None:
            await self._emit("submissions", subs.model_dump(mode="json"), sid)
        logger.info("player %s reconnected to room %s", player_id, code)

    async def _replace(self, old_sid: str, room_code: str) -> None:
        """A second connection took the seat: tell the first one (on any instance) and close it."""
        self.local.pop(old_sid, None)
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
        local = self.local.pop(sid, None)
        if local is None:
            return

        def detach(record: RoomRecord) -> Sequence[ev.Event]:
            seat = record.seats.get(local.player_id)
            if seat is None or seat.sid != sid:
                return []  # somebody took the seat back meanwhile
            seat.sid, seat.instance, seat.disconnected_at = None, None, self._clock()
            return record.room.mark_disconnected(local.player_id)

        try:
            await self._transact(local.room_code, detach)
        except RoomNotFound:
            pass
        except ServiceDegraded:
            self._pending_detach[sid] = local  # saved when the store answers again

    # --- time ---------------------------------------------------------------------------------

    async def _run_ticker(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval)
            try:
                await self.tick()
            except Exception:
                logger.error("game tick failed", exc_info=True)

    async def tick(self) -> None:
        """Heartbeat, clean up after dead instances, and look at every room whose time came:
        round timers, reconnect grace periods, unattended and idle rooms."""
        self._log_quiet_refusals()
        for sid in [sid for sid in self.local if self._gone(sid)]:
            logger.warning("connection %s of a seat was gone; detached", sid)
            await self._detach(sid)  # a connection the library no longer knows
        for sid in [sid for sid in self._buckets if self._gone(sid)]:
            del self._buckets[sid]  # an event that raced its connection's disconnect
        try:
            await self.connections.heartbeat()
        except Exception:
            logger.error("connection heartbeat failed", exc_info=True)
        dead = await self._heartbeat()
        for instance in dead:
            await self._reap_instance(instance)
        for code in await self.book.due():
            try:
                await self._transact(code, self._timers, reschedule=True)
            except RoomNotFound:
                await self.book.unschedule(code)
            except ServiceDegraded:
                pass
            except Exception:
                logger.error("tick of room %s failed", code, exc_info=True)

    async def _heartbeat(self) -> list[str]:
        try:
            dead = await self.instances.heartbeat()
        except Exception as exc:  # Redis unreachable: the outage path (app/state/book.py)
            logger.debug("instance heartbeat failed: %s", type(exc).__name__)
            return []
        if self.instances.revived:
            logger.warning("this instance was taken for dead; putting its connections back")
            for sid, local in list(self.local.items()):
                await self._reattach(sid, local)
        try:
            if self.book.pending_write_back:
                await self.book.write_back()
            await self.book.confirm_saves()
            for sid, local in list(self._pending_detach.items()):
                del self._pending_detach[sid]
                self.local[sid] = local
                await self._detach(sid)
        except Exception:
            logger.warning("write-back after the outage failed; retrying", exc_info=True)
        return dead

    async def _reattach(self, sid: str, local: LocalSeat) -> None:
        """A live connection whose seat was marked disconnected by others: sit it back down."""

        def attach(record: RoomRecord) -> Sequence[ev.Event]:
            seat = record.seats.get(local.player_id)
            if seat is None or (seat.sid is not None and seat.sid != sid):
                return []  # gone, or taken by a newer connection
            seat.sid, seat.instance, seat.disconnected_at = sid, self.instances.id, None
            return record.room.mark_reconnected(local.player_id)

        try:
            await self._transact(local.room_code, attach)
            await self.instances.track(local.room_code)
        except GameError:
            pass
        except Exception:
            logger.error("putting %s back in room %s failed", sid, local.room_code,
                         exc_info=True)

    def _timers(self, record: RoomRecord) -> Sequence[ev.Event]:
        """Everything time does to a room, as one transition."""
        room, now = record.room, self._clock()
        events: list[ev.Event] = []
        for player_id, seat in list(record.seats.items()):
            if (seat.sid is None and seat.disconnected_at is not None
                    and now - seat.disconnected_at >= self.grace
                    and room.has_player(player_id)):
                events += room.remove(player_id, "timed_out")
        if room.is_empty:
            return events
        if (not record.attended() and record.unattended_since is not None
                and now - record.unattended_since >= self.grace):
            record.closed = "abandoned"
            return events
        if now - record.last_active >= self.idle:
            record.closed = "idle"
            return events
        if record.idle_check <= now:
            record.idle_check = record.last_active + self.idle
        events += room.tick()
        return events

    async def _reap_instance(self, instance: str) -> None:
        """Another instance died: the seats it held are disconnected (their grace starts)."""
        codes = await self.instances.rooms_of(instance)
        now = self._clock()

        def detach_all(record: RoomRecord) -> Sequence[ev.Event]:
            events: list[ev.Event] = []
            for player_id, seat in record.seats.items():
                if seat.instance == instance and seat.sid is not None:
                    seat.sid, seat.instance, seat.disconnected_at = None, None, now
                    events += record.room.mark_disconnected(player_id)
            return events

        for code in codes:
            try:
                await self._transact(code, detach_all)
            except RoomNotFound:
                pass
            except Exception:
                logger.error("cleaning up room %s after instance %s failed", code, instance,
                             exc_info=True)
        await self.instances.forget(instance)
        await self.connections.release_instance(instance)
        logger.warning("instance %s stopped answering; its %d room(s) were cleaned up",
                       instance, len(codes))

    def _gone(self, sid: str) -> bool:
        """The library no longer knows the connection ``sid``."""
        return self.sio.manager.eio_sid_from_sid(sid, "/") is None

"""The game never gets stuck: leaves, drops, czar departures and timers."""

from __future__ import annotations

import pytest

from app.game import events as ev
from app.game.errors import NotAllowed, WrongPhase
from tests.game.support import (
    FakeClock,
    czar,
    make_deck,
    make_room,
    non_czars,
    of_type,
    one,
    play,
    room_settings,
    started,
)

# --- a player leaves --------------------------------------------------------------------------


def test_leaver_submission_is_withdrawn_and_others_are_revealed() -> None:
    room = started(5)
    a, b, c, d = non_czars(room)
    play(room, a)
    play(room, b)
    play(room, c)
    events = room.remove(a)
    assert ev.SubmissionWithdrawn(1, a) in events
    assert room.phase == "submitting"  # d has not played
    events = room.remove(d)
    revealed = one(events, ev.SubmissionsRevealed)
    assert len(revealed.submissions) == 2
    assert room.public_state().phase == "judging"


def test_last_missing_player_leaving_triggers_reveal() -> None:
    room = started(4)
    a, b, c = non_czars(room)
    play(room, a)
    play(room, b)
    events = room.remove(c)
    assert len(one(events, ev.SubmissionsRevealed).submissions) == 2


def test_leaving_during_judging_keeps_the_submission_anonymous() -> None:
    """Taking a revealed submission away would tell everyone who wrote it (issue 10, item 8)."""
    room = started(5)
    for pid in non_czars(room):
        play(room, pid)
    before = room.public_state().submissions
    host = room.host_id or ""
    leaver, kicked = [pid for pid in non_czars(room) if pid != host][:2]
    room.remove(leaver)
    room.kick(host, kicked)
    assert room.phase == "judging"
    assert room.public_state().submissions == before
    assert len(room.round.revealed) == 4  # type: ignore[union-attr]


def test_a_leaver_can_still_win_but_scores_nothing() -> None:
    room = started(5)
    for pid in non_czars(room):
        play(room, pid)
    assert room.round is not None
    leaver = non_czars(room)[0]
    name = room.player(leaver).name
    sub = next(s for s in room.round.revealed if s.player_id == leaver)
    room.remove(leaver)
    events = room.pick_winner(czar(room), sub.submission_id)
    won = one(events, ev.RoundWon)
    assert (won.winner_player_id, won.winner_name, won.winner_left) == (leaver, name, True)
    assert leaver not in won.scores and sum(won.scores.values()) == 0
    assert one(events, ev.RoundStarted).round == 2


def test_all_submitters_leaving_during_judging_leaves_the_round_to_the_czar() -> None:
    room = started(6)
    a, b, *_ = non_czars(room)
    for pid in non_czars(room):
        if pid not in (a, b):
            room.mark_disconnected(pid)  # keep seats so the game goes on
    play(room, a)
    play(room, b)
    assert room.phase == "judging"
    room.remove(a)
    events = room.remove(b)
    assert not of_type(events, ev.RoundVoided)
    assert room.phase == "judging" and len(room.public_state().submissions) == 2


# --- the czar leaves --------------------------------------------------------------------------


@pytest.mark.parametrize("phase", ["submitting", "judging"])
def test_czar_leaving_voids_the_round_and_returns_cards(phase: str) -> None:
    room = started(5)
    old_czar = czar(room)
    seat_after = room.players[1].id
    a, b, c, d = non_czars(room)
    hands_before = {pid: sorted(x.id for x in room.hand(pid)) for pid in (a, b, c, d)}
    play(room, a)
    play(room, b)
    if phase == "judging":
        play(room, c)
        play(room, d)
        assert room.phase == "judging"
    events = room.remove(old_czar)
    assert ev.RoundVoided(1, "czar_left") in events
    assert one(events, ev.RoundStarted).czar_id == seat_after
    assert room.phase == "submitting"
    for pid in (a, b, c, d):
        if pid != czar(room):
            assert sorted(x.id for x in room.hand(pid)) == hands_before[pid]


def test_czar_leaving_from_a_later_seat_passes_to_the_next_seat() -> None:
    room = started(5)
    for _ in range(4):  # play until the czar sits in the last seat
        for pid in non_czars(room):
            play(room, pid)
        assert room.round is not None
        room.pick_winner(czar(room), room.round.revealed[0].submission_id)
    assert czar(room) == room.players[4].id
    events = room.remove(czar(room))
    assert one(events, ev.RoundStarted).czar_id == room.players[0].id


def test_extra_cards_are_put_back_when_a_pick_three_round_is_voided() -> None:
    room = started(4, deck=make_deck(picks=(3,) * 10))
    events = room.remove(czar(room))
    assert of_type(events, ev.RoundVoided)
    # The new round dealt its own 2 extra cards; nobody holds more than that.
    assert max(len(p.hand) for p in room.players) == 12


# --- under three players ----------------------------------------------------------------------


def test_falling_under_three_players_pauses_with_scores_kept() -> None:
    room = started(3, settings=room_settings(score_limit=5))
    for pid in non_czars(room):
        play(room, pid)
    assert room.round is not None
    winner = room.round.revealed[0].player_id
    room.pick_winner(czar(room), room.round.revealed[0].submission_id)
    leaver = next(p.id for p in room.players if p.id != winner)
    events = room.remove(leaver)
    paused = one(events, ev.GamePaused)
    assert paused.scores[winner] == 1
    assert room.phase == "lobby" and room.paused and room.round is None
    assert room.public_state().paused
    with pytest.raises(WrongPhase):
        room.submit(winner, [])
    room.add_player("Newcomer")
    events = room.start_game(room.host_id or "")
    assert events[0] == ev.GameStarted(resumed=True)
    assert room.player(winner).score == 1
    assert one(events, ev.RoundStarted).round == 3  # rounds keep counting


def test_leaving_during_judging_when_falling_under_three_pauses_without_revealing() -> None:
    room = started(3)
    a, b = non_czars(room)
    play(room, a)
    events = room.remove(b)
    assert not of_type(events, ev.SubmissionsRevealed)
    assert ev.RoundVoided(1, "not_enough_players") in events
    assert room.paused
    assert len(room.hand(a)) == 10  # the played card came back


# --- drops ------------------------------------------------------------------------------------


def test_drop_withdraws_the_submission_back_to_the_hand() -> None:
    room = started(4)
    a, b, c = non_czars(room)
    hand = sorted(x.id for x in room.hand(a))
    play(room, a)
    events = room.mark_disconnected(a)
    assert ev.SubmissionWithdrawn(1, a) in events
    assert sorted(x.id for x in room.hand(a)) == hand
    assert room.has_player(a)


def test_drop_of_the_last_missing_player_reveals() -> None:
    room = started(4)
    a, b, c = non_czars(room)
    play(room, a)
    play(room, b)
    events = room.mark_disconnected(c)
    assert one(events, ev.SubmissionsRevealed)


def test_drop_during_judging_keeps_the_submission() -> None:
    room = started(4)
    for pid in non_czars(room):
        play(room, pid)
    dropped = non_czars(room)[0]
    room.mark_disconnected(dropped)
    assert room.round is not None and len(room.round.revealed) == 3
    sid = next(s.submission_id for s in room.round.revealed if s.player_id == dropped)
    events = room.pick_winner(czar(room), sid)
    assert one(events, ev.RoundWon).winner_player_id == dropped


def test_reconnect_during_submitting_rejoins_the_round() -> None:
    room = started(4)
    a, b, c = non_czars(room)
    room.mark_disconnected(a)
    play(room, b)
    room.mark_reconnected(a)
    play(room, c)
    assert room.phase == "submitting"  # waits for a again
    events = play(room, a)
    assert len(one(events, ev.SubmissionsRevealed).submissions) == 3


def test_dropped_player_cannot_submit_until_back() -> None:
    room = started(4)
    a = non_czars(room)[0]
    room.mark_disconnected(a)
    with pytest.raises(NotAllowed):
        play(room, a)


def test_disconnected_players_are_skipped_as_czar() -> None:
    room = started(4)
    room.mark_disconnected(room.players[1].id)
    for pid in non_czars(room):
        if room.player(pid).connected:
            play(room, pid)
    assert room.round is not None
    events = room.pick_winner(czar(room), room.round.revealed[0].submission_id)
    assert one(events, ev.RoundStarted).czar_id == room.players[2].id


def test_dropped_czar_is_removed_after_grace_and_the_round_is_voided() -> None:
    room = started(4)
    old = czar(room)
    room.mark_disconnected(old)
    for pid in non_czars(room):
        play(room, pid)
    assert room.phase == "judging"  # waiting for the czar to come back
    events = room.remove(old, "timed_out")
    assert one(events, ev.PlayerLeft).reason == "timed_out"
    assert ev.RoundVoided(1, "czar_left") in events


def test_everyone_but_the_czar_dropped_waits_without_revealing() -> None:
    room = started(4)
    for pid in non_czars(room):
        room.mark_disconnected(pid)
    assert room.phase == "submitting"
    assert room.round is not None and not room.round.participants


def test_newcomer_during_submitting_gets_a_hand_and_plays() -> None:
    room = started(3)
    a, b = non_czars(room)
    play(room, a)
    newcomer, _ = room.add_player("Late")
    assert len(newcomer.hand) == 10
    play(room, b)
    assert room.phase == "submitting"  # the newcomer is expected too
    events = play(room, newcomer.id)
    assert len(one(events, ev.SubmissionsRevealed).submissions) == 3


def test_newcomer_during_judging_waits_for_next_round() -> None:
    room = started(3)
    for pid in non_czars(room):
        play(room, pid)
    newcomer, _ = room.add_player("Late")
    assert len(newcomer.hand) == 10
    assert room.round is not None and newcomer.id not in room.round.participants


# --- timers -----------------------------------------------------------------------------------


def test_no_timers_means_tick_does_nothing() -> None:
    clock = FakeClock()
    room = started(4, clock=clock)
    clock.advance(10_000)
    assert room.tick() == []
    assert room.seconds_left() is None


def test_submit_timeout_reveals_what_was_submitted() -> None:
    clock = FakeClock()
    room = started(4, clock=clock, settings=room_settings(submit_seconds=30, judge_seconds=20))
    a = non_czars(room)[0]
    play(room, a)
    clock.advance(29.5)
    assert room.tick() == []
    assert room.seconds_left() == pytest.approx(0.5)
    clock.advance(0.5)
    events = room.tick()
    assert len(one(events, ev.SubmissionsRevealed).submissions) == 1
    assert room.seconds_left() == pytest.approx(20)


def test_submit_timeout_with_no_submissions_voids_and_moves_on() -> None:
    clock = FakeClock()
    room = started(4, clock=clock, settings=room_settings(submit_seconds=30))
    first = czar(room)
    clock.advance(31)
    events = room.tick()
    assert ev.RoundVoided(1, "submit_timeout") in events
    assert one(events, ev.RoundStarted).czar_id != first
    assert room.tick() == []  # the new round has a fresh deadline


def test_judge_timeout_voids_and_returns_cards() -> None:
    clock = FakeClock()
    room = started(4, clock=clock, settings=room_settings(judge_seconds=15))
    hands = {pid: sorted(c.id for c in room.hand(pid)) for pid in non_czars(room)}
    for pid in non_czars(room):
        play(room, pid)
    assert room.seconds_left() == pytest.approx(15)
    clock.advance(15)
    events = room.tick()
    assert ev.RoundVoided(1, "judge_timeout") in events
    assert one(events, ev.RoundStarted).round == 2
    for pid, before in hands.items():
        if pid != czar(room):
            assert sorted(c.id for c in room.hand(pid)) == before
    assert all(p.score == 0 for p in room.players)


def test_tick_in_lobby_is_harmless() -> None:
    assert make_room(2).tick() == []

from __future__ import annotations

import random

import pytest

from app.game import events as ev
from app.game.cards import BlackCard
from app.game.errors import (
    AlreadySubmitted,
    InvalidCards,
    NotAllowed,
    NotCzar,
    NotEnoughCards,
    NotEnoughPlayers,
    NotHost,
    UnknownSubmission,
    WrongPhase,
)
from app.game.room import Room
from app.game.round import RoundPhase
from tests.game.support import (
    czar,
    make_deck,
    make_room,
    non_czars,
    of_type,
    one,
    play,
    play_all,
    room_settings,
    started,
)


def win_round(room: Room, winner: str | None = None) -> list[ev.Event]:
    """Everyone plays; the czar picks ``winner``'s submission (or the first one)."""
    events = play_all(room)
    assert room.round is not None and room.round.phase is RoundPhase.JUDGING
    chosen = room.round.revealed[0]
    if winner is not None:
        chosen = next(s for s in room.round.revealed if s.player_id == winner)
    return events + room.pick_winner(czar(room), chosen.submission_id)


# --- starting ---------------------------------------------------------------------------------


def test_start_needs_three_players() -> None:
    room = make_room(2)
    with pytest.raises(NotEnoughPlayers):
        room.start_game(room.players[0].id)


def test_only_host_starts() -> None:
    room = make_room(3)
    with pytest.raises(NotHost):
        room.start_game(room.players[1].id)


def test_cannot_start_twice() -> None:
    room = started(3)
    with pytest.raises(WrongPhase):
        room.start_game(room.players[0].id)


def test_start_deals_hands_and_starts_round_one() -> None:
    room = make_room(4)
    events = room.start_game(room.players[0].id)
    assert events[0] == ev.GameStarted(resumed=False)
    started_ev = one(events, ev.RoundStarted)
    assert started_ev.round == 1
    assert started_ev.czar_id == room.players[0].id
    assert room.phase == "submitting"
    for p in room.players:
        assert len(p.hand) == 10
    all_cards = [c.id for p in room.players for c in p.hand]
    assert len(set(all_cards)) == len(all_cards), "a card was dealt twice"
    assert room.round is not None
    assert room.round.participants == set(non_czars(room))


def test_start_refuses_decks_too_small_for_the_table() -> None:
    room = make_room(4, deck=make_deck(white=40))
    with pytest.raises(NotEnoughCards):
        room.start_game(room.players[0].id)


# --- submitting -------------------------------------------------------------------------------


def test_submit_moves_cards_out_of_the_hand() -> None:
    room = started(4)
    pid = non_czars(room)[0]
    card = room.hand(pid)[3]
    events = room.submit(pid, [card.id])
    assert events == [ev.CardsSubmitted(1, pid)]
    assert card not in room.hand(pid)
    assert room.public_state().players[1].submitted


def test_czar_cannot_submit() -> None:
    room = started(4)
    with pytest.raises(NotAllowed):
        play(room, czar(room))


def test_cannot_submit_twice() -> None:
    room = started(4)
    pid = non_czars(room)[0]
    play(room, pid)
    with pytest.raises(AlreadySubmitted):
        play(room, pid)


@pytest.mark.parametrize("case", ["too_few", "too_many", "not_in_hand", "duplicate", "other"])
def test_submit_validates_cards(case: str) -> None:
    room = started(4)
    pid, other = non_czars(room)[:2]
    hand = [c.id for c in room.hand(pid)]
    card_ids = {
        "too_few": [],
        "too_many": hand[:2],
        "not_in_hand": ["test:w:99999"],
        "duplicate": [hand[0], hand[0]],
        "other": [room.hand(other)[0].id],
    }[case]
    before = list(room.hand(pid))
    with pytest.raises(InvalidCards):
        room.submit(pid, card_ids)
    assert room.hand(pid) == before
    assert room.round is not None and not room.round.submissions


def test_submit_in_wrong_phase() -> None:
    room = make_room(3)
    with pytest.raises(WrongPhase):
        room.submit(room.players[1].id, ["x"])


def test_submissions_are_revealed_shuffled_and_anonymous_when_all_are_in() -> None:
    room = started(6)
    players = non_czars(room)
    events: list[ev.Event] = []
    for pid in players[:-1]:
        events += play(room, pid)
        assert room.phase == "submitting"
    played = {pid: room.round.submissions[pid].cards[0].text for pid in players[:-1]}  # type: ignore[union-attr]
    events += play(room, players[-1])
    played[players[-1]] = room.round.submissions[players[-1]].cards[0].text  # type: ignore[union-attr]
    revealed = one(events, ev.SubmissionsRevealed)
    assert room.phase == "judging"
    assert sorted(s.cards[0] for s in revealed.submissions) == sorted(played.values())
    ids = [s.submission_id for s in revealed.submissions]
    assert len(set(ids)) == len(ids)
    for sid in ids:
        assert all(pid not in sid for pid in players)
    assert [s.cards[0] for s in revealed.submissions] != [played[p] for p in players]
    assert room.public_state().submissions == revealed.submissions  # one shape for both


def test_reveal_order_differs_between_seeds() -> None:
    orders = set()
    for seed in range(6):
        room = started(6, seed=seed)
        play_all(room)
        assert room.round is not None
        orders.add(tuple(s.player_id for s in room.round.revealed))
    assert len(orders) > 1


# --- judging ----------------------------------------------------------------------------------


def test_only_the_czar_picks() -> None:
    room = started(4)
    play_all(room)
    assert room.round is not None
    sid = room.round.revealed[0].submission_id
    with pytest.raises(NotCzar):
        room.pick_winner(non_czars(room)[0], sid)


def test_unknown_submission() -> None:
    room = started(4)
    play_all(room)
    with pytest.raises(UnknownSubmission):
        room.pick_winner(czar(room), "s0_nope")


def test_pick_in_wrong_phase() -> None:
    room = started(4)
    with pytest.raises(WrongPhase):
        room.pick_winner(czar(room), "s0_nope")


def test_winner_scores_and_next_round_starts_with_next_czar_and_full_hands() -> None:
    room = started(4)
    first_czar = czar(room)
    winner = non_czars(room)[1]
    assert room.round is not None
    black = room.round.black.text
    winning_text = room.hand(winner)[0].text
    events = win_round(room, winner)
    won = one(events, ev.RoundWon)
    assert won.round == 1
    assert won.black_card_text == black
    assert won.white_card_texts == (winning_text,)
    assert won.winner_player_id == winner
    assert won.scores[winner] == 1 and sum(won.scores.values()) == 1
    nxt = one(events, ev.RoundStarted)
    assert nxt.round == 2
    assert nxt.czar_id == room.players[1].id != first_czar
    assert all(len(p.hand) == 10 for p in room.players)


def test_czar_rotates_through_every_seat() -> None:
    room = started(4, settings=room_settings(score_limit=50))
    czars = []
    for _ in range(8):
        czars.append(czar(room))
        win_round(room)
    seats = [p.id for p in room.players]
    assert czars == seats + seats


def test_multi_pick_cards_keep_the_order_of_play() -> None:
    room = started(4, deck=make_deck(picks=(2,) * 10))
    pid = non_czars(room)[0]
    first, second = room.hand(pid)[4], room.hand(pid)[1]
    room.submit(pid, [first.id, second.id])
    for other in non_czars(room)[1:]:
        play(room, other)
    assert room.round is not None
    sub = next(s for s in room.round.revealed if s.player_id == pid)
    events = room.pick_winner(czar(room), sub.submission_id)
    assert one(events, ev.RoundWon).white_card_texts == (first.text, second.text)


def test_pick_three_draws_two_extra_cards_first() -> None:
    room = started(4, deck=make_deck(picks=(3,) * 10))
    assert room.round is not None and room.round.black.draw == 2
    for pid in non_czars(room):
        assert len(room.hand(pid)) == 12
    assert len(room.hand(czar(room))) == 10
    win_round(room)  # played 3 of 12, refilled to 10, then 2 extra for the next pick-3 card
    assert sorted(len(p.hand) for p in room.players) == [10, 12, 12, 12]
    assert len(room.hand(czar(room))) == 10


def test_game_over_at_score_limit_and_new_game_resets() -> None:
    room = started(3, settings=room_settings(score_limit=2))
    winner = room.players[1].id
    events: list[ev.Event] = []
    while room.phase != "game_over":
        target = winner if czar(room) != winner else None
        events = win_round(room, target)
    over = one(events, ev.GameOver)
    assert over.winner_player_id == winner
    assert over.scores[winner] == 2
    assert room.winner_id == winner
    assert room.round is None
    assert not of_type(events, ev.RoundStarted)
    with pytest.raises(WrongPhase):
        room.submit(room.players[2].id, [])
    restart = room.start_game(room.players[0].id)
    assert restart[0] == ev.GameStarted(resumed=False)
    assert all(p.score == 0 for p in room.players)
    assert room.round_number == 1 and room.winner_id is None


def test_white_discards_are_reshuffled_when_the_deck_runs_out() -> None:
    # 3 players * (10 + 3) = 39 cards needed; 40 in the deck, so the pile empties fast.
    room = started(3, deck=make_deck(white=40), settings=room_settings(score_limit=50))
    reshuffled = []
    for _ in range(12):
        reshuffled += of_type(win_round(room), ev.DeckReshuffled)
        hands = [c.id for p in room.players for c in p.hand]
        assert len(set(hands)) == len(hands) == 30
    assert ev.DeckReshuffled("white") in reshuffled


def test_black_cards_are_reshuffled_when_they_run_out() -> None:
    room = started(3, deck=make_deck(picks=(1, 1)), settings=room_settings(score_limit=50))
    seen: list[ev.Event] = []
    for _ in range(4):
        seen += win_round(room)
    assert ev.DeckReshuffled("black") in seen
    assert room.round is not None


def test_black_card_pick_and_draw_are_public() -> None:
    room = started(3, deck=make_deck(picks=(3,)))
    view = room.public_state()
    assert view.black_card is not None
    assert (view.black_card.pick, view.black_card.draw) == (3, 2)


def test_cards_have_single_owner_over_a_long_game() -> None:
    deck = make_deck(white=120, picks=(1, 2, 3) * 5)
    room = Room("ABCDE", room_settings(score_limit=50), [deck], rng=random.Random(5))
    for i in range(5):
        room.add_player(f"P{i}")
    room.start_game(room.players[0].id)
    for _ in range(40):
        win_round(room)
        held = [c.id for p in room.players for c in p.hand]
        assert len(held) == len(set(held))
    assert isinstance(room.round.black if room.round else None, BlackCard)

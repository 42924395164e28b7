from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from app.core.cards import MAX_BLACK_CHARS, MAX_WHITE_CHARS, Combination, count_blanks
from app.game import decks as decks_mod
from app.game.decks import (
    BUILTIN_DECK_FILES,
    DEFAULT_DECK_ID,
    DeckLibrary,
    load_deck_file,
    load_library,
    read_deck_file,
)
from app.game.errors import DeckError


def write(tmp_path: Path, data: Any, name: str = "deck.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


COMPACT = {
    "white": ["A spoon.", "A fork.", "A knife.", "A ladle."],
    "black": [
        {"text": "I stir with _.", "pick": 1},
        {"text": "_ fights _.", "pick": 2},
        {"text": "What now?", "pick": 1},
        {"text": "_, _ and _.", "pick": 3},
    ],
    "packs": [
        {"name": "Kitchen", "official": False, "white": [0, 1, 1], "black": [0, 1]},
        {"name": "Drawer", "id": "drawer", "white": [2, 3], "black": [2, 3]},
    ],
}


# --- the built-in deck ------------------------------------------------------------------------


def test_builtin_deck_meets_the_brief() -> None:
    [deck] = load_deck_file(BUILTIN_DECK_FILES[0])
    assert deck.id == DEFAULT_DECK_ID
    assert deck.official is False
    picks = [c.pick for c in deck.black]
    assert len(deck.black) >= 60
    assert picks.count(2) >= 8
    assert picks.count(3) >= 3
    assert len(deck.white) >= 300
    texts = [c.text for c in deck.white]
    assert len(set(texts)) == len(texts), "duplicate white cards"
    assert len({c.text for c in deck.black}) == len(deck.black), "duplicate black cards"
    for card in deck.black:
        assert count_blanks(card.text) in (0, card.pick), card.text
        assert "_" in card.text or card.text.endswith("?"), card.text
        assert card.draw == (2 if card.pick == 3 else 0)


def test_builtin_deck_file_is_compact_format() -> None:
    data = json.loads(BUILTIN_DECK_FILES[0].read_text(encoding="utf-8"))
    assert set(data) == {"white", "black", "packs"}
    assert all(isinstance(w, str) for w in data["white"])
    assert all(set(b) == {"text", "pick"} for b in data["black"])
    [pack] = data["packs"]
    assert pack["official"] is False
    assert sorted(pack["white"]) == list(range(len(data["white"])))
    assert sorted(pack["black"]) == list(range(len(data["black"])))


def test_card_ids_are_stable_strings() -> None:
    [first] = load_deck_file(BUILTIN_DECK_FILES[0])
    [second] = load_deck_file(BUILTIN_DECK_FILES[0])
    assert [c.id for c in first.white] == [c.id for c in second.white]
    assert first.white[0].id == "punchline-cc0:w:0"
    assert first.black[5].id == "punchline-cc0:b:5"
    assert all(re.fullmatch(r"punchline-cc0:[wb]:\d+", c.id) for c in first.white + first.black)


# --- formats ----------------------------------------------------------------------------------


def test_compact_with_a_list_of_packs(tmp_path: Path) -> None:
    kitchen, drawer = load_deck_file(write(tmp_path, COMPACT))
    assert (kitchen.id, kitchen.name) == ("kitchen", "Kitchen")
    assert [c.id for c in kitchen.white] == ["kitchen:w:0", "kitchen:w:1"]  # duplicate dropped
    assert [c.text for c in kitchen.black] == ["I stir with _.", "_ fights _."]
    assert drawer.id == "drawer"
    assert [c.id for c in drawer.white] == ["drawer:w:2", "drawer:w:3"]
    assert [(c.pick, c.draw) for c in drawer.black] == [(1, 0), (3, 2)]
    assert drawer.source == str(tmp_path / "deck.json")


def test_compact_with_packs_keyed_by_abbreviation(tmp_path: Path) -> None:
    data = dict(COMPACT, packs={"KIT": {"name": "Kitchen", "white": [0], "black": [0]}})
    [deck] = load_deck_file(write(tmp_path, data))
    assert deck.id == "kit"
    assert deck.name == "Kitchen"


def test_compact_without_packs_is_one_deck_named_after_the_file(tmp_path: Path) -> None:
    data = {"white": ["A spoon."], "black": [{"text": "Why _?", "pick": 1}]}
    [deck] = load_deck_file(write(tmp_path, data, "My Deck.json"))
    assert (deck.id, deck.name) == ("my-deck", "My Deck")


def test_compact_with_white_objects_and_explicit_draw(tmp_path: Path) -> None:
    data = {
        "white": [{"text": "A spoon."}],
        "black": [{"text": "_ and _.", "pick": 2, "draw": 1}, {"text": "Bare prompt _."}],
    }
    [deck] = load_deck_file(write(tmp_path, data))
    assert deck.white[0].text == "A spoon."
    assert [(c.pick, c.draw) for c in deck.black] == [(2, 1), (1, 0)]


def test_full_format_list(tmp_path: Path) -> None:
    data = [
        {
            "name": "Base",
            "official": False,
            "white": [{"text": "A spoon.", "pack": 0}, {"text": "A fork.", "pack": 0}],
            "black": [{"text": "I need _.", "pick": 1, "pack": 0}],
        }
    ]
    [deck] = load_deck_file(write(tmp_path, data))
    assert deck.id == "base"
    assert [c.id for c in deck.white] == ["base:w:0", "base:w:1"]
    assert deck.black[0].id == "base:b:0"


def test_full_format_object(tmp_path: Path) -> None:
    data = {"abc": {"name": "Alphabet", "white": [{"text": "A."}], "black": []}}
    [deck] = load_deck_file(write(tmp_path, data))
    assert (deck.id, deck.name, len(deck.black)) == ("abc", "Alphabet", 0)


# --- bad files: broken structure refuses the file --------------------------------------------


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ([1, 2], "pack #0 must be an object"),
        ("just a string", "expected a JSON object or list of packs"),
        ([], "no packs in file"),
        ({"white": "A.", "black": []}, "'white' must be a list"),
        ({"white": [""], "black": []}, "no playable card in file (set aside: empty 1"),
        (dict(COMPACT, packs=[{"name": "X", "white": [99]}]), "99 is not a card index"),
        (dict(COMPACT, packs=[{"name": "X", "white": [True]}]), "is not a card index"),
        (dict(COMPACT, packs=[{"name": "", "white": [0]}]), "'name' must be a non-empty string"),
        (dict(COMPACT, packs=[{"name": "X", "id": "a:b", "white": [0]}]), "id 'a:b' must match"),
        (dict(COMPACT, packs=[{"name": "X", "white": [0], "official": "no"}]), "'official'"),
        (dict(COMPACT, packs=[{"name": "X"}]), "no playable card in file"),
        (
            dict(COMPACT, packs=[{"name": "X", "id": "x", "white": [0]},
                                 {"name": "Y", "id": "x", "white": [1]}]),
            "deck id 'x' appears twice",
        ),
        (dict(COMPACT, packs="nope"), "'packs' must be a list or an object"),
        ([{"name": "X", "white": "A."}], "pack #0 'white' must be a list"),
    ],
)
def test_bad_deck_files_name_the_file_and_the_problem(
    tmp_path: Path, data: Any, problem: str
) -> None:
    path = write(tmp_path, data)
    with pytest.raises(DeckError) as info:
        load_deck_file(path)
    assert info.value.code == "deck_error"
    assert info.value.path == path
    assert str(info.value).startswith(f"{path}: ")
    assert problem in str(info.value)


# --- bad cards are set aside, the rest loads --------------------------------------------------


def _one_bad_black(card: Any) -> dict[str, Any]:
    return {"white": ["A."], "black": [{"text": "Fine _.", "pick": 1}, card]}


@pytest.mark.parametrize(
    ("card", "reason"),
    [
        ({"text": "_ _ _ _", "pick": 4}, "bad_pick"),
        ({"text": "_ " * 10, "pick": 10}, "bad_pick"),
        ({"text": "Why _?", "pick": 0}, "bad_pick"),
        ({"text": "Why _?", "pick": True}, "bad_pick"),
        ({"text": "Why _?", "pick": "1"}, "bad_pick"),
        ({"text": "_ and _", "pick": 1}, "blanks_differ_from_pick"),
        ({"text": "I love _word_ and _.", "pick": 2}, "blanks_differ_from_pick"),
        ({"text": "Why _?", "pick": 1, "draw": 9}, "bad_draw"),
        ({"text": "", "pick": 1}, "empty"),
        ({"text": "\x00\x07", "pick": 1}, "empty"),
        ({"text": "x" * (MAX_BLACK_CHARS + 1) + " _", "pick": 1}, "too_long"),
        (7, "not_text"),
        ({"pick": 1}, "not_text"),
    ],
)
def test_an_unplayable_black_card_is_set_aside(tmp_path: Path, card: Any, reason: str) -> None:
    loaded = read_deck_file(write(tmp_path, _one_bad_black(card)))
    [deck] = loaded.decks
    assert [c.text for c in deck.black] == ["Fine _."]
    assert [c.id for c in deck.black] == ["deck:b:0"]
    assert loaded.set_aside.counts == {reason: 1}
    assert loaded.set_aside.examples[reason][0].startswith("black card 1 ")


@pytest.mark.parametrize(
    ("card", "reason"),
    [("", "empty"), ("   ", "empty"), (3, "not_text"), ({"text": None}, "not_text"),
     ("x" * (MAX_WHITE_CHARS + 1), "too_long")],
)
def test_an_unplayable_white_card_is_set_aside(tmp_path: Path, card: Any, reason: str) -> None:
    loaded = read_deck_file(write(tmp_path, {"white": ["A.", card, "B."], "black": []}))
    [deck] = loaded.decks
    assert [(c.id, c.text) for c in deck.white] == [("deck:w:0", "A."), ("deck:w:2", "B.")]
    assert loaded.set_aside.counts == {reason: 1}


def test_blanks_touching_letters_are_blanks(tmp_path: Path) -> None:
    data = {"white": ["A."], "black": [{"text": "I was _ed by _.", "pick": 2},
                                       {"text": "Cats and_", "pick": 1},
                                       {"text": "My i_ is broken.", "pick": 1}]}
    loaded = read_deck_file(write(tmp_path, data))
    assert [c.pick for c in loaded.decks[0].black] == [2, 1, 1]
    assert not loaded.set_aside.total


def test_a_pack_left_without_playable_cards_is_skipped(tmp_path: Path) -> None:
    data = {"white": ["A.", ""], "black": [],
            "packs": [{"name": "Good", "white": [0]}, {"name": "Bad", "white": [1]}]}
    loaded = read_deck_file(write(tmp_path, data))
    assert [d.id for d in loaded.decks] == ["good"]
    assert loaded.set_aside.counts == {"empty": 1, "empty_pack": 1}


def test_pack_names_that_differ_in_case_get_unique_ids(tmp_path: Path) -> None:
    data = dict(COMPACT, packs=[{"name": "Kitchen", "white": [0]},
                                {"name": "KITCHEN", "white": [1]},
                                {"name": "kitchen", "white": [2]},
                                {"name": "Other", "id": "kitchen-2", "white": [3]}])
    loaded = read_deck_file(write(tmp_path, data))
    assert [(d.id, d.name) for d in loaded.decks] == [
        ("kitchen", "Kitchen"), ("kitchen-3", "KITCHEN"), ("kitchen-4", "kitchen"),
        ("kitchen-2", "Other")]
    assert loaded.renamed == [("KITCHEN", "kitchen-3"), ("kitchen", "kitchen-4")]
    # ids are derived in file order, so they are the same on every load
    assert [d.id for d in load_deck_file(write(tmp_path, data))] == [d.id for d in loaded.decks]


def test_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"white": [\n"A spoon."\n', encoding="utf-8")
    with pytest.raises(DeckError, match=r"broken\.json: invalid JSON at line 3"):
        load_deck_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DeckError, match=r"nope\.json: cannot read file"):
        load_deck_file(tmp_path / "nope.json")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"white": ["caf\xe9"]}')
    with pytest.raises(DeckError, match="cannot read file"):
        load_deck_file(path)


def test_file_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decks_mod, "MAX_FILE_BYTES", 10)
    with pytest.raises(DeckError, match="larger than 10 bytes"):
        load_deck_file(write(tmp_path, COMPACT))


def test_card_count_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decks_mod, "MAX_CARDS_PER_FILE", 3)
    with pytest.raises(DeckError, match="more than 3 cards"):
        load_deck_file(write(tmp_path, COMPACT))


# --- the library ------------------------------------------------------------------------------


def test_library_includes_builtin_and_extra_files(tmp_path: Path) -> None:
    library = load_library([write(tmp_path, COMPACT)])
    assert [d.id for d in library.all()] == [DEFAULT_DECK_ID, "kitchen", "drawer"]
    assert "kitchen" in library and len(library) == 3
    assert library.get("missing") is None


def test_library_rejects_the_same_deck_id_in_two_files(tmp_path: Path) -> None:
    first = write(tmp_path, COMPACT, "first.json")
    second = write(tmp_path, COMPACT, "second.json")
    with pytest.raises(DeckError, match=r"second\.json: deck id 'kitchen' is already used by"):
        load_library([first, second], builtin=False)


def test_library_fails_on_the_first_bad_file(tmp_path: Path) -> None:
    bad = write(tmp_path, {"white": "A."}, "bad.json")
    with pytest.raises(DeckError, match=r"bad\.json"):
        load_library([bad])


def test_empty_library() -> None:
    assert len(DeckLibrary([])) == 0


# --- a generated file in the shape of the real JSON Against Humanity file ----------------------
# The real file is CC BY-NC-SA and stays out of the repository; this one has each shape that
# stopped it from loading, in both its compact and its full form.


def jah_compact() -> dict[str, Any]:
    white = [f"White card number {i}." for i in range(40)]
    white += ["A long answer " + "that goes on " * (11 + n // 2) + f"{n}." for n in range(11)]
    white.append(("A long answer " + "that goes on " * 18)[:248] + ".")
    assert min(map(len, white[40:])) > 150 and max(map(len, white[40:])) == 249
    black: list[dict[str, Any]] = [{"text": f"Prompt {i} is _.", "pick": 1} for i in range(20)]
    black += [
        {"text": "I got _ed by a goose.", "pick": 1},  # blanks touching letters
        {"text": "Cats and_", "pick": 1},
        {"text": "My i_ is broken and _.", "pick": 2},
        {"text": "Three things: _, _ and _.", "pick": 3},
        {"text": "Make a haiku.", "pick": 3},  # a question: answers follow it
        {"text": "Pick four: _ _ _ _", "pick": 4},
        {"text": "Make a list of ten things.", "pick": 10},
        {"text": "Once upon a time " * 53 + "then _.", "pick": 1},  # 908 characters
        {"text": "I love _word_ and _.", "pick": 1},  # 3 blanks, pick 1
    ]
    assert len(black[27]["text"]) == 908
    packs = [
        {"name": "Base Set", "official": True, "white": list(range(0, 30)),
         "black": list(range(0, 15))},
        {"name": "Geek Pack", "official": False, "white": list(range(30, 46)),
         "black": [15, 16, 20, 21, 22, 25, 26]},
        {"name": "GEEK PACK", "official": False, "white": list(range(46, 52)),
         "black": [17, 18, 19, 23, 24, 27, 28]},
    ]
    return {"white": white, "black": black, "packs": packs}


def jah_full(compact: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": p["name"], "official": p["official"],
         "white": [{"text": compact["white"][i], "pack": n} for i in p["white"]],
         "black": [dict(compact["black"][i], pack=n) for i in p["black"]]}
        for n, p in enumerate(compact["packs"])
    ]


@pytest.mark.parametrize("form", ["compact", "full"])
def test_a_jah_shaped_file_loads_every_playable_card(
    tmp_path: Path, form: str, caplog: pytest.LogCaptureFixture
) -> None:
    compact = jah_compact()
    path = write(tmp_path, compact if form == "compact" else jah_full(compact), f"{form}.json")
    caplog.set_level("INFO", logger="app.game.decks")
    library = load_library([path], builtin=False)

    decks = library.all()
    assert [(d.id, d.name) for d in decks] == [
        ("base-set", "Base Set"), ("geek-pack", "Geek Pack"), ("geek-pack-2", "GEEK PACK")]
    whites = [c for d in decks for c in d.white]
    blacks = [c for d in decks for c in d.black]
    assert len(whites) == 52  # every white card, the 12 long ones included
    assert len(blacks) == 25  # 29 minus pick 4, pick 10, 908 characters, blanks != pick
    assert {c.text: c.pick for c in blacks if "_ed" in c.text or "and_" in c.text
            or "i_" in c.text} == {"I got _ed by a goose.": 1, "Cats and_": 1,
                                   "My i_ is broken and _.": 2}
    # every playable card makes a valid combination: the cache can key it, the renderer draw it
    for black in blacks:
        Combination(black.text, [w.text for w in whites[-black.pick:]])

    [summary] = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
    assert "set aside 4 unplayable" in summary
    assert "bad_pick 2 (" in summary and "'Pick four: _ _ _ _'" in summary
    assert "too_long 1 (" in summary and "blanks_differ_from_pick 1 (" in summary
    assert any("'GEEK PACK' -> geek-pack-2" in r.getMessage() for r in caplog.records)

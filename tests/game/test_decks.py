from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from app.game import decks as decks_mod
from app.game.cards import count_blanks
from app.game.decks import (
    BUILTIN_DECK_FILES,
    DEFAULT_DECK_ID,
    DeckLibrary,
    load_deck_file,
    load_library,
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


# --- bad files --------------------------------------------------------------------------------


def _bad_black(card: Any) -> dict[str, Any]:
    return {"white": ["A."], "black": [card]}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ([1, 2], "pack #0 must be an object"),
        ("just a string", "expected a JSON object or list of packs"),
        ([], "no packs in file"),
        ({"white": "A.", "black": []}, "'white' must be a list"),
        ({"white": [""], "black": []}, "white card 0: text is empty"),
        ({"white": ["   "], "black": []}, "white card 0: text is empty"),
        ({"white": [3], "black": []}, "white card 0: text must be a string"),
        ({"white": ["x" * 501], "black": []}, "longer than 500"),
        (_bad_black({"text": "_ _ _ _", "pick": 4}), "pick must be an integer from 1 to 3"),
        (_bad_black({"text": "Why _?", "pick": 0}), "pick must be an integer from 1 to 3"),
        (_bad_black({"text": "Why _?", "pick": True}), "pick must be an integer"),
        (_bad_black({"text": "Why _?", "pick": "1"}), "pick must be an integer"),
        (_bad_black({"text": "_ and _", "pick": 1}), "black card 0: has 2 blanks but pick 1"),
        (_bad_black({"text": "Why _?", "pick": 1, "draw": 9}), "draw must be an integer"),
        (_bad_black({"text": "", "pick": 1}), "black card 0: text is empty"),
        (_bad_black(7), "black card 0: must be an object"),
        (dict(COMPACT, packs=[{"name": "X", "white": [99]}]), "99 is not a card index"),
        (dict(COMPACT, packs=[{"name": "X", "white": [True]}]), "is not a card index"),
        (dict(COMPACT, packs=[{"name": "", "white": [0]}]), "'name' must be a non-empty string"),
        (dict(COMPACT, packs=[{"name": "X", "id": "a:b", "white": [0]}]), "id 'a:b' must match"),
        (dict(COMPACT, packs=[{"name": "X", "white": [0], "official": "no"}]), "'official'"),
        (dict(COMPACT, packs=[{"name": "X"}]), "pack #0 (x) has no cards"),
        (
            dict(COMPACT, packs=[{"name": "X", "white": [0]}, {"name": "x", "white": [1]}]),
            "deck id 'x' appears twice",
        ),
        (dict(COMPACT, packs="nope"), "'packs' must be a list or an object"),
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
    bad = write(tmp_path, {"white": [""]}, "bad.json")
    with pytest.raises(DeckError, match=r"bad\.json"):
        load_library([bad])


def test_empty_library() -> None:
    assert len(DeckLibrary([])) == 0

"""Errors raised by the game rules.

Every error carries a stable machine-readable ``code`` (sent to clients) and a human message.

    GameError
    ├── InvalidSettings        invalid_settings
    ├── InvalidName            invalid_name
    ├── NameTaken              name_taken
    ├── RoomNotFound           room_not_found
    ├── RoomFull               room_full
    ├── PlayerNotFound         player_not_found
    ├── NotHost                not_host
    ├── WrongPhase             wrong_phase
    ├── NotEnoughPlayers       not_enough_players
    ├── NotEnoughCards         not_enough_cards
    ├── NotCzar                not_czar
    ├── NotAllowed             not_allowed
    ├── AlreadySubmitted       already_submitted
    ├── InvalidCards           invalid_cards
    ├── UnknownSubmission      unknown_submission
    └── DeckError              deck_error (bad deck file; names the file)
"""

from __future__ import annotations

from pathlib import Path


class GameError(Exception):
    code = "game_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class InvalidSettings(GameError):
    code = "invalid_settings"


class InvalidName(GameError):
    code = "invalid_name"


class NameTaken(GameError):
    code = "name_taken"


class RoomNotFound(GameError):
    code = "room_not_found"


class RoomFull(GameError):
    code = "room_full"


class PlayerNotFound(GameError):
    code = "player_not_found"


class NotHost(GameError):
    code = "not_host"


class WrongPhase(GameError):
    code = "wrong_phase"


class NotEnoughPlayers(GameError):
    code = "not_enough_players"


class NotEnoughCards(GameError):
    code = "not_enough_cards"


class NotCzar(GameError):
    code = "not_czar"


class NotAllowed(GameError):
    code = "not_allowed"


class AlreadySubmitted(GameError):
    code = "already_submitted"


class InvalidCards(GameError):
    code = "invalid_cards"


class UnknownSubmission(GameError):
    code = "unknown_submission"


class DeckError(GameError):
    """A deck file is unreadable or invalid. The message starts with the file's path."""

    code = "deck_error"

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem

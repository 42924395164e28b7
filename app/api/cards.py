"""Card query parameters, with the card rules' limits stated in the OpenAPI schema.

`white=` may repeat (white cards in play order). The schema refuses what it can say: a blank
card (empty or only spaces, `pattern: \\S`), a card over its length limit, too many cards. The
rest (a card of invisible characters, a length that grows under NFC) is refused by the card
rules of `app.core.cards` with 422 `invalid_cards`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import StringConstraints

from app.core.cards import MAX_BLACK_CHARS, MAX_WHITE_CARDS, MAX_WHITE_CHARS

NOT_BLANK = r"\S"

BlackCard = Annotated[str, Query(min_length=1, max_length=MAX_BLACK_CHARS, pattern=NOT_BLANK,
                                 description="the black card")]
WhiteCards = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_WHITE_CHARS,
                                          pattern=NOT_BLANK)]],
    Query(min_length=1, max_length=MAX_WHITE_CARDS, alias="white",
          description="the white cards, in play order (repeat the parameter)")]

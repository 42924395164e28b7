"""Card query parameters, with the constraints the OpenAPI schema states.

`white=` may repeat (white cards in play order); a blank card (empty or only spaces) is refused
by the schema itself (`pattern: \\S`), so what the schema accepts the routes accept.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import StringConstraints

from app.cache.keys import MAX_WHITE_CARDS

# A card must hold a non-space character; lengths are checked against the card rules by the
# cache (422 `invalid_cards`), since they count after normalisation.
NOT_BLANK = r"\S"

BlackCard = Annotated[str, Query(min_length=1, max_length=1000, pattern=NOT_BLANK,
                                 description="the black card")]
WhiteCards = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=1000, pattern=NOT_BLANK)]],
    Query(min_length=1, max_length=MAX_WHITE_CARDS, alias="white",
          description="the white cards, in play order (repeat the parameter)")]

"""The composed sentence of a card combination: answers in the blanks. Pure functions, no I/O.

Card rules (cleaning, limits, blank syntax) live in `app.core.cards`: the texts composed here are
a `Combination`'s display texts (`Combination.display()`), already checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from app.core.cards import BLANK_RE

__all__ = ["Role", "Segment", "compose", "sentence"]


class Role(Enum):
    PROMPT = "prompt"
    ANSWER = "answer"


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of the composed text. `answer` is the answer's index for Role.ANSWER, else -1.

    `in_blank` marks an answer written into a blank of the prompt (drawn over an underline);
    `paragraph` starts a new paragraph before this segment.
    """

    text: str
    role: Role
    answer: int = -1
    in_blank: bool = False
    paragraph: bool = False


def _fit_answer(answer: str, following: str) -> str:
    """Drop a white card's final period when the prompt goes on after the blank."""
    if answer.endswith(".") and not answer.endswith("..") and following.strip():
        return answer[:-1]
    return answer


# Text before a blank after which the answer starts a sentence, a quotation or a heading, and so
# keeps its capital: nothing, or `.` `!` `?` (maybe closed by a quote or bracket), an opening
# quote, or a colon.
_STARTS_SENTENCE = re.compile(r"""(?:^|[.!?]["'\u201d\u2019)\]]*|["\u201c\u2018]|:)\s*$""")


def _is_i(word: str) -> bool:
    return word == "I" or word.startswith(("I'", "I\u2019"))


def _keeps_capital(first: str, second: str) -> bool:
    """Whether an answer's capital is part of the words (acronym, name), not of a sentence."""
    if _is_i(first):
        return True
    if any(c.isupper() for c in first[1:]):  # an acronym or a name: "DJ", "NASA", "McDonald's"
        return True
    # a name or title of several words: "Darth Vader", "Bill Nye the Science Guy"
    return second[:1].isupper() and not _is_i(second)


def fit_case(answer: str, before: str) -> str:
    """Lower-case the first letter of an answer written into a blank mid-sentence.

    The capital stays at the start of a sentence, a quotation or a heading (see
    `_STARTS_SENTENCE`) and when `_keeps_capital` says the word needs it.
    """
    if not answer[:1].isupper() or _STARTS_SENTENCE.search(before):
        return answer
    words = answer.split(maxsplit=2)
    if _keeps_capital(words[0], words[1] if len(words) > 1 else ""):
        return answer
    return answer[0].lower() + answer[1:]


def compose(black: str, whites: Sequence[str]) -> list[Segment]:
    """Fill the blanks of the black card with the answers, in order.

    An answer written into a blank mid-sentence loses its initial capital (`fit_case`). Extra
    answers (or all of them, when the prompt has no blank) become paragraphs below the
    prompt; blanks without an answer stay as drawn blanks.
    """
    parts = BLANK_RE.split(black)
    blanks = len(parts) - 1
    segments: list[Segment] = []
    before = ""
    for i, part in enumerate(parts):
        if part:
            segments.append(Segment(part, Role.PROMPT))
        before += part
        if i < blanks:
            if i < len(whites):
                text = fit_case(_fit_answer(whites[i], parts[i + 1]), before)
                before += text
                segments.append(Segment(text, Role.ANSWER, answer=i, in_blank=True))
            else:
                segments.append(Segment("_____", Role.PROMPT))
    for j in range(blanks, len(whites)):
        segments.append(Segment(whites[j], Role.ANSWER, answer=j, paragraph=True))
    return segments


def sentence(segments: Sequence[Segment]) -> str:
    """The composed text as one plain string (for narration and hosted-provider prompts)."""
    out = ""
    for seg in segments:
        if seg.paragraph and out:
            out = out.rstrip() + ". " if out.rstrip()[-1:].isalnum() else out.rstrip() + " "
        out += seg.text
    return " ".join(out.split())

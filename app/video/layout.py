"""Text layout for the local renderer: words -> lines, shrink to fit, blank underlines.

Pure apart from font measurement. The layout of the *final* sentence (blanks filled) is computed
once; the animation only changes when each answer's pieces become visible, so nothing moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from app.video.fonts import EMOJI_STRIKE, FontSet, Run, clusters
from app.video.text import Role, Segment

ELLIPSIS = "\u2026"
LINE_SPACING = 1.22
PARAGRAPH_GAP = 0.45
# A blank filled by a short answer ("A", "Me") is underlined at least this many font sizes wide,
# so it still reads as a blank; never past the text box, never on a line the answer wraps from.
MIN_UNDERLINE = 2.0
UNDERLINE_DROP = 0.18  # below the baseline, in font sizes


@dataclass(frozen=True, slots=True)
class Piece:
    """One run of one face, at its final position. `baseline` is the y of the text baseline."""

    x: float
    baseline: float
    text: str
    face: int
    width: float
    role: Role
    answer: int


@dataclass(frozen=True, slots=True)
class Underline:
    x0: float
    x1: float
    y: float
    answer: int


@dataclass
class Layout:
    size: int
    line_height: float
    pieces: list[Piece] = field(default_factory=list)
    underlines: list[Underline] = field(default_factory=list)
    truncated: bool = False


@dataclass
class _Frag:
    text: str
    seg: int


_Token = list[_Frag]
_PARAGRAPH: None = None


def tokenize(segments: Sequence[Segment]) -> list[_Token | None]:
    """Words (lists of fragments that may span segments), with None marking a paragraph break."""
    out: list[_Token | None] = []
    current: _Token = []

    def flush() -> None:
        nonlocal current
        if current:
            out.append(current)
            current = []

    for index, seg in enumerate(segments):
        if seg.paragraph:
            flush()
            out.append(_PARAGRAPH)
        for ch in seg.text:
            if ch.isspace():
                flush()
            elif current and current[-1].seg == index:
                current[-1].text += ch
            else:
                current.append(_Frag(ch, index))
    flush()
    return out


class _Measure:
    def __init__(self, fonts: FontSet, size: int) -> None:
        self.fonts = fonts
        self.size = size
        self._runs: dict[str, list[Run]] = {}

    def runs(self, text: str) -> list[Run]:
        runs = self._runs.get(text)
        if runs is None:
            runs = self._runs[text] = self.fonts.runs(text)
        return runs

    def run_width(self, run: Run) -> float:
        font = self.fonts.font(run.face, self.size)
        width = float(font.getlength(run.text))
        if self.fonts.faces[run.face].emoji:
            width *= self.size / EMOJI_STRIKE
        return width

    def width(self, text: str) -> float:
        return sum(self.run_width(r) for r in self.runs(text))

    @property
    def space(self) -> float:
        return self.width(" ") or self.size * 0.3


@dataclass
class _Line:
    items: list[tuple[_Token, float]] = field(default_factory=list)
    width: float = 0.0
    paragraph: bool = False


def _split_long(token: _Token, m: _Measure, max_width: float) -> list[_Token]:
    """Break a word wider than the line between clusters."""
    parts: list[_Token] = []
    current: _Token = []
    width = 0.0
    for frag in token:
        for cluster in clusters(frag.text):
            w = m.width(cluster)
            if current and width + w > max_width:
                parts.append(current)
                current, width = [], 0.0
            if current and current[-1].seg == frag.seg:
                current[-1] = _Frag(current[-1].text + cluster, frag.seg)
            else:
                current.append(_Frag(cluster, frag.seg))
            width += w
    if current:
        parts.append(current)
    return parts


def _token_width(token: _Token, m: _Measure) -> float:
    return sum(m.width(f.text) for f in token)


def _wrap(tokens: list[_Token | None], m: _Measure, max_width: float) -> list[_Line]:
    lines: list[_Line] = [_Line()]
    space = m.space
    for token in tokens:
        if token is None:
            if lines[-1].items:
                lines.append(_Line(paragraph=True))
            continue
        width = _token_width(token, m)
        pieces = [(token, width)] if width <= max_width else [
            (p, _token_width(p, m)) for p in _split_long(token, m, max_width)
        ]
        for piece, w in pieces:
            line = lines[-1]
            needed = w if not line.items else line.width + space + w
            if line.items and needed > max_width:
                lines.append(_Line())
                line, needed = lines[-1], w
            line.items.append((piece, w))
            line.width = needed
    return [line for line in lines if line.items]


def _height(lines: list[_Line], size: int) -> float:
    gaps = sum(1 for line in lines[1:] if line.paragraph)
    return len(lines) * size * LINE_SPACING + gaps * size * PARAGRAPH_GAP


def _truncate(lines: list[_Line], m: _Measure, max_width: float, max_height: float) -> list[_Line]:
    while len(lines) > 1 and _height(lines, m.size) > max_height:
        lines.pop()
    last = lines[-1]
    ellipsis = m.width(ELLIPSIS)
    while last.items and last.width + ellipsis > max_width:
        last.items.pop()
        last.width = sum(w for _, w in last.items) + m.space * max(0, len(last.items) - 1)
    seg = last.items[-1][0][-1].seg if last.items else 0
    last.items.append(([_Frag(ELLIPSIS, seg)], ellipsis))
    last.width += ellipsis
    return lines


def layout(
    segments: Sequence[Segment],
    fonts: FontSet,
    box: tuple[float, float, float, float],
    max_size: int,
    min_size: int,
) -> Layout:
    """Place the composed text in `box` (x, y, width, height) at the largest size that fits."""
    x0, y0, box_w, box_h = box
    tokens = tokenize(segments)
    lo, hi = min_size, max(min_size, max_size)
    best: tuple[int, list[_Line]] | None = None
    while lo <= hi:  # binary search on the font size
        size = (lo + hi) // 2
        lines = _wrap(tokens, _Measure(fonts, size), box_w)
        if _height(lines, size) <= box_h:
            best = (size, lines)
            lo = size + 1
        else:
            hi = size - 1
    truncated = best is None
    if best is None:
        m = _Measure(fonts, min_size)
        best = (min_size, _truncate(_wrap(tokens, m, box_w), m, box_w, box_h))
    size, lines = best
    m = _Measure(fonts, size)
    result = Layout(size=size, line_height=size * LINE_SPACING, truncated=truncated)
    ascent = fonts.font(0, size).getmetrics()[0]
    y = y0 + max(0.0, (box_h - _height(lines, size)) / 2)
    space = m.space
    drawn: list[Underline] = []
    for line in lines:
        if line.paragraph:
            y += size * PARAGRAPH_GAP
        baseline = y + ascent
        x = x0
        spans: dict[int, list[float]] = {}
        for token, _width in line.items:
            for frag in token:
                seg = segments[frag.seg]
                for run in m.runs(frag.text):
                    w = m.run_width(run)
                    result.pieces.append(
                        Piece(x, baseline, run.text, run.face, w, seg.role, seg.answer)
                    )
                    if seg.in_blank:
                        span = spans.setdefault(seg.answer, [x, x + w])
                        span[0], span[1] = min(span[0], x), max(span[1], x + w)
                    x += w
            x += space
        for answer, (sx0, sx1) in spans.items():
            drawn.append(Underline(sx0, sx1, baseline + size * UNDERLINE_DROP, answer))
        y += size * LINE_SPACING
    result.underlines = _widen_short(drawn, size * MIN_UNDERLINE, x0 + box_w)
    return result


def _widen_short(underlines: list[Underline], min_width: float, right: float) -> list[Underline]:
    """Widen the underline of a short answer that sits on one line, up to the box's right edge.

    An answer that wraps keeps underlines exactly under its words: widening the piece at a
    line end would draw a blank after a word that goes on below (the old `A____` look).
    """
    lines_of: dict[int, int] = {}
    for u in underlines:
        lines_of[u.answer] = lines_of.get(u.answer, 0) + 1
    out = []
    for u in underlines:
        if lines_of[u.answer] == 1 and u.x1 - u.x0 < min_width:
            u = Underline(u.x0, max(u.x1, min(u.x0 + min_width, right)), u.y, u.answer)
        out.append(u)
    return out

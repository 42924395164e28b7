"""Fonts for the local renderer: discovery, glyph coverage (read from the `cmap` table) and the
choice of a font for each grapheme cluster (text face, then a fallback face, then colour emoji).
"""

from __future__ import annotations

import logging
import struct
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

logger = logging.getLogger(__name__)

DEJAVU_DIR = Path("/usr/share/fonts/truetype/dejavu")
TEXT_FACES = ("DejaVuSans-Bold.ttf", "DejaVuSans.ttf")
EMOJI_CANDIDATES = (
    Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"),
    Path("/usr/share/fonts/noto/NotoColorEmoji.ttf"),
    Path("/usr/share/fonts/google-noto-emoji/NotoColorEmoji.ttf"),
)
# Noto Color Emoji is a bitmap (CBDT) font: FreeType only loads it at its strike size.
EMOJI_STRIKE = 109
REPLACEMENT = "\ufffd"

# ---------------------------------------------------------------------------------------------
# cmap parsing


def _cmap_format4(data: bytes, off: int) -> set[int]:
    seg_count = struct.unpack_from(">H", data, off + 6)[0] // 2
    ends_at = off + 14
    starts_at = ends_at + 2 * seg_count + 2
    deltas_at = starts_at + 2 * seg_count
    ranges_at = deltas_at + 2 * seg_count
    covered: set[int] = set()
    for i in range(seg_count):
        end = struct.unpack_from(">H", data, ends_at + 2 * i)[0]
        start = struct.unpack_from(">H", data, starts_at + 2 * i)[0]
        delta = struct.unpack_from(">h", data, deltas_at + 2 * i)[0]
        range_offset = struct.unpack_from(">H", data, ranges_at + 2 * i)[0]
        for code in range(start, min(end, 0xFFFE) + 1):
            if range_offset == 0:
                glyph = (code + delta) & 0xFFFF
            else:
                at = ranges_at + 2 * i + range_offset + 2 * (code - start)
                if at + 2 > len(data):
                    continue
                glyph = struct.unpack_from(">H", data, at)[0]
                if glyph:
                    glyph = (glyph + delta) & 0xFFFF
            if glyph:
                covered.add(code)
    return covered


def _cmap_format12(data: bytes, off: int) -> set[int]:
    groups = struct.unpack_from(">I", data, off + 12)[0]
    covered: set[int] = set()
    for i in range(groups):
        start, end, first_glyph = struct.unpack_from(">III", data, off + 16 + 12 * i)
        begin = start + 1 if first_glyph == 0 else start
        covered.update(range(begin, min(end, 0x10FFFF) + 1))
    return covered


def read_coverage(path: Path) -> frozenset[int]:
    """The code points that `path` maps to a real glyph (TrueType/OpenType `cmap`)."""
    data = path.read_bytes()
    base = 0
    if data[:4] == b"ttcf":  # a collection: use its first font
        base = struct.unpack_from(">I", data, 12)[0]
    num_tables = struct.unpack_from(">H", data, base + 4)[0]
    cmap_off = None
    for i in range(num_tables):
        tag, _, offset, _ = struct.unpack_from(">4sIII", data, base + 12 + 16 * i)
        if tag == b"cmap":
            cmap_off = offset
            break
    if cmap_off is None:
        raise ValueError(f"{path} has no cmap table")
    count = struct.unpack_from(">H", data, cmap_off + 2)[0]
    best: tuple[int, int] | None = None  # (rank, subtable offset)
    for i in range(count):
        platform, encoding, sub = struct.unpack_from(">HHI", data, cmap_off + 4 + 8 * i)
        fmt = struct.unpack_from(">H", data, cmap_off + sub)[0]
        unicode_table = platform == 0 or (platform == 3 and encoding in (1, 10))
        if not unicode_table or fmt not in (4, 12):
            continue
        rank = 2 if fmt == 12 else 1
        if best is None or rank > best[0]:
            best = (rank, cmap_off + sub)
    if best is None:
        raise ValueError(f"{path} has no Unicode cmap subtable of format 4 or 12")
    rank, sub_off = best
    return frozenset(_cmap_format12(data, sub_off) if rank == 2 else _cmap_format4(data, sub_off))


# ---------------------------------------------------------------------------------------------
# clusters and font choice

_EMOJI_RANGES = (
    (0x1F000, 0x1FAFF),  # mahjong .. symbols & pictographs extended-A
    (0x2600, 0x27BF),  # misc symbols, dingbats
    (0x2B00, 0x2BFF),  # arrows/stars used as emoji
    (0x2300, 0x23FF),  # watch, hourglass, ...
    (0x3030, 0x303D),
    (0x3297, 0x3299),
)


def is_emoji(code: int) -> bool:
    return any(lo <= code <= hi for lo, hi in _EMOJI_RANGES)


def _is_emoji_modifier(code: int) -> bool:
    return 0xFE00 <= code <= 0xFE0F or 0x1F3FB <= code <= 0x1F3FF


def _extends(ch: str, previous: str) -> bool:
    """Whether `ch` belongs to the cluster of the character before it."""
    code = ord(ch)
    if previous == "\u200d" or ch == "\u200d":
        return True
    if unicodedata.category(ch) in {"Mn", "Me", "Mc"}:
        return True
    if 0xFE00 <= code <= 0xFE0F or 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F:
        return True
    # the second regional indicator of a flag pair
    return 0x1F1E6 <= code <= 0x1F1FF and 0x1F1E6 <= ord(previous) <= 0x1F1FF


def clusters(text: str) -> Iterator[str]:
    """Split into (approximate) grapheme clusters: enough to keep emoji sequences whole."""
    current = ""
    pair_open = False
    for ch in text:
        code = ord(ch)
        joins = bool(current) and _extends(ch, current[-1])
        if joins and 0x1F1E6 <= code <= 0x1F1FF:
            joins = pair_open
        if joins:
            current += ch
            pair_open = False
        else:
            if current:
                yield current
            current = ch
            pair_open = 0x1F1E6 <= code <= 0x1F1FF
    if current:
        yield current


@dataclass(frozen=True)
class Face:
    path: Path | None  # None: Pillow's built-in font
    coverage: frozenset[int] | None  # None: assume everything is covered
    emoji: bool = False

    def covers(self, code: int) -> bool:
        return self.coverage is None or code in self.coverage


@dataclass(frozen=True)
class Run:
    text: str
    face: int  # index into FontSet.faces


@dataclass
class FontSet:
    """The text faces in order of preference, then (optionally) the colour-emoji face."""

    faces: list[Face]
    _sized: dict[tuple[int, int], ImageFont.FreeTypeFont] = field(default_factory=dict)

    @property
    def has_emoji(self) -> bool:
        return any(f.emoji for f in self.faces)

    def font(self, face: int, size: int) -> ImageFont.FreeTypeFont:
        """The face at `size` px (the emoji face is always loaded at its strike size)."""
        spec = self.faces[face]
        px = EMOJI_STRIKE if spec.emoji else size
        key = (face, px)
        font = self._sized.get(key)
        if font is None:
            if spec.path is None:
                loaded = ImageFont.load_default(px)
                assert isinstance(loaded, ImageFont.FreeTypeFont)
                font = loaded
            else:
                font = ImageFont.truetype(str(spec.path), px)
            self._sized[key] = font
        return font

    def _choose(self, cluster: str) -> int | None:
        code = ord(cluster[0])
        wants_emoji = "\ufe0e" not in cluster and (
            "\ufe0f" in cluster
            or "\u200d" in cluster
            or len(cluster) > 1 and is_emoji(code)
            or code >= 0x1F000 and is_emoji(code)
        )
        order: list[int] = list(range(len(self.faces)))
        if wants_emoji:
            order = sorted(order, key=lambda i: not self.faces[i].emoji)
        for i in order:
            face = self.faces[i]
            if face.emoji and not wants_emoji and not face.covers(code):
                continue
            if face.covers(code):
                return i
        return None

    def runs(self, text: str) -> list[Run]:
        """Split `text` into runs of one face each.

        A cluster no face covers is drawn as U+FFFD, except emoji, which are skipped when no
        emoji font is installed.
        """
        runs: list[Run] = []
        for cluster in clusters(text):
            face = self._choose(cluster)
            if face is None:
                if is_emoji(ord(cluster[0])):
                    continue
                face = self._choose(REPLACEMENT)
                if face is None:
                    continue
                cluster = REPLACEMENT
            elif not self.faces[face].emoji:
                # variation selectors and skin tones have no glyph in a text face
                cluster = "".join(c for c in cluster if not _is_emoji_modifier(ord(c)))
            if runs and runs[-1].face == face:
                runs[-1] = Run(runs[-1].text + cluster, face)
            else:
                runs.append(Run(cluster, face))
        return runs


def find_emoji_font() -> Path | None:
    return next((p for p in EMOJI_CANDIDATES if p.is_file()), None)


@lru_cache(maxsize=4)
def load_fontset(font_dir: Path = DEJAVU_DIR, emoji: bool = True) -> FontSet:
    """Discover the fonts once per process (coverage parsing takes a few ms per face)."""
    faces: list[Face] = []
    for name in TEXT_FACES:
        path = font_dir / name
        if path.is_file():
            try:
                faces.append(Face(path, read_coverage(path)))
            except (OSError, ValueError, struct.error):
                logger.warning("cannot read the cmap of %s; skipping it", path, exc_info=True)
    if not faces:
        logger.warning("no DejaVu font in %s; using Pillow's built-in font", font_dir)
        faces.append(Face(None, None))
    emoji_path = find_emoji_font() if emoji else None
    if emoji_path is not None:
        try:
            faces.append(Face(emoji_path, read_coverage(emoji_path), emoji=True))
        except (OSError, ValueError, struct.error):
            logger.warning("cannot read the cmap of %s; emoji disabled", emoji_path, exc_info=True)
    return FontSet(faces)

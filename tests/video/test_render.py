"""The local renderer's output, decoded with PyAV."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from app.core.cards import MAX_BLACK_CHARS, MAX_WHITE_CHARS, Combination, clean_text
from app.game.decks import read_deck_file
from app.video.errors import RenderTimeoutError
from app.video.fonts import find_emoji_font, load_fontset
from app.video.layout import MIN_UNDERLINE, layout
from app.video.local import LocalRenderer
from app.video.provider import VideoRequest
from app.video.render import RenderJob, RenderResult, Scene, Timeline, render_video
from app.video.text import compose
from tests.video.conftest import video_settings
from tests.video.mp4 import decode

KEY = "video:" + "ab" * 32
ESPEAK = shutil.which("espeak-ng")


def request(black: str = "What's the secret to happiness? _.",
            whites: tuple[str, ...] = ("Cats with opposable thumbs.",),
            resolution: str = "360p") -> VideoRequest:
    b, w = Combination(black, whites).display()
    return VideoRequest(b, w, KEY, resolution)  # type: ignore[arg-type]


def assert_playable(path: Path, width: int, height: int) -> None:
    info = decode(path)
    assert info.codec == "h264"
    assert info.pix_fmt == "yuv420p"
    assert (info.width, info.height) == (width, height)
    assert 4.0 <= info.duration <= 6.0
    assert info.frames == round(info.duration * 24)
    assert info.faststart


@pytest.mark.parametrize("pool", ["thread", "process"])
async def test_local_renderer_writes_h264_360p(tmp_path: Path, pool: str) -> None:
    renderer = LocalRenderer(video_settings(tmp_path), pool=pool)
    try:
        await renderer.generate(request(), tmp_path / "out.mp4")
    finally:
        await renderer.aclose()
    assert_playable(tmp_path / "out.mp4", 640, 360)
    assert decode(tmp_path / "out.mp4").audio_codec is None  # narration off


async def test_720p_setting_gives_1280x720(tmp_path: Path) -> None:
    settings = video_settings(tmp_path, video_resolution="720p")
    renderer = LocalRenderer(settings)
    req = request(resolution=settings.video_resolution)
    try:
        await renderer.generate(req, tmp_path / "hd.mp4")
    finally:
        await renderer.aclose()
    assert_playable(tmp_path / "hd.mp4", 1280, 720)


def test_more_answers_make_a_longer_video_within_limits(tmp_path: Path) -> None:
    job = RenderJob("_, _ and _.", ("One", "Two", "Three"))
    result = render_video(job, str(tmp_path / "three.mp4"))
    assert 4.0 <= result.duration <= 6.0
    assert_playable(tmp_path / "three.mp4", 640, 360)
    assert Timeline.plan(3).duration > Timeline.plan(1).duration


def test_answers_animate_into_the_blank() -> None:
    fonts = load_fontset()
    job = RenderJob("I drink to forget _.", ("my own birthday party",))
    scene = Scene(job, fonts)
    frames = list(scene.frames(Timeline.plan(1), 24))
    first = next(f for f in frames if f is not None)
    last = [f for f in frames if f is not None][-1]
    layer, (x, y) = scene.answer_layers[0]
    box = (x, y, x + layer.width, y + layer.height)
    # the answer's region changes between the start (empty blank) and the end (answer in it)
    assert first.crop(box).tobytes() != last.crop(box).tobytes()
    # the hold at the end repeats frames instead of redrawing them
    assert frames[-1] is None
    # the underline of the blank sits under the answer's words
    underline = scene.layout.underlines[0]
    words = [p for p in scene.layout.pieces if p.answer == 0]
    assert underline.x0 <= min(p.x for p in words) + 0.5
    assert underline.x1 >= max(p.x + p.width for p in words) - 0.5


def test_long_text_shrinks_to_fit() -> None:
    fonts = load_fontset()
    short = layout(compose("Why _?", ["Cats"]), fonts, (0, 0, 500, 250), 50, 10)
    long = layout(compose("W" * 20 + " word" * 50 + " _?", ["x " * 70]), fonts,
                  (0, 0, 500, 250), 50, 10)
    assert long.size < short.size
    assert all(p.x + p.width <= 500.5 for p in long.pieces)
    assert max(p.baseline for p in long.pieces) <= 250


def test_text_that_cannot_fit_is_cut_with_an_ellipsis() -> None:
    fonts = load_fontset()
    result = layout(compose("word " * 200, ["x"]), fonts, (0, 0, 200, 60), 30, 12)
    assert result.truncated
    assert result.pieces[-1].text.endswith("\u2026")


@pytest.mark.parametrize(
    "black,whites",
    [
        ("A" * MAX_BLACK_CHARS, ("B" * MAX_WHITE_CHARS,)),  # longest words, no spaces
        ("Ctrl\x00chars\x1b[31m and \u202e bidi _", ("tab\there\x7f",)),
        ("Lone \ud800 surrogate _", ("\udfff",)),
        ("中文 العربية עברית ελληνικά _", ("русский ✓",)),
        ("Emoji _ 👨‍👩‍👧 🇫🇷 👍🏽", ("🍕🍕🍕",)),
    ],
)
@pytest.mark.parametrize("emoji", [True, False])
def test_hostile_text_renders_safely(tmp_path: Path, black: str, whites: tuple[str, ...],
                                     emoji: bool) -> None:
    # The display form (a lone surrogate cannot be keyed, so no Combination holds one; the
    # renderer copes all the same).
    b, w = clean_text(black), tuple(clean_text(t) for t in whites)
    result = render_video(RenderJob(b, w, emoji=emoji), str(tmp_path / "x.mp4"))
    assert result.frames > 0
    assert_playable(tmp_path / "x.mp4", 640, 360)


def test_emoji_without_font_are_skipped() -> None:
    fonts = load_fontset(emoji=False)
    assert not fonts.has_emoji
    assert "".join(r.text for r in fonts.runs("a 🍕 b")) == "a  b"
    assert "".join(r.text for r in fonts.runs("中")) == "\ufffd"


@pytest.mark.skipif(find_emoji_font() is None, reason="Noto Color Emoji is not installed")
def test_emoji_use_the_colour_font_when_installed() -> None:
    fonts = load_fontset()
    runs = fonts.runs("a 🍕")
    assert fonts.faces[runs[-1].face].emoji
    assert runs[-1].text == "🍕"


def test_past_deadline_stops_the_render(tmp_path: Path) -> None:
    job = RenderJob("Why _?", ("Because",), deadline=time.time() - 1)
    with pytest.raises(RenderTimeoutError):
        render_video(job, str(tmp_path / "late.mp4"))


def test_render_timeout_setting_applies(tmp_path: Path) -> None:
    renderer = LocalRenderer(video_settings(tmp_path, video_render_timeout=12.5))
    before = time.time()
    job = renderer.job_for(request(), before + renderer.timeout)
    assert job.deadline == before + 12.5


def test_missing_espeak_renders_silently(tmp_path: Path) -> None:
    job = RenderJob("Why _?", ("Because",), narration=True, espeak=str(tmp_path / "no-espeak"))
    result = render_video(job, str(tmp_path / "silent.mp4"))
    assert not result.narrated
    assert decode(tmp_path / "silent.mp4").audio_codec is None


def test_narration_off_when_setting_off(tmp_path: Path) -> None:
    renderer = LocalRenderer(video_settings(tmp_path, video_narration=False))
    assert renderer.espeak is None
    assert not renderer.job_for(request()).narration


@pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed")
async def test_narration_track_is_aac(tmp_path: Path) -> None:
    renderer = LocalRenderer(video_settings(tmp_path, video_narration=True))
    assert renderer.espeak is not None
    try:
        await renderer.generate(request(), tmp_path / "spoken.mp4")
    finally:
        await renderer.aclose()
    info = decode(tmp_path / "spoken.mp4")
    assert info.audio_codec == "aac"
    assert 0.5 < info.audio_seconds <= info.duration
    assert_playable(tmp_path / "spoken.mp4", 640, 360)


@pytest.mark.skipif(ESPEAK is None, reason="espeak-ng is not installed")
def test_long_narration_is_sped_up_to_fit(tmp_path: Path) -> None:
    b, w = Combination("word " * 55 + "_", ["and more words " * 9]).display()
    job = RenderJob(b, w, narration=True, espeak=ESPEAK)
    result = render_video(job, str(tmp_path / "long.mp4"))
    info = decode(tmp_path / "long.mp4")
    assert result.narrated
    assert info.duration <= 6.0
    assert info.audio_seconds <= info.duration


@pytest.mark.parametrize("pool", ["thread", "process"])
async def test_pool_render_past_its_timeout_fails_cleanly(tmp_path: Path, pool: str) -> None:
    renderer = LocalRenderer(video_settings(tmp_path, video_render_timeout=0.001), pool=pool)
    try:
        await renderer.start()
        with pytest.raises(RenderTimeoutError):
            await renderer.generate(request(), tmp_path / "late.mp4")
        # the pool is still usable afterwards
        renderer.timeout = 60
        await renderer.generate(request(), tmp_path / "ok.mp4")
    finally:
        await renderer.aclose()
    assert_playable(tmp_path / "ok.mp4", 640, 360)


def hang(job: RenderJob, dest: str) -> RenderResult:
    """A render that ignores its deadline (runs in a worker process)."""
    time.sleep(60)
    raise AssertionError("not reached")


async def test_a_stuck_worker_is_killed_and_the_pool_replaced(tmp_path: Path) -> None:
    renderer = LocalRenderer(video_settings(tmp_path, video_render_timeout=0.2),
                             pool="process", render=hang)
    renderer.stuck_grace = 0.2
    try:
        with pytest.raises(RenderTimeoutError, match="did not finish"):
            await renderer.generate(request(), tmp_path / "stuck.mp4")
        renderer.render = render_video
        renderer.timeout = 60
        await renderer.generate(request(), tmp_path / "ok.mp4")
    finally:
        await renderer.aclose()
    assert_playable(tmp_path / "ok.mp4", 640, 360)


# --- the limits are the loader's: no playable card makes a video fail --------------------------

# The longest allowed pick-3 combination (docs/img/frame_longest_*.png shows it).
LONGEST_BLACK = (
    "Dear diary: today the neighbourhood association held its annual meeting in the church "
    "basement, and after four long hours of arguing about parking, hedges, the broken "
    "streetlight on Elm Street, the bins, the geese by the duckpond, the price of the annual "
    "village summer barbecue, the dog show and who keeps stealing the good chairs, the "
    "chairwoman stood up, "
    "cleared her throat and announced that from now on every single household will be "
    "responsible for _, for _ and, most importantly of all, for _.")
LONGEST_WHITES = (
    "A retired circus bear named Gerald who has strong opinions about modern architecture, "
    "refuses to eat anything that is not shaped like a star, and insists on reading the whole "
    "minutes of the last meeting aloud in a thick Bavarian accent before dinner.",
    "Forty-nine plastic ducks, each one hand-painted to look like a different former "
    "president, arranged in order of height along the windowsill and dusted every Thursday "
    "morning with a tiny feather duster that was a gift from a confused Swedish diplomat.",
    "The mysterious smell coming from the basement that nobody has been able to explain since "
    "1987, which the fire brigade, three priests and a very expensive consultant from the "
    "county have all investigated and politely declined to talk about ever again.",
)


def test_the_longest_pick_3_combination_fits_without_cuts() -> None:
    assert len(LONGEST_BLACK) == MAX_BLACK_CHARS
    assert [len(w) for w in LONGEST_WHITES] == [MAX_WHITE_CHARS] * 3
    fonts = load_fontset()
    for width, height in [(640, 360), (1280, 720)]:
        scene = Scene(RenderJob(LONGEST_BLACK, LONGEST_WHITES, width=width, height=height), fonts)
        assert not scene.layout.truncated
        assert scene.layout.size >= round(height * 0.033)


@pytest.mark.parametrize("length", [151, 249])
def test_a_long_white_card_from_a_custom_deck_renders(tmp_path: Path, length: int) -> None:
    """Bug 1: a 151-500 character white card was playable but its video always failed."""
    long_white = ("A long answer " + "that goes on and on " * 20)[: length - 1] + "."
    too_long = "x" * (MAX_WHITE_CHARS + 1)
    deck = tmp_path / "custom.json"
    deck.write_text(json.dumps({"white": ["A spoon.", long_white, too_long],
                                "black": [{"text": "I stir my soup with _.", "pick": 1}]}))
    loaded = read_deck_file(deck)
    [played] = [c.text for c in loaded.decks[0].white if len(c.text) == length]
    assert loaded.set_aside.counts == {"too_long": 1}  # what cannot render does not play
    black, whites = Combination(loaded.decks[0].black[0].text, [played]).display()
    result = render_video(RenderJob(black, whites), str(tmp_path / "long.mp4"))
    assert not result.truncated
    assert_playable(tmp_path / "long.mp4", 640, 360)


# --- underlines -------------------------------------------------------------------------------

WRAPPING = ("After months of careful negotiation, the union finally got paid in _.",
            ("A goose with a vendetta.",))


def test_an_answer_that_wraps_is_underlined_only_under_its_words() -> None:
    """The old frame drew `A____`: the first word of a wrapping answer got a blank's width."""
    scene = Scene(RenderJob(*WRAPPING), load_fontset())
    first, second = scene.layout.underlines
    pieces = [p for p in scene.layout.pieces if p.answer == 0]
    assert pieces[0].text == "a"  # at the end of its line; "goose ..." goes on below
    assert first.y < second.y
    assert first.x0 == pytest.approx(pieces[0].x)
    assert first.x1 == pytest.approx(pieces[0].x + pieces[0].width)
    # what is drawn: nothing of the underline to the right of the word
    row = round(first.y) + 1
    right = round(first.x1) + 2
    drawn = [scene.prompt.getpixel((x, row)) for x in range(right, right + 20)]
    assert all(pixel[3] == 0 for pixel in drawn)  # type: ignore[index]


def test_a_short_answer_gets_a_blank_wide_underline_inside_the_box() -> None:
    fonts = load_fontset()
    alone = layout(compose("Why _?", ["Me"]), fonts, (10.0, 10.0, 300.0, 200.0), 30, 10)
    [u] = alone.underlines
    assert u.x1 - u.x0 == pytest.approx(alone.size * MIN_UNDERLINE)
    # at the right edge of the box the widening stops at the edge (it used to run over the
    # card's border)
    scene = Scene(RenderJob("After the wedding, the one thing everyone remembered was _", ("I.",)),
                  fonts)
    [u] = scene.layout.underlines
    box_right = 640 - round(360 * 0.06) - round(360 * 0.07)
    assert u.x0 + scene.layout.size * MIN_UNDERLINE > box_right  # the case that overflowed
    assert u.x1 == pytest.approx(box_right)
    row = round(u.y) + 1
    assert all(scene.prompt.getpixel((x, row))[3] == 0  # type: ignore[index]
               for x in range(box_right + 1, 640))

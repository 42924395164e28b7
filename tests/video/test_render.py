"""The local renderer's output, decoded with PyAV."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from app.video.errors import RenderTimeoutError
from app.video.fonts import find_emoji_font, load_fontset
from app.video.layout import layout
from app.video.local import LocalRenderer
from app.video.provider import VideoRequest
from app.video.render import RenderJob, RenderResult, Scene, Timeline, render_video
from app.video.text import MAX_BLACK_CHARS, MAX_WHITE_CHARS, compose, validate_cards
from tests.video.conftest import video_settings
from tests.video.mp4 import decode

KEY = "video:" + "ab" * 32
ESPEAK = shutil.which("espeak-ng")


def request(black: str = "What's the secret to happiness? _.",
            whites: tuple[str, ...] = ("Cats with opposable thumbs.",),
            resolution: str = "360p") -> VideoRequest:
    b, w = validate_cards(black, list(whites))
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
    job = RenderJob("_, _, _, _ and _.", ("One", "Two", "Three", "Four", "Five"))
    result = render_video(job, str(tmp_path / "five.mp4"))
    assert 4.0 <= result.duration <= 6.0
    assert_playable(tmp_path / "five.mp4", 640, 360)
    assert Timeline.plan(5).duration > Timeline.plan(1).duration


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
    b, w = validate_cards(black, list(whites))
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
    b, w = validate_cards("word " * 55 + "_", ["and more words " * 9])
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

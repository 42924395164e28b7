"""The local renderer's work: card text -> animated H.264 MP4 (+ optional espeak-ng narration).

Everything here is synchronous and self-contained so that it can run in a worker process or a
worker thread (`app.video.local` decides). `render_video` is the entry point.
"""

from __future__ import annotations

import io
import logging
import math
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image, ImageDraw

from app.video.errors import RenderError, RenderTimeoutError
from app.video.fonts import DEJAVU_DIR, EMOJI_STRIKE, FontSet, load_fontset
from app.video.layout import Layout, layout
from app.video.text import Role, compose, sentence

logger = logging.getLogger(__name__)

RESOLUTIONS: dict[str, tuple[int, int]] = {"360p": (640, 360), "720p": (1280, 720)}
FPS = 24
MIN_SECONDS = 4.0
MAX_SECONDS = 6.0
AUDIO_RATE = 44100
X264_OPTIONS = {"preset": "veryfast", "crf": "23", "tune": "stillimage"}

BACKGROUND = (24, 24, 27)
CARD = (6, 6, 6)
CARD_OUTLINE = (70, 70, 76)
PROMPT_COLOUR = (245, 245, 245, 255)
ANSWER_COLOUR = (255, 206, 64, 255)
FOOTER_COLOUR = (120, 120, 128, 255)

PROMPT_FADE = 0.5
FIRST_ANSWER_AT = 1.0
ANSWER_ANIMATION = 0.5
HOLD_AFTER = 1.6


@dataclass(frozen=True, slots=True)
class RenderJob:
    """Everything a worker needs; plain data so that it pickles into a process pool."""

    black: str
    whites: tuple[str, ...]
    width: int = 640
    height: int = 360
    fps: int = FPS
    narration: bool = False
    espeak: str | None = None  # path of espeak-ng, None to render silently
    deadline: float | None = None  # time.time() after which the render gives up
    font_dir: str = str(DEJAVU_DIR)
    emoji: bool = True


@dataclass(frozen=True, slots=True)
class RenderResult:
    seconds: float  # wall time of the render
    duration: float  # video duration
    frames: int
    narrated: bool
    truncated: bool  # text did not fit at the smallest size and was cut with an ellipsis


# ---------------------------------------------------------------------------------------------
# timeline


@dataclass(frozen=True, slots=True)
class Timeline:
    duration: float
    answer_starts: tuple[float, ...]

    @staticmethod
    def plan(answers: int, narration_seconds: float = 0.0) -> Timeline:
        room = MAX_SECONDS - HOLD_AFTER - FIRST_ANSWER_AT - ANSWER_ANIMATION
        spacing = 0.8 if answers <= 1 else min(0.8, room / (answers - 1))
        starts = tuple(FIRST_ANSWER_AT + i * spacing for i in range(answers))
        end = (starts[-1] if starts else FIRST_ANSWER_AT) + ANSWER_ANIMATION + HOLD_AFTER
        duration = min(MAX_SECONDS, max(MIN_SECONDS, end, narration_seconds + 0.3))
        return Timeline(duration, starts)


def _ease_out(p: float) -> float:
    return 1 - (1 - p) ** 3


# ---------------------------------------------------------------------------------------------
# drawing


class Scene:
    """Pre-drawn layers (background, prompt, one per answer) composed cheaply per frame."""

    def __init__(self, job: RenderJob, fonts: FontSet) -> None:
        w, h = job.width, job.height
        self.size = (w, h)
        segments = compose(job.black, job.whites)
        self.answers = sorted({s.answer for s in segments if s.role is Role.ANSWER})
        margin = round(h * 0.06)
        pad = round(h * 0.07)
        footer = max(9, round(h * 0.035))
        box = (margin + pad, margin + pad, w - 2 * (margin + pad), h - 2 * (margin + pad) - footer)
        self.layout: Layout = layout(
            segments, fonts, box, max_size=round(h * 0.14), min_size=max(8, round(h * 0.033))
        )
        self.base = Image.new("RGB", (w, h), BACKGROUND)
        draw = ImageDraw.Draw(self.base)
        draw.rounded_rectangle(
            (margin, margin, w - margin, h - margin),
            radius=round(h * 0.04),
            fill=CARD,
            outline=CARD_OUTLINE,
            width=max(1, h // 240),
        )
        draw.text(
            (margin + pad, h - margin - pad * 0.6),
            "Punchline",
            font=fonts.font(0, footer),
            fill=FOOTER_COLOUR,
            anchor="ls",
        )
        self.prompt = Image.new("RGBA", (w, h))
        self._draw(self.prompt, fonts, None)
        self.answer_layers: dict[int, tuple[Image.Image, tuple[int, int]]] = {}
        for answer in self.answers:
            layer = Image.new("RGBA", (w, h))
            self._draw(layer, fonts, answer)
            bbox = layer.getbbox() or (0, 0, 1, 1)
            self.answer_layers[answer] = (layer.crop(bbox), (bbox[0], bbox[1]))

    def _draw(self, layer: Image.Image, fonts: FontSet, answer: int | None) -> None:
        lay = self.layout
        draw = ImageDraw.Draw(layer)
        if answer is None:
            thickness = max(1, round(lay.size * 0.07))
            for u in lay.underlines:
                draw.rectangle((u.x0, u.y, u.x1, u.y + thickness), fill=PROMPT_COLOUR)
        for piece in lay.pieces:
            wanted = piece.role is Role.PROMPT if answer is None else piece.answer == answer
            if not wanted:
                continue
            colour = PROMPT_COLOUR if piece.role is Role.PROMPT else ANSWER_COLOUR
            face = fonts.faces[piece.face]
            font = fonts.font(piece.face, lay.size)
            if not face.emoji:
                draw.text((piece.x, piece.baseline), piece.text, font=font, fill=colour,
                          anchor="ls")
                continue
            ascent, descent = font.getmetrics()
            glyphs = Image.new("RGBA", (max(1, math.ceil(font.getlength(piece.text))),
                                        ascent + descent))
            ImageDraw.Draw(glyphs).text((0, 0), piece.text, font=font, embedded_color=True)
            scale = lay.size / EMOJI_STRIKE
            glyphs = glyphs.resize(
                (max(1, round(glyphs.width * scale)), max(1, round(glyphs.height * scale))),
                Image.Resampling.LANCZOS,
            )
            layer.alpha_composite(glyphs, (round(piece.x), round(piece.baseline - ascent * scale)))

    def frames(self, timeline: Timeline, fps: int) -> Iterator[Image.Image | None]:
        """One image per frame, or None when the frame equals the previous one."""
        full = self.base.copy()
        full.paste(self.prompt, (0, 0), self.prompt)
        total = round(timeline.duration * fps)
        baked: set[int] = set()
        previous_state: object = None
        for index in range(total):
            t = index / fps
            if t < PROMPT_FADE:
                state: object = ("fade", index)
                yield Image.blend(self.base, full, _ease_out(t / PROMPT_FADE))
                previous_state = state
                continue
            moving: list[tuple[int, float]] = []
            for answer, start in zip(self.answers, timeline.answer_starts, strict=False):
                p = (t - start) / ANSWER_ANIMATION
                if p >= 1 and answer not in baked:
                    layer, at = self.answer_layers[answer]
                    full.paste(layer, at, layer)
                    baked.add(answer)
                elif 0 <= p < 1:
                    moving.append((answer, _ease_out(p)))
            state = (tuple(sorted(baked)), tuple(moving))
            if not moving and state == previous_state:
                yield None
                continue
            previous_state = state
            frame = full.copy()
            for answer, p in moving:
                layer, (x, y) = self.answer_layers[answer]
                faded = layer.copy()
                faded.putalpha(layer.getchannel("A").point(lambda v, p=p: round(v * p)))
                offset = round((1 - p) * self.layout.size * 0.9)
                frame.paste(faded, (x, y + offset), faded)
            yield frame


# ---------------------------------------------------------------------------------------------
# narration


def synthesize(espeak: str, text: str, max_seconds: float, timeout: float) -> bytes:
    """WAV bytes of `text` spoken by espeak-ng, sped up so that it fits in `max_seconds`."""
    words = max(1, len(text.split()))
    natural = words / 175 * 60
    speed = 175 if natural <= max_seconds else min(450, math.ceil(words * 60 / max_seconds))
    # The text goes through stdin, never argv, so a card starting with "-" is not an option.
    done = subprocess.run(
        [espeak, "--stdin", "--stdout", "-b", "1", "-z", "-s", str(speed)],
        input=text.encode("utf-8"),
        capture_output=True,
        timeout=timeout,
        check=True,
    )
    return done.stdout


def _audio_frames(wav: bytes) -> list[av.AudioFrame]:
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE)
    frames: list[av.AudioFrame] = []
    with av.open(io.BytesIO(wav), mode="r") as source:
        for frame in source.decode(audio=0):
            frames.extend(resampler.resample(frame))
    frames.extend(resampler.resample(None))
    return frames


# ---------------------------------------------------------------------------------------------
# encoding


def _check_deadline(deadline: float | None) -> None:
    if deadline is not None and time.time() > deadline:
        raise RenderTimeoutError("render ran past its deadline")


def render_video(job: RenderJob, dest: str) -> RenderResult:
    """Render `job` into an MP4 at `dest` (H.264 yuv420p, faststart, AAC narration if asked)."""
    started = time.perf_counter()
    if (job.width, job.height) not in RESOLUTIONS.values():
        raise RenderError(f"unsupported size {job.width}x{job.height}")
    try:
        fonts = load_fontset(Path(job.font_dir), job.emoji)
        scene = Scene(job, fonts)
        audio: list[av.AudioFrame] = []
        if job.narration and job.espeak:
            text = sentence(compose(job.black, job.whites))
            remaining = 10.0 if job.deadline is None else job.deadline - time.time()
            try:
                timeout = max(0.1, min(10.0, remaining))
                wav = synthesize(job.espeak, text, MAX_SECONDS - 0.5, timeout)
                audio = _audio_frames(wav)
            except (subprocess.SubprocessError, OSError, av.FFmpegError):
                logger.warning("narration failed; rendering silently", exc_info=True)
                audio = []
        spoken = sum(f.samples for f in audio) / AUDIO_RATE
        timeline = Timeline.plan(len(scene.answers), spoken)
        frames = _encode(job, dest, scene, timeline, audio)
    except (RenderError, MemoryError):
        raise
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise RenderError(f"local render failed: {exc}") from exc
    return RenderResult(
        seconds=time.perf_counter() - started,
        duration=frames / job.fps,
        frames=frames,
        narrated=bool(audio),
        truncated=scene.layout.truncated,
    )


def _encode(
    job: RenderJob, dest: str, scene: Scene, timeline: Timeline, audio: list[av.AudioFrame]
) -> int:
    with av.open(dest, mode="w", format="mp4", options={"movflags": "+faststart"}) as out:
        video = out.add_stream("libx264", rate=job.fps, options=X264_OPTIONS)
        video.width, video.height, video.pix_fmt = job.width, job.height, "yuv420p"
        sound = out.add_stream("aac", rate=AUDIO_RATE, layout="mono") if audio else None
        count = 0
        current: av.VideoFrame | None = None
        for image in scene.frames(timeline, job.fps):
            _check_deadline(job.deadline)
            if image is not None or current is None:
                assert image is not None
                rgb = av.VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
                current = rgb.reformat(format="yuv420p")
            current.pts = count
            current.time_base = Fraction(1, job.fps)
            out.mux(video.encode(current))
            count += 1
        out.mux(video.encode(None))
        if sound is not None:
            limit = int(timeline.duration * AUDIO_RATE) - 1024
            pts = 0
            for frame in audio:
                if pts + frame.samples > limit:
                    break
                frame.pts = pts
                pts += frame.samples
                out.mux(sound.encode(frame))
            out.mux(sound.encode(None))
    return count

"""Render workers die with the app, even when the app is killed with SIGKILL (issue 10, item 9).

A real process builds the service with the process pool, renders once and waits. The test reads
the process's descendants from /proc (forkserver, render worker, resource tracker), kills the
process with SIGKILL and expects every descendant gone within a few seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc"),
]

SCRIPT = textwrap.dedent("""
    import asyncio, json

    from app.video.service import get_video_service


    async def main() -> None:
        service = get_video_service()
        await service.cache.astart()
        await service.start()
        url = await service.get_or_create("Orphans are _.", ["Not welcome here."])
        print(json.dumps({"url": url}), flush=True)
        await asyncio.Event().wait()  # until killed


    if __name__ == "__main__":  # the forkserver imports this file again
        asyncio.run(main())
""")

Identity = tuple[int, str]  # (pid, start time): a pid alone may be reused


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], ppid [1])."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw[raw.rindex(")") + 2:].split()


def descendants(root: int) -> set[Identity]:
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            started[int(entry.name)] = fields[19]
    found: set[Identity] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add((child, started[child]))
            todo.append(child)
    return found


def alive(process: Identity) -> bool:
    fields = _stat(process[0])
    return fields is not None and fields[19] == process[1] and fields[0] not in ("Z", "X")


def test_render_workers_exit_when_the_app_is_sigkilled(tmp_path: Path) -> None:
    script = tmp_path / "app_instance.py"
    script.write_text(SCRIPT)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "REDIS_URL": "memory://",
        "DATA_DIR": str(tmp_path / "data"),
        "VIDEO_DIR": str(tmp_path / "videos"),
        "VIDEO_NARRATION": "false",
        "VIDEO_RENDER_POOL": "process",
        "PREGEN_ENABLED": "false",
        "APP_ENV": "test",
    }
    app = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    family: set[Identity] = set()
    try:
        assert app.stdout is not None
        line = app.stdout.readline()
        assert line, app.stderr.read() if app.stderr else "no output"
        assert json.loads(line)["url"].endswith(".mp4")
        family = descendants(app.pid)
        # at least the forkserver and one render worker (plus the resource tracker)
        assert len(family) >= 2, family
        app.kill()
        app.wait(10)
        deadline = time.monotonic() + 5.0
        while any(alive(p) for p in family) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [p for p in family if alive(p)] == []
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)
        for process in family:  # never leave our own orphans behind, even when the test fails
            if alive(process):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process[0], signal.SIGKILL)
        for stream in (app.stdout, app.stderr):
            if stream is not None:
                stream.close()

"""`python -m bench`: run every bench/bench_*.py module, then regenerate docs/benchmarks.md.

Each module runs in a child interpreter (`python -m bench --child NAME`): a fresh process per
benchmark, no threads or pools left over from the previous one, and a timeout that kills the
whole process group (including the module's own redis-server) if a module hangs.

A module is driven through `run()` when it has one (a returned dict is written to
bench/results/<name>.json, printed by its `print_summary(results)` and drawn by its
`plot(results, path)` into docs/img/<name>.png when it has them), else through `main()`.
Modules maintained by others, such as bench/bench_render.py, are run the same way; when one is
absent or exposes neither function, the page says so and the run goes on.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

from bench._support import REPO, RESULTS_DIR, write_results

BENCH_DIR = REPO / "bench"
EXPECTED = ("bench_cache", "bench_outage", "bench_render")
TIMEOUTS = {"bench_cache": 360.0, "bench_outage": 180.0, "bench_game": 900.0,
            "bench_queue": 420.0}
DEFAULT_TIMEOUT = float(os.environ.get("BENCH_TIMEOUT", "150"))
EXIT_NO_ENTRY_POINT = 3


def discover() -> list[str]:
    return sorted(path.stem for path in BENCH_DIR.glob("bench_*.py"))


def child(module_name: str) -> int:
    """Run one module in this process (the parent started us for it)."""
    module = importlib.import_module(f"bench.{module_name}")
    name = module_name.removeprefix("bench_")
    entry = getattr(module, "run", None) or getattr(module, "main", None)
    if not callable(entry):
        print(f"{module_name} exposes neither run() nor main()")
        return EXIT_NO_ENTRY_POINT
    saved_argv = sys.argv
    sys.argv = [f"bench/{module_name}.py"]  # a main() that parses arguments sees none
    try:
        result = entry()
    finally:
        sys.argv = saved_argv
    if isinstance(result, dict):
        path = write_results(name, result)
        summary = getattr(module, "print_summary", None)
        if callable(summary) and entry.__name__ == "run":
            summary(result)
        print(f"wrote {path}")
        plot = getattr(module, "plot", None)  # optional: plot(results, path) draws its figure
        if callable(plot):
            image = REPO / "docs" / "img" / f"{name}.png"
            image.parent.mkdir(parents=True, exist_ok=True)
            image.unlink(missing_ok=True)
            try:
                plot(result, image)
            except Exception as exc:  # a figure is not worth failing the run for
                print(f"{module_name}.plot() failed: {exc!r}")
    return 0


def run_module(module_name: str) -> dict[str, Any]:
    """Run one module in a child process; its output is echoed and kept for the page."""
    timeout = TIMEOUTS.get(module_name, DEFAULT_TIMEOUT)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    print(f"\n=== {module_name} (timeout {timeout:.0f} s)", flush=True)
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "bench", "--child", module_name],
                               cwd=REPO, env=env, start_new_session=True, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        code = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the child's own group: it and its redis-server
        process.wait()
        reader.join(5)
        return {"status": "timeout", "seconds": round(time.perf_counter() - started, 1),
                "note": f"killed after {timeout:.0f} s", "output_tail": lines[-40:]}
    except KeyboardInterrupt:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait()
        raise
    reader.join(5)
    seconds = round(time.perf_counter() - started, 1)
    tail = lines[-120:]
    if code == 0:
        return {"status": "ok", "seconds": seconds, "output_tail": tail}
    if code == EXIT_NO_ENTRY_POINT:
        return {"status": "skipped", "seconds": seconds,
                "note": f"bench/{module_name}.py exposes neither run() nor main()"}
    return {"status": "failed", "seconds": seconds, "note": f"exit code {code}",
            "output_tail": lines[-40:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--only", nargs="+", metavar="MODULE",
                        help="run only these modules (e.g. bench_cache)")
    parser.add_argument("--report-only", action="store_true",
                        help="redraw docs/benchmarks.md from the last results")
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child)

    from bench import report

    if args.report_only:
        print(f"wrote {report.render()}")
        return 0
    started = time.perf_counter()
    found = discover()
    selected = args.only or found
    statuses: dict[str, Any] = {}
    for module_name in EXPECTED:
        if module_name not in found and (not args.only or module_name in args.only):
            statuses[module_name] = {
                "status": "absent",
                "note": f"bench/{module_name}.py does not exist yet, skipped"}
            print(f"\n=== {module_name}: bench/{module_name}.py does not exist yet, skipped")
    for module_name in selected:
        if module_name in found:
            statuses[module_name] = run_module(module_name)
    current = dict(statuses)
    if args.only:  # keep what the last full run said about the modules not run now
        try:
            previous = json.loads((RESULTS_DIR / "_run.json").read_text())["modules"]
        except (OSError, ValueError, KeyError):
            previous = {}
        statuses = {**previous, **statuses}
    run_status = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                  "seconds": round(time.perf_counter() - started, 1), "modules": statuses}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "_run.json").write_text(json.dumps(run_status, indent=1) + "\n")
    doc = report.render(run_status)
    print(f"\nwrote {doc} ({run_status['seconds']} s in all)")
    for module_name, status in current.items():
        print(f"  {module_name}: {status['status']}"
              + (f" ({status['note']})" if status.get("note") else ""))
    failed = [m for m, s in current.items() if s["status"] in ("failed", "timeout")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmarks of Punchline, kept outside the test suite (STYLE.md lesson 11).

`python -m bench` runs every `bench/bench_*.py` module, writes `bench/results/<name>.json` and
regenerates `docs/benchmarks.md` with its plots in `docs/img/`. Each module also runs alone:
`python -m bench.bench_cache`, `python -m bench.bench_outage`.
"""

"""Benchmarks: each ``bench_*.py`` prints its figures as ratios against a same-run baseline."""

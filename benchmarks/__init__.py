"""Benchmarks: scripts that measure ratios against baselines in one run and print them."""

"""Benchmarks: figures and ratios against the floors of the work they cannot avoid."""

"""Benchmarks that print ratios against named references measured in the same run."""

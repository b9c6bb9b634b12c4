"""Benchmarks, each printing ratios against a baseline measured in the same run: python -m benchmarks.<name>."""

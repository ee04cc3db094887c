"""Peers in other frameworks, for side-by-side benchmarks."""

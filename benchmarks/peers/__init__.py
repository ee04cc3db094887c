"""Peers of the zoo's networks in other frameworks, for the benchmarks (not part of the package)."""

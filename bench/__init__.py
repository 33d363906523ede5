"""Benchmarks for the workshop's claims, on real servers: python -m bench.

See bench/README.md for what each measurement means and how to read it.
"""

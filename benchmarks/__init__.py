"""Benchmarks: they measure and print figures for the README; they assert nothing (`make bench`)."""

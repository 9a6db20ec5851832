"""Benchmarks, run by people (``make bench``), never by CI: they print figures and assert nothing."""

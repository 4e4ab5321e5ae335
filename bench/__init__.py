"""The call-load benchmark: SIPp callers against a dialplan IVR, a minimal raw ARI app and ivrpowers.

Run it with `make bench-calls` (or `python -m bench.calls --help`); see README, "Benchmarks".
"""

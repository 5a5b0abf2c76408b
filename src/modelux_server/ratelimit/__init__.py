"""Requests-per-minute limits per credential: the limiter, its verdicts and its backends.

Domain-neutral: a limit is checked for an opaque key (`"sk:key_..."`) at a
number of requests per minute. Which number applies to which credential is
decided by the callers (`policy.py` holds the order: key override, plan,
setting). See `limiter.py` for the algorithm.
"""

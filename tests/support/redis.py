"""The local Redis for tests; CI fails instead of skipping when it is missing."""

from __future__ import annotations

import os

import pytest
import redis

REDIS_URL = os.environ.get("MODELUX_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_url_or_skip() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Redis is not reachable at {REDIS_URL} and CI=true")
        pytest.skip("Redis not available")
    return REDIS_URL

"""Build the limiter the settings ask for and keep it for the app's lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from modelux_server.ratelimit.backends.local import LocalRateLimiter
from modelux_server.ratelimit.backends.redis import RedisRateLimiter
from modelux_server.ratelimit.limiter import RateLimiter
from modelux_server.services import Services


def build_rate_limiter(rt: Services) -> RateLimiter:
    settings = rt.settings
    if not settings.redis_url:
        return LocalRateLimiter(rt.clock)
    import redis.asyncio as aioredis

    # its own pool: a burst of checks must not wait behind the counter's
    # connections, nor the counter behind ours; blocking, as the counter's is,
    # so a busy pool waits instead of looking like Redis being down
    pool = aioredis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=128, timeout=5, socket_timeout=2, socket_connect_timeout=2
    )
    return RedisRateLimiter(aioredis.Redis(connection_pool=pool), rt.clock)


@asynccontextmanager
async def rate_limiter_lifetime(rt: Services) -> AsyncIterator[RateLimiter]:
    limiter = build_rate_limiter(rt)
    rt.rate_limiter = limiter
    try:
        yield limiter
    finally:
        await limiter.close()
        rt.rate_limiter = None

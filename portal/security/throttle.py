"""Fixed-window counters for throttling (login failures, code guessing).

Stored in Redis when ``REDIS_URL`` is set, so that the limits hold across
gunicorn workers; in process memory otherwise (development, tests).
"""
from __future__ import annotations

import math
import threading
import time

from portal.domain.errors import TooManyAttempts


class MemoryBackend:
    def __init__(self):
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}

    def count(self, key: str, window: int) -> tuple[int, int]:
        now = time.monotonic()
        with self._lock:
            start, n = self._windows.get(key, (now, 0))
            if now - start >= window:
                return 0, window
            return n, math.ceil(window - (now - start))

    def incr(self, key: str, window: int) -> None:
        now = time.monotonic()
        with self._lock:
            start, n = self._windows.get(key, (now, 0))
            if now - start >= window:
                start, n = now, 0
            self._windows[key] = (start, n + 1)

    def reset(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)


class RedisBackend:
    def __init__(self, url: str):
        import redis
        self._redis = redis.Redis.from_url(url, socket_timeout=2)

    def count(self, key: str, window: int) -> tuple[int, int]:
        value, ttl = self._redis.pipeline().get(key).ttl(key).execute()
        return int(value or 0), max(int(ttl or 0), 1)

    def incr(self, key: str, window: int) -> None:
        pipe = self._redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, window, nx=True)
        pipe.execute()

    def reset(self, key: str) -> None:
        self._redis.delete(key)


class Throttle:
    """``limits`` maps a limit name to (max failures, window in seconds)."""

    def __init__(self, backend, limits: dict[str, tuple[int, int]], prefix: str = "pn:thr"):
        self.backend = backend
        self.limits = limits
        self.prefix = prefix

    def _key(self, name: str, value: str) -> str:
        return f"{self.prefix}:{name}:{value}"

    def check(self, **keys: str) -> None:
        """Raise ``TooManyAttempts`` when any named key is over its limit."""
        for name, value in keys.items():
            limit, window = self.limits[name]
            count, retry_after = self.backend.count(self._key(name, value), window)
            if count >= limit:
                minutes = max(1, math.ceil(retry_after / 60))
                raise TooManyAttempts(
                    "Trop de tentatives. Réessayez dans "
                    f"{minutes} minute{'s' if minutes > 1 else ''}.",
                    retry_after=retry_after)

    def failure(self, **keys: str) -> None:
        for name, value in keys.items():
            _limit, window = self.limits[name]
            self.backend.incr(self._key(name, value), window)

    def reset(self, **keys: str) -> None:
        for name, value in keys.items():
            self.backend.reset(self._key(name, value))


def make_backend(redis_url: str | None):
    return RedisBackend(redis_url) if redis_url else MemoryBackend()

"""Fixed-window counters for throttling (login failures, code guessing).

The counters are the maintained ``limits`` library's storages (Redis when
``REDIS_URL`` is set, so that the limits hold across gunicorn workers; its
in-process memory storage, which expires its keys, otherwise — development,
tests, a single worker). Production refuses to start without ``REDIS_URL``
unless it declares a single worker (``portal.config``).

Counting is atomic: ``check`` *reserves* the attempt with one atomic
increment-and-compare (``FixedWindowRateLimiter.hit``: a Lua script on Redis,
works on Redis 5+), so N concurrent attempts against k remaining slots let
exactly k through — no check-then-increment race. A failed attempt keeps its
slot (``failure`` has nothing left to count); a successful one gives it back
(``succeeded``), so only failures add up, as the policy says
(docs/SECURITY.md).
"""
from __future__ import annotations

import math
import time

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import FixedWindowRateLimiter

from portal.domain.errors import TooManyAttempts


def MemoryBackend() -> MemoryStorage:
    """Per-process counters (keys expire with their window)."""
    return MemoryStorage()


def RedisBackend(url: str) -> RedisStorage:
    """Counters shared by every worker."""
    return RedisStorage(url, socket_timeout=2)


class Throttle:
    """``limits`` maps a limit name to (max failures, window in seconds)."""

    def __init__(self, backend, limits: dict[str, tuple[int, int]], prefix: str = "pn:thr"):
        self.limits = limits
        self.prefix = prefix
        self.backend = backend

    @property
    def backend(self):
        return self._storage

    @backend.setter
    def backend(self, storage) -> None:
        self._storage = storage
        self._limiter = FixedWindowRateLimiter(storage)

    def _item(self, name: str) -> RateLimitItemPerSecond:
        limit, window = self.limits[name]
        return RateLimitItemPerSecond(limit, window, namespace=self.prefix)

    def check(self, **keys: str) -> None:
        """Count this attempt against every named key, atomically; raise
        ``TooManyAttempts`` when one is over its limit."""
        for name, value in keys.items():
            item = self._item(name)
            if not self._limiter.hit(item, name, value):
                reset_at = self._limiter.get_window_stats(item, name, value).reset_time
                retry_after = max(1, math.ceil(reset_at - time.time()))
                minutes = max(1, math.ceil(retry_after / 60))
                raise TooManyAttempts(
                    "Trop de tentatives. Réessayez dans "
                    f"{minutes} minute{'s' if minutes > 1 else ''}.",
                    retry_after=retry_after)

    def failure(self, **keys: str) -> None:
        """The attempt failed: it keeps the slot ``check`` reserved."""

    def succeeded(self, **keys: str) -> None:
        """The attempt succeeded: give back the slot ``check`` reserved."""
        for name, value in keys.items():
            item = self._item(name)
            self._storage.incr(item.key_for(name, value), item.get_expiry(), amount=-1)

    def guard(self, action, failures: tuple[type[BaseException], ...], **keys: str):
        """Run ``action`` as one throttled attempt: it keeps its slot when it
        raises one of ``failures``, gives it back otherwise."""
        self.check(**keys)
        try:
            result = action()
        except failures:
            self.failure(**keys)
            raise
        except BaseException:
            self.succeeded(**keys)
            raise
        self.succeeded(**keys)
        return result

    def count(self, name: str, value: str) -> int:
        """Attempts counted in the current window (tests, diagnostics)."""
        item = self._item(name)
        return self._storage.get(item.key_for(name, value))

    def reset(self, **keys: str) -> None:
        for name, value in keys.items():
            self._limiter.clear(self._item(name), name, value)


def make_backend(redis_url: str | None):
    return RedisBackend(redis_url) if redis_url else MemoryBackend()

"""Login throttling: a fixed window of failed attempts, counted so that nobody can lock out another
person.

A browser that signed in to an account before carries a signed *device cookie* for it; its attempts
on that account count against that browser alone. Every other attempt counts per (address, e-mail)
and per address. An attacker who exhausts those locks out their own address, never the account:
its owner's known browser still gets in, and so does anyone at another address (OWASP's "device
cookies" recipe). The address is the client's, as the trusted proxies report it (``TRUSTED_PROXIES``).

Kept in Redis when the app has one, so every gunicorn worker shares the count; in process memory
otherwise (the single-process default).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0


class MemoryCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}

    def get(self, key: str, window: int, now: float) -> tuple[int, int]:
        with self._lock:
            start, count = self._windows.get(key, (now, 0))
            if now - start >= window:
                self._windows.pop(key, None)
                return 0, 0
            return count, int(window - (now - start)) + 1

    def incr(self, key: str, window: int, now: float) -> None:
        with self._lock:
            start, count = self._windows.get(key, (now, 0))
            if now - start >= window:
                start, count = now, 0
            self._windows[key] = (start, count + 1)

    def clear(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)


class RedisCounter:
    def __init__(self, redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix + "login:"

    def get(self, key: str, window: int, now: float) -> tuple[int, int]:
        pipe = self.redis.pipeline()
        pipe.get(self.prefix + key)
        pipe.ttl(self.prefix + key)
        count, ttl = pipe.execute()
        return int(count or 0), max(int(ttl or 0), 0)

    def incr(self, key: str, window: int, now: float) -> None:
        pipe = self.redis.pipeline()
        pipe.incr(self.prefix + key)
        pipe.expire(self.prefix + key, window, nx=True)
        pipe.execute()

    def clear(self, key: str) -> None:
        self.redis.delete(self.prefix + key)


class LoginThrottle:
    # An address may try several accounts (a shared office), but not endlessly.
    ADDRESS_FACTOR = 4

    def __init__(self, counter, max_failures: int, window_seconds: int) -> None:
        self.counter = counter
        self.max_failures = max_failures
        self.window = window_seconds

    def _limits(self, address: str, email: str, device: str | None) -> list[tuple[str, int]]:
        if device:
            return [(f"d:{device}", self.max_failures)]
        return [(f"a:{address}|e:{email}", self.max_failures), (f"a:{address}", self.max_failures * self.ADDRESS_FACTOR)]

    def check(self, address: str, email: str, device: str | None = None) -> Verdict:
        """``device``: the id of a valid device cookie this browser holds for ``email``, if any."""
        now = time.time()
        for key, limit in self._limits(address, email, device):
            count, retry = self.counter.get(key, self.window, now)
            if count >= limit:
                return Verdict(False, retry or self.window)
        return Verdict(True)

    def failed(self, address: str, email: str, device: str | None = None) -> None:
        now = time.time()
        for key, _limit in self._limits(address, email, device):
            self.counter.incr(key, self.window, now)

    def succeeded(self, address: str, email: str, device: str | None = None) -> None:
        self.counter.clear(self._limits(address, email, device)[0][0])

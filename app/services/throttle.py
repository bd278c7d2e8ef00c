"""Login throttling: a fixed window of failed attempts per (address, e-mail) and per address.

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

    def _keys(self, address: str, email: str) -> tuple[str, str]:
        return f"a:{address}|e:{email}", f"a:{address}"

    def check(self, address: str, email: str) -> Verdict:
        now = time.time()
        pair, addr = self._keys(address, email)
        for key, limit in ((pair, self.max_failures), (addr, self.max_failures * self.ADDRESS_FACTOR)):
            count, retry = self.counter.get(key, self.window, now)
            if count >= limit:
                return Verdict(False, retry or self.window)
        return Verdict(True)

    def failed(self, address: str, email: str) -> None:
        now = time.time()
        for key in self._keys(address, email):
            self.counter.incr(key, self.window, now)

    def succeeded(self, address: str, email: str) -> None:
        self.counter.clear(self._keys(address, email)[0])

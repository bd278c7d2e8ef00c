"""Login throttling: a fixed window of failed attempts, counted so that nobody can lock out another
person.

A browser that signed in to an account before carries a signed *device cookie* for it; its attempts
on that account count against that browser alone. Every other attempt counts per (address, e-mail)
and per address. An attacker who exhausts those locks out their own address, never the account:
its owner's known browser still gets in, and so does anyone at another address (OWASP's "device
cookies" recipe). The address is the client's, as the trusted proxies report it (``TRUSTED_PROXIES``).

Kept in Redis when the app has one, so every gunicorn worker shares the count; in process memory
otherwise (the single-process default). While Redis cannot be reached, each process counts in its own
memory instead: the limit still holds per process (never "unlimited", never an error page), and the
shared count takes over again once Redis answers.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)


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

    def incr(self, key: str, window: int, now: float) -> tuple[int, int]:
        """Count one more; (the new count, seconds until the window ends)."""
        with self._lock:
            start, count = self._windows.get(key, (now, 0))
            if now - start >= window:
                start, count = now, 0
            self._windows[key] = (start, count + 1)
            return count + 1, int(window - (now - start)) + 1

    def decr(self, key: str) -> None:
        with self._lock:
            if key in self._windows:
                start, count = self._windows[key]
                self._windows[key] = (start, max(count - 1, 0))

    def clear(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)


class RedisCounter:
    """Counts in Redis; falls back to a per-process ``MemoryCounter`` while Redis is unreachable."""

    def __init__(self, redis, prefix: str) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        self.redis = redis
        self.prefix = prefix + "login:"
        self.fallback = MemoryCounter()
        self._down = (RedisConnectionError, RedisTimeoutError)
        self._warned = False

    def _fall_back(self, exc: BaseException) -> MemoryCounter:
        if not self._warned:
            self._warned = True
            log.warning("Redis is unreachable (%s): login attempts are counted in this process's memory", exc)
        return self.fallback

    def get(self, key: str, window: int, now: float) -> tuple[int, int]:
        try:
            pipe = self.redis.pipeline()
            pipe.get(self.prefix + key)
            pipe.ttl(self.prefix + key)
            count, ttl = pipe.execute()
        except self._down as exc:
            return self._fall_back(exc).get(key, window, now)
        self._warned = False
        return int(count or 0), max(int(ttl or 0), 0)

    def incr(self, key: str, window: int, now: float) -> tuple[int, int]:
        try:
            pipe = self.redis.pipeline()
            pipe.incr(self.prefix + key)
            pipe.expire(self.prefix + key, window, nx=True)
            pipe.ttl(self.prefix + key)
            count, _set, ttl = pipe.execute()
        except self._down as exc:
            return self._fall_back(exc).incr(key, window, now)
        self._warned = False
        return int(count), max(int(ttl or 0), 0)

    def decr(self, key: str) -> None:
        try:
            self.redis.decr(self.prefix + key)
        except self._down as exc:
            self._fall_back(exc).decr(key)

    def clear(self, key: str) -> None:
        self.fallback.clear(key)
        try:
            self.redis.delete(self.prefix + key)
        except self._down as exc:
            self._fall_back(exc)


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

    def attempt(self, address: str, email: str, device: str | None = None) -> Verdict:
        """Count this attempt before the password is checked (so parallel guesses cannot slip past
        the limit while a hash is computed); refused once a count passes its limit. A success is
        given back by ``succeeded``."""
        now = time.time()
        verdict = Verdict(True)
        for key, limit in self._limits(address, email, device):
            count, retry = self.counter.incr(key, self.window, now)
            if count > limit and verdict.allowed:
                verdict = Verdict(False, retry or self.window)
        return verdict

    def not_checked(self, address: str, email: str, device: str | None = None) -> None:
        """The attempt ended before any password was checked: it does not count."""
        for key, _limit in self._limits(address, email, device):
            self.counter.decr(key)

    def succeeded(self, address: str, email: str, device: str | None = None) -> None:
        """The attempt was right: it no longer counts, and the account's count starts again."""
        limits = self._limits(address, email, device)
        self.counter.clear(limits[0][0])
        for key, _limit in limits[1:]:
            self.counter.decr(key)

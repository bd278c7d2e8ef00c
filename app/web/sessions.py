"""The session cookie, verified once per process: Flask's signed cookie, with the verified contents of
recent cookies kept in memory.

Every request of a signed-in person carries the same cookie until the session changes, and checking
its signature (key derivation, HMAC, base64, JSON) is a measurable share of a heartbeat's CPU. A
cookie is remembered only after its signature was checked, and only by its exact value: a forged or
altered cookie is a different string and is checked (and refused) as before. Its age is checked at
every request against the signed timestamp, so a session still ends when ``PERMANENT_SESSION_LIFETIME``
says. Each request gets its own deep copy: nothing one request changes in its session reaches another.
"""

from __future__ import annotations

import copy
import threading
import time

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature

REMEMBERED = 4096  # cookies kept per process; the oldest half is forgotten when full


class RememberingCookieSessionInterface(SecureCookieSessionInterface):
    def __init__(self, size: int = REMEMBERED) -> None:
        self.size = size
        self._verified: dict[tuple[str, object], tuple[dict, int]] = {}
        self._lock = threading.Lock()

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not app.secret_key:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        # The keys are part of what was verified: a new secret key (or fallback) checks every cookie again.
        key = (value, (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ())))
        known = self._verified.get(key)
        if known is not None:
            data, signed_at = known
            if 0 <= int(time.time()) - signed_at <= max_age:
                return self.session_class(copy.deepcopy(data))
            with self._lock:
                self._verified.pop(key, None)
            return self.session_class()
        try:
            data, signed_at = self.get_signing_serializer(app).loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        with self._lock:
            if len(self._verified) >= self.size:
                for old in list(self._verified)[: self.size // 2]:  # dicts keep insertion order
                    del self._verified[old]
            self._verified[key] = (copy.deepcopy(data), int(signed_at.timestamp()))
        return self.session_class(data)

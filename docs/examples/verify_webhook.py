"""Check that a webhook really comes from your Groundwork server, and is fresh.

Every delivery carries ``Groundwork-Signature: t=<unix seconds>,v1=<hex>``, where the hex is the
HMAC-SHA256 of ``"<t>.<raw body>"`` under the webhook's signing secret (on the project's Webhooks
page). Check the raw bytes you received, before parsing them. A signature older than five minutes is
refused, so a body captured on the way cannot be replayed later; the event's ``id`` (also in the
``Groundwork-Delivery`` header) lets you drop a retry of an event you already handled.

    from flask import Flask, abort, request
    app = Flask(__name__)

    @app.post("/groundwork")
    def groundwork_event():
        if not verify(SECRET, request.headers.get("Groundwork-Signature", ""), request.get_data()):
            abort(400)
        event = request.get_json()
        ...  # event["type"], event["project"], event["data"]
        return "", 204
"""

import hashlib
import hmac
import time

TOLERANCE_SECONDS = 300


def verify(secret: str, signature_header: str, body: bytes, tolerance: int = TOLERANCE_SECONDS,
           now: float | None = None) -> bool:
    """True when ``body`` was signed with ``secret`` less than ``tolerance`` seconds from now."""
    timestamp, signatures = "", []
    for part in signature_header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12) or not signatures:
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > tolerance:
        return False  # too old: a replay (or a clock far off)
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s) for s in signatures if s.isascii())

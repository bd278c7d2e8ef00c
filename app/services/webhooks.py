"""Webhooks: a project's events posted, signed, to the URLs its admins registered.

**An outbox.** ``emit`` is a building block: in its caller's transaction it adds one
``WebhookDelivery`` (status ``pending``, its own ``event_id``) for every active webhook of the project
that subscribed to the event, and notes the rows in the session's outbox. So an event exists if and
only if the change it announces committed. After the commit, the job layer takes the outbox
(``take_outbox``, from a listener on the app's session factory) and queues the delivery job; no
service reaches the job queue itself, and no caller has to remember to.

**Delivery.** ``deliver`` posts one delivery once: it claims the row (a conditional UPDATE that
counts the attempt and leases the row for the length of the request), posts outside any transaction,
and records the response code and the first characters of the body. A 2xx is delivered; anything
else is tried again after ``RETRY_DELAYS`` (the job schedules it) until ``max_attempts``, then it is
failed. A test event (``ping``) and a redelivery an admin asks for are tried once. A delivery whose
lease ran out, or whose scheduled retry was lost with its process, is ``overdue``: the next sweep
picks it up.

**Signing.** Every body is signed: ``Groundwork-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>" under the webhook's secret>``. ``verify`` is the reference check, with a replay window.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ipaddress
import re
import secrets
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import unquote, urlsplit

import orjson
from sqlalchemy import delete, func, inspect, or_, select, update
from sqlalchemy.orm import Session

from app.db import begin_write
from app.errors import Conflict, NotFound, ValidationError
from app.models import WEBHOOK_EVENTS, Project, Webhook, WebhookDelivery, utcnow

from . import audit

EVENTS = WEBHOOK_EVENTS
PING = "ping"  # the test event: same path, same signature, sent to one webhook on request
EVENT_TITLES = {
    "import.completed": "an import of items finished",
    "export.completed": "a dataset version is ready",
    "project.completed": "the last work item reached its overlap",
    "trainer.flagged": "quality checks paused a trainer (member id only)",
}

URL_MAX = 2000  # the column
WEBHOOKS_PER_PROJECT = 20
SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "Groundwork-Signature"
EVENT_HEADER = "Groundwork-Event"
DELIVERY_HEADER = "Groundwork-Delivery"
USER_AGENT = "Groundwork-Webhooks/1"
TOLERANCE_SECONDS = 300  # a signature older (or newer) than this is refused by ``verify``

RETRY_DELAYS = (10, 60, 300, 1800, 7200)  # seconds before the 2nd, 3rd, … attempt; the last repeats
MAX_ATTEMPTS = 6
TIMEOUT_SECONDS = 10.0
BODY_KEPT = 500  # characters of a receiver's reply kept in the log
_BODY_READ = 4 * BODY_KEPT  # bytes read of it (UTF-8 takes at most four per character)
ERROR_MAX = 500  # the column
LEASE_MARGIN = timedelta(seconds=30)  # a claim outlives the request by this much before it is overdue
EARLY = timedelta(seconds=2)  # a scheduled retry that wakes this much early still counts as due
OVERDUE_AFTER = timedelta(seconds=60)  # pending and due this long ago: its dispatch or retry was lost
OUTBOX = "webhook_outbox"  # key of the session's ``info`` holding deliveries emitted in its transaction


# --- emitting (building blocks) ----------------------------------------------------------------------


def _outbox(session: Session) -> list[WebhookDelivery]:
    return session.info.setdefault(OUTBOX, [])


def take_outbox(session: Session) -> list[int]:
    """The ids of the deliveries this session's transaction emitted, emptied. Called after the commit
    (the job layer queues their delivery) and after a rollback (they never existed)."""
    rows = session.info.pop(OUTBOX, None) or []
    keys = (inspect(row).identity for row in rows)  # read without SQL (none may run after a commit)
    return [key[0] for key in keys if key is not None]


def _event_id() -> str:
    return "evt_" + uuid.uuid4().hex


def payload_for(event: str, event_id: str, project_slug: str, data: Mapping, now: datetime) -> dict:
    """The body every receiver gets. ``data`` never holds a trainer's name or e-mail."""
    return {"id": event_id, "type": event, "created_at": now.isoformat(), "project": project_slug,
            "data": dict(data)}


def _queue(session: Session, hook: Webhook, event: str, slug: str, data: Mapping, now: datetime) -> WebhookDelivery:
    event_id = _event_id()
    delivery = WebhookDelivery(webhook_id=hook.id, event=event, event_id=event_id,
                               payload=payload_for(event, event_id, slug, data, now), status="pending",
                               attempts=0, created_at=now)
    session.add(delivery)
    _outbox(session).append(delivery)
    return delivery


def emit(session: Session, project_id: int, event: str, data: Mapping, now: datetime | None = None) -> int:
    """Announce ``event`` of a project to every active webhook of it subscribed to the event: one pending
    delivery each, in the caller's transaction (they exist only if it commits; after the commit they
    are delivered). Returns how many. A building block: does not commit."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    hooks = [h for h in session.scalars(select(Webhook).where(Webhook.project_id == project_id,
                                                              Webhook.active.is_(True)).order_by(Webhook.id))
             if event in (h.events or [])]
    if not hooks:
        return 0
    slug = session.scalar(select(Project.slug).where(Project.id == project_id))
    now = now or utcnow()
    for hook in hooks:
        _queue(session, hook, event, slug, data, now)
    return len(hooks)


# --- signing -----------------------------------------------------------------------------------------


def encode(payload: Mapping) -> bytes:
    """The exact bytes posted (keys sorted, so every attempt sends the same body)."""
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Groundwork-Signature`` header's value for ``body`` sent at ``timestamp`` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes | str, tolerance: int = TOLERANCE_SECONDS,
           now: float | None = None) -> bool:
    """Whether ``header`` (a ``Groundwork-Signature``) signs ``body`` under ``secret`` and was made within
    ``tolerance`` seconds of ``now`` (a replayed old body is refused). The reference for receivers."""
    if isinstance(body, str):
        body = body.encode()
    timestamp, candidates = None, []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            candidates.append(value)
    if not (timestamp and timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12) or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        return False
    expected = signature(secret, body, int(timestamp)).partition(",v1=")[2]
    return any(hmac.compare_digest(expected, c) for c in candidates if c.isascii())


def headers_for(secret: str, delivery: WebhookDelivery, body: bytes, now: datetime) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: delivery.event,
        DELIVERY_HEADER: delivery.event_id,
        SIGNATURE_HEADER: signature(secret, body, int(now.timestamp())),
    }


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


# --- managing webhooks (the admin's page) ---------------------------------------------------------


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a webhook's address, or None. Only http and https, with a host, in printable
    ASCII without spaces, at most URL_MAX characters, not at an address ``refused_address`` refuses (a
    host name is checked at each delivery, on the address it resolves to). Private and loopback
    addresses are allowed: a self-hosted install posting to a service beside it is the common case, and
    only admins add them."""
    if not url:
        return "enter the address to post events to"
    if len(url) > URL_MAX:
        return f"must be at most {URL_MAX} characters"
    if not all(" " < c < "\x7f" for c in url):
        return "may only hold printable ASCII characters without spaces (percent-encode the rest)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        return "is not a valid address"
    if parts.scheme.lower() not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "must name a host"
    if problem := _host_problem(parts.netloc.rpartition("@")[2], parts.port):
        return problem
    problem = refused_address(parts.hostname)
    if problem:
        return problem
    return None


_HOST = re.compile(r"(?:\[(?P<ip6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9_.-]+))(?::[0-9]{1,5})?")
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def _host_problem(host_port: str, port: int | None) -> str | None:
    """Why the address's host and port cannot be connected to, or None: a bracketed IPv6 address, or
    a name of dot-separated labels (letters, digits, hyphens inside, at most 63 each, an IDNA label
    that decodes), and a port from 1 to 65535."""
    found = _HOST.fullmatch(host_port)
    if found is None:
        return "is not a valid address (the host must be a name or an IP address, then an optional :port)"
    if port == 0:
        return "must not use port 0"
    if found["ip6"] is not None:
        try:
            ipaddress.IPv6Address(found["ip6"])
        except ValueError:
            return "is not a valid address (the IPv6 address in brackets is not one)"
        return None
    name = found["name"].removesuffix(".")
    labels = name.split(".")
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return "is not a valid address (each part of the host name is 1–63 letters, digits or inner hyphens)"
    for label in labels:
        if label.lower().startswith("xn--"):
            try:
                label.encode("ascii").decode("idna")
            except UnicodeError:
                return "is not a valid address (an internationalised part of the host name does not decode)"
    return None


def _check_events(events: Iterable[str]) -> list[str]:
    chosen = [e for e in EVENTS if e in set(events)]
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise ValidationError({"events": f"unknown event {str(unknown[0])[:40]!r}"})
    if not chosen:
        raise ValidationError({"events": "tick at least one event"})
    return chosen


def shown_url(url: str) -> str:
    """The address as pages show it: a password in it is masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    return parts._replace(netloc=f"{user.partition(':')[0]}:•••@{host}").geturl()


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def create_webhook(session: Session, project: Project, url: str, events: Iterable[str],
                   actor_id: int | None) -> Webhook:
    """Register ``url`` for ``events`` of ``project``, with a new signing secret. Commits."""
    url = (url or "").strip()
    events = list(events)
    errors = {}
    if problem := url_problem(url):
        errors["url"] = problem
    try:
        events = _check_events(events)
    except ValidationError as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    begin_write(session)
    count = session.scalar(select(func.count(Webhook.id)).where(Webhook.project_id == project.id))
    if count >= WEBHOOKS_PER_PROJECT:
        session.rollback()
        raise ValidationError({"url": f"a project has at most {WEBHOOKS_PER_PROJECT} webhooks; delete one first"})
    hook = Webhook(project_id=project.id, url=url, secret=new_secret(), events=events, active=True,
                   created_by=actor_id)
    session.add(hook)
    session.flush()
    audit.record(session, actor_id, "webhook.create", "project", project.id,
                 {"webhook_id": hook.id, "host": _host(url), "events": events})
    session.commit()
    return hook


def webhooks_of(session: Session, project: Project) -> list[Webhook]:
    return list(session.scalars(select(Webhook).where(Webhook.project_id == project.id).order_by(Webhook.id)))


def get_webhook(session: Session, project: Project, webhook_id: int) -> Webhook:
    hook = session.scalar(select(Webhook).where(Webhook.id == webhook_id, Webhook.project_id == project.id))
    if hook is None:
        raise NotFound("no such webhook in this project")
    return hook


def _locked_hook(session: Session, project: Project, webhook_id: int) -> Webhook:
    begin_write(session)
    hook = session.scalar(select(Webhook).where(Webhook.id == webhook_id, Webhook.project_id == project.id)
                          .with_for_update().execution_options(populate_existing=True))
    if hook is None:
        session.rollback()
        raise NotFound("no such webhook in this project")
    return hook


def set_active(session: Session, project: Project, webhook_id: int, active: bool, actor_id: int | None) -> Webhook:
    """Enable or disable a webhook (a disabled one gets no events; its pending deliveries fail). Commits."""
    hook = _locked_hook(session, project, webhook_id)
    if hook.active != active:
        hook.active = active
        audit.record(session, actor_id, "webhook.enable" if active else "webhook.disable", "project", project.id,
                     {"webhook_id": hook.id, "host": _host(hook.url)})
    session.commit()
    return hook


def rotate_secret(session: Session, project: Project, webhook_id: int, actor_id: int | None) -> Webhook:
    """Give a webhook a new signing secret; every later attempt is signed with it. Commits."""
    hook = _locked_hook(session, project, webhook_id)
    hook.secret = new_secret()
    audit.record(session, actor_id, "webhook.rotate_secret", "project", project.id,
                 {"webhook_id": hook.id, "host": _host(hook.url)})
    session.commit()
    return hook


def delete_webhook(session: Session, project: Project, webhook_id: int, actor_id: int | None) -> str:
    """Delete a webhook and its delivery log. Returns its address. Commits."""
    hook = _locked_hook(session, project, webhook_id)
    url = hook.url
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id))
    session.execute(delete(Webhook).where(Webhook.id == hook.id))
    audit.record(session, actor_id, "webhook.delete", "project", project.id,
                 {"webhook_id": webhook_id, "host": _host(url)})
    session.commit()
    session.expunge(hook)
    return url


def send_test(session: Session, project: Project, webhook_id: int, actor_id: int | None,
              now: datetime | None = None) -> WebhookDelivery:
    """Queue a ``ping`` to one active webhook, through the same path as every event (tried once).
    Commits; the delivery goes out after the commit."""
    hook = _locked_hook(session, project, webhook_id)
    if not hook.active:
        session.rollback()
        raise Conflict("this webhook is disabled; enable it to send it a test event")
    delivery = _queue(session, hook, PING, project.slug,
                      {"webhook_id": hook.id, "events": list(hook.events or [])}, now or utcnow())
    session.commit()
    return delivery


def _overdue_clause(now: datetime):
    due = now - OVERDUE_AFTER
    return (WebhookDelivery.status == "pending") & or_(
        WebhookDelivery.next_attempt_at <= due,
        WebhookDelivery.next_attempt_at.is_(None) & (WebhookDelivery.created_at <= due))


def is_overdue(delivery: WebhookDelivery, now: datetime | None = None) -> bool:
    due = (now or utcnow()) - OVERDUE_AFTER
    return delivery.status == "pending" and (delivery.next_attempt_at or delivery.created_at) <= due


def redeliver(session: Session, project: Project, delivery_id: int, actor_id: int | None,
              now: datetime | None = None) -> WebhookDelivery:
    """Send a failed (or overdue) delivery again: the same event with the same id, signed afresh. One
    that used up its attempts is tried once more. Commits; it goes out after the commit."""
    now = now or utcnow()
    begin_write(session)
    delivery = _delivery_in(session, project, delivery_id)
    hook = session.get(Webhook, delivery.webhook_id)
    if not hook.active:
        session.rollback()
        raise Conflict("this webhook is disabled; enable it to redeliver")
    moved = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery.id,
               (WebhookDelivery.status == "failed") | _overdue_clause(now))
        .values(status="pending", next_attempt_at=None)
    ).rowcount
    if not moved:
        session.rollback()
        raise Conflict("only a failed delivery, or one that is long overdue, can be sent again")
    audit.record(session, actor_id, "webhook.redeliver", "project", project.id,
                 {"webhook_id": hook.id, "event_id": delivery.event_id})
    _outbox(session).append(delivery)
    session.commit()
    session.refresh(delivery)
    return delivery


# --- the delivery log --------------------------------------------------------------------------------


def _in_project(project: Project):
    return select(Webhook.id).where(Webhook.project_id == project.id)


def count_deliveries(session: Session, project: Project) -> int:
    return session.scalar(select(func.count(WebhookDelivery.id))
                          .where(WebhookDelivery.webhook_id.in_(_in_project(project)))) or 0


def deliveries_of(session: Session, project: Project, limit: int, offset: int) -> list[WebhookDelivery]:
    """A page of the project's deliveries, newest first."""
    return list(session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.webhook_id.in_(_in_project(project)))
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(limit).offset(offset)))


def _delivery_in(session: Session, project: Project, delivery_id: int) -> WebhookDelivery:
    delivery = session.scalar(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id,
                                                            WebhookDelivery.webhook_id.in_(_in_project(project))))
    if delivery is None:
        session.rollback()
        raise NotFound("no such delivery in this project")
    return delivery


def get_delivery(session: Session, project: Project, delivery_id: int) -> WebhookDelivery:
    return _delivery_in(session, project, delivery_id)


# --- delivering (the job calls these) -------------------------------------------------------------


@dataclass(frozen=True)
class DeliverySettings:
    """How deliveries are made: the request's timeout, attempts per event, the waits between them."""

    timeout: float = TIMEOUT_SECONDS
    max_attempts: int = MAX_ATTEMPTS
    delays: tuple[float, ...] = RETRY_DELAYS

    @classmethod
    def from_config(cls, config: Mapping) -> DeliverySettings:
        delays = tuple(float(d) for d in config.get("WEBHOOK_RETRY_DELAYS", RETRY_DELAYS)) or (0.0,)
        return cls(timeout=float(config.get("WEBHOOK_TIMEOUT", TIMEOUT_SECONDS)),
                   max_attempts=max(1, int(config.get("WEBHOOK_MAX_ATTEMPTS", MAX_ATTEMPTS))), delays=delays)

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return max(0.0, self.delays[min(attempt, len(self.delays)) - 1])


@dataclass(frozen=True)
class Reply:
    """What one POST came to: the status code and the start of the body, or why there was none."""

    code: int | None
    body: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code < 300


@dataclass(frozen=True)
class Outcome:
    """What ``deliver`` did: ``delivered``, ``pending`` (tried again in ``retry_in`` seconds), ``failed``,
    or ``skipped`` (nothing to do: delivered already, not due, or gone)."""

    delivery_id: int
    status: str
    attempts: int = 0
    response_code: int | None = None
    retry_in: float | None = None


Transport = Callable[[str, bytes, dict, float], Reply]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Every redirect becomes an HTTPError: a signed body is posted where it was registered, nowhere else."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001 - urllib's signature
        return None


_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # "this host on this network": Linux connects it to itself
# Cloud metadata services that do not live at a link-local address: Alibaba Cloud's (in the shared
# 100.64/10 block, which also carries VPNs, so the block itself stays allowed), AWS's IPv6 one (a
# unique-local address), Azure's host endpoint (a public one) and Oracle Cloud's older one.
_METADATA = frozenset(map(ipaddress.ip_address, ("100.100.100.200", "fd00:ec2::254", "168.63.129.16",
                                                   "192.0.0.192")))
# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64's well-known and local-use ones):
# a gateway translates them to that IPv4 address.
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for, or None: mapped (``::ffff:a.b.c.d``), 6to4 (``2002::/16``),
    Teredo (its client) and NAT64 forms all reach it. (NAT64's block is also reserved, so those are refused
    whatever they carry; unwrapped, the refusal names the address they stand for.)"""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


class RefusedAddress(OSError):
    """The receiver's address is one no webhook is sent to (``refused_address``)."""


def refused_address(address: str) -> str | None:
    """Why no webhook goes to this IP address, or None. Link-local addresses (the cloud metadata services
    live there) and the metadata services that live elsewhere (``_METADATA``), multicast, unspecified and
    reserved ones are never a receiver; an IPv6 address that carries an IPv4 one (mapped, 6to4, Teredo,
    NAT64) counts as that address too. Private and loopback addresses are allowed (``url_problem``)."""
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and (inner := _embedded_ipv4(ip)) is not None:
        if problem := refused_address(str(inner)):
            return problem
        if ip.ipv4_mapped is not None:
            ip = inner
    if ip in _METADATA:
        return f"{ip} is a cloud metadata service, where webhooks are not sent"
    if ip.is_link_local:  # before loopback and private, which would let it through
        return f"{ip} is a link-local address, where webhooks are not sent"
    if ip.is_loopback:  # (::1 lies in a reserved block)
        return None
    for refused, name in ((ip.is_multicast, "a multicast"), (ip.is_unspecified or ip in _THIS_NETWORK, "an unspecified"),
                          (ip.is_reserved, "a reserved")):
        if refused:
            return f"{ip} is {name} address, where webhooks are not sent"
    return None


def _guarded_connection(address, timeout=socket.getdefaulttimeout(), source_address=None):  # noqa: B008 - as socket's
    """``socket.create_connection`` that connects only to addresses ``refused_address`` allows. The host
    name is resolved here, once, and the socket connects to the address that was checked, so a name that
    resolves elsewhere a moment later changes nothing."""
    host, port = address
    error: OSError | None = None
    for family, kind, proto, _name, where in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        problem = refused_address(where[0])
        if problem:
            error = RefusedAddress(problem)
            continue
        sock = socket.socket(family, kind, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # noqa: SLF001 - the sentinel socket itself uses
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(where)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error or OSError(f"{host} has no address")


class _GuardedHTTP(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _guarded_connection


class _GuardedHTTPS(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _guarded_connection


class _GuardedHTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):  # noqa: ANN001 - urllib's signature
        return self.do_open(_GuardedHTTP, req)


class _GuardedHTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):  # noqa: ANN001 - urllib's signature
        return self.do_open(_GuardedHTTPS, req, context=self._context)


# No proxy from the environment either: the receiver's own address is the one checked.
_opener = urllib.request.build_opener(_NoRedirects, urllib.request.ProxyHandler({}), _GuardedHTTPHandler,
                                      _GuardedHTTPSHandler)


def _clean(text: str, limit: int) -> str:
    """Text a log row can keep on both databases: no NUL, no unpaired surrogates, at most ``limit``."""
    return "".join("\ufffd" if c == "\x00" or "\ud800" <= c <= "\udfff" else c for c in text[:limit])


def _read_start(response, deadline: float) -> str:
    chunks, size = [], 0
    while size < _BODY_READ and time.monotonic() < deadline:
        chunk = response.read1(_BODY_READ - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return _clean(b"".join(chunks).decode("utf-8", errors="replace"), BODY_KEPT)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return str(exc.strerror)
    return exc.__class__.__name__


def post(url: str, body: bytes, headers: dict, timeout: float) -> Reply:
    """POST with the standard library: no redirect followed, ``timeout`` seconds for the whole exchange.
    A user and password in the address (``https://user:pass@host/…``) go as HTTP basic authentication."""
    problem = url_problem(url)  # checked when it was registered, and again before any request
    if problem:
        return Reply(None, error=f"not sent: the address {problem}")
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        credentials = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
        headers = {**headers, "Authorization": "Basic " + base64.b64encode(credentials).decode()}
        url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=timeout) as response:
            return Reply(response.status, _read_start(response, deadline))
    except urllib.error.HTTPError as exc:
        try:
            text = _read_start(exc, deadline)
        except Exception:  # noqa: BLE001 - an unreadable error body is just no body
            text = ""
        finally:
            exc.close()
        error = (f"HTTP {exc.code}: a redirect, which is not followed" if 300 <= exc.code < 400
                 else f"HTTP {exc.code}")
        return Reply(exc.code, text, error)
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, RefusedAddress):
            return Reply(None, error=f"not sent: {exc.reason}")
        if isinstance(exc.reason, TimeoutError):
            return Reply(None, error=f"no answer within {timeout:g} s")
        reason = _reason(exc.reason) if isinstance(exc.reason, BaseException) else str(exc.reason)
        return Reply(None, error=f"could not connect ({reason})")
    except TimeoutError:
        return Reply(None, error=f"no answer within {timeout:g} s")
    except (OSError, http.client.HTTPException, ValueError) as exc:
        return Reply(None, error=f"the connection failed ({_reason(exc)})")


def deliver(session: Session, delivery_id: int, settings: DeliverySettings | None = None,
            now: datetime | None = None, transport: Transport = post) -> Outcome:
    """Make one attempt at one delivery, if it is pending and due; record what came back. Commits (the
    claim, then the result); the POST happens outside any transaction. ``now`` is the attempt's time
    (the signature's timestamp and the next attempt's schedule). The caller schedules the retry when
    the outcome says ``pending`` (``retry_in``)."""
    settings = settings or DeliverySettings()
    at = now or utcnow()
    begin_write(session)
    row = session.execute(select(WebhookDelivery, Webhook).join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                          .where(WebhookDelivery.id == delivery_id)
                          .execution_options(populate_existing=True)).first()
    if row is None or row.WebhookDelivery.status != "pending":
        session.commit()
        return Outcome(delivery_id, "skipped")
    delivery, hook = row
    if not hook.active:
        session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id,
                                                      WebhookDelivery.status == "pending")
                        .values(status="failed", next_attempt_at=None,
                                error="the webhook was disabled before it was sent; enable it and redeliver"))
        session.commit()
        return Outcome(delivery_id, "failed", delivery.attempts)
    attempt = delivery.attempts + 1
    claimed = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
               WebhookDelivery.attempts == delivery.attempts,
               or_(WebhookDelivery.next_attempt_at.is_(None), WebhookDelivery.next_attempt_at <= at + EARLY))
        .values(attempts=attempt, next_attempt_at=at + timedelta(seconds=settings.timeout) + LEASE_MARGIN)
    ).rowcount
    session.commit()
    if not claimed:  # not due yet, or another worker has it
        return Outcome(delivery_id, "skipped", delivery.attempts)
    url, secret, event, payload = hook.url, hook.secret, delivery.event, delivery.payload
    body = encode(payload)
    reply = transport(url, body, headers_for(secret, delivery, body, at), settings.timeout)
    done_at = now or utcnow()
    limit = 1 if event == PING else settings.max_attempts
    if reply.ok:
        status, retry_in = "delivered", None
    elif attempt >= limit:
        status, retry_in = "failed", None
    else:
        status, retry_in = "pending", settings.delay_after(attempt)
    begin_write(session)
    recorded = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
               WebhookDelivery.attempts == attempt)
        .values(status=status, response_code=reply.code, response_body=reply.body,
                error=_clean(reply.error, ERROR_MAX) if reply.error else None,
                delivered_at=done_at if reply.ok else None,
                next_attempt_at=done_at + timedelta(seconds=retry_in) if retry_in is not None else None)
    ).rowcount
    session.commit()
    if not recorded:  # redelivered or deleted meanwhile: the newer state stands
        return Outcome(delivery_id, "skipped", attempt, reply.code)
    return Outcome(delivery_id, status, attempt, reply.code, retry_in)


def overdue(session: Session, now: datetime | None = None, limit: int = 100) -> list[int]:
    """Pending deliveries whose attempt should have happened a while ago (a lost dispatch, a retry lost
    with its process, a worker killed mid-request): the sweep delivers them. Reads only."""
    ids = list(session.scalars(select(WebhookDelivery.id).where(_overdue_clause(now or utcnow()))
                               .order_by(WebhookDelivery.id).limit(limit)))
    session.rollback()
    return ids

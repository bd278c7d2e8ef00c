"""Personal access tokens for the REST API.

A token is ``gw_<prefix>_<secret>``: the prefix (8 characters) is stored and shown in lists so a person
can tell tokens apart; the whole token is shown once, when it is made, and only its SHA-256 is kept (a
token is 190 random bits, so a fast hash is enough; nothing can be guessed from the stored digest).
A token acts as its user, never with more than the user's roles allow, and a read-only token only
reads. Revoked and expired tokens, and tokens of suspended accounts, authenticate nobody.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.bounds import has_visible, one_line_problem
from app.errors import NotFound, ValidationError
from app.models import ApiToken, User, utcnow

from . import audit

TOKEN_RE = re.compile(r"gw_([A-Za-z0-9]{8})_([A-Za-z0-9_-]{32,64})")
NAME_MAX = 100
MAX_TOKENS_PER_USER = 50
MAX_EXPIRY_DAYS = 3650
# last_used_at is written at most this often per token, so a busy client does not write on every call.
TOUCH_EVERY = timedelta(seconds=60)
_ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # the whole token, to show once


def create(session: Session, user: User, name: str, read_only: bool = False, expires_in_days: int | None = None,
           now: datetime | None = None) -> NewToken:
    """A new token for ``user``, shown once. Commits."""
    now = now or utcnow()
    name = (name or "").strip()
    errors: dict[str, str] = {}
    if not has_visible(name):
        errors["name"] = "is required (say what the token is for)"
    elif len(name) > NAME_MAX:
        errors["name"] = f"must be at most {NAME_MAX} characters"
    elif problem := one_line_problem(name):
        errors["name"] = problem
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        errors["expires_in_days"] = f"must be between 1 and {MAX_EXPIRY_DAYS} days, or empty for no expiry"
    live = session.scalar(select(func.count()).select_from(ApiToken)
                          .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None)))
    if live >= MAX_TOKENS_PER_USER:
        errors["name"] = f"you already have {MAX_TOKENS_PER_USER} tokens; revoke one first"
    if errors:
        raise ValidationError(errors)
    prefix = "".join(secrets.choice(_ALPHANUMERIC) for _ in range(8))
    secret = f"gw_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(user_id=user.id, name=name, prefix=prefix, token_hash=digest(secret), read_only=read_only,
                     expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None, created_at=now)
    session.add(token)
    session.flush()
    audit.record(session, user.id, "api_token.create", "api_token", token.id,
                 {"name": name, "prefix": prefix, "read_only": read_only})
    session.commit()
    return NewToken(token, secret)


def tokens_of(session: Session, user_id: int) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user_id)
                                .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(),
                                          ApiToken.id.desc())))


def revoke(session: Session, user_id: int, token_id: int, now: datetime | None = None) -> ApiToken:
    """Revoke one of the user's own tokens (revoking twice changes nothing). Commits."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user_id:
        raise NotFound("no such token")
    if token.revoked_at is None:
        token.revoked_at = now or utcnow()
        audit.record(session, user_id, "api_token.revoke", "api_token", token.id, {"prefix": token.prefix})
    session.commit()
    return token


def revoke_all(session: Session, user_id: int, actor_id: int | None, because: str,
               now: datetime | None = None) -> int:
    """Revoke every live token of ``user_id`` (when their access ends: a password change or reset, an
    admin ending their sessions, a suspension); audited once, with the count. Does not commit.
    Returns how many were revoked."""
    revoked = session.execute(
        update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now or utcnow()).execution_options(synchronize_session="fetch")
    ).rowcount
    if revoked:
        audit.record(session, actor_id, "api_token.revoke_all", "user", user_id, {"tokens": revoked, "because": because})
    return revoked


def is_live(token: ApiToken, now: datetime) -> bool:
    return token.revoked_at is None and (token.expires_at is None or token.expires_at > now)


def authenticate(session: Session, raw: str, now: datetime | None = None) -> tuple[User, ApiToken] | None:
    """The active user and live token behind ``raw``, or None. Records when it was last used (at most
    once a minute per token; committed on its own, before the request does anything else)."""
    now = now or utcnow()
    if not TOKEN_RE.fullmatch(raw or ""):
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(raw)))
    if token is None or not is_live(token, now):
        return None
    user = session.get(User, token.user_id)
    if user is None or not user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY:
        session.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now)
                        .execution_options(synchronize_session=False))
        session.commit()
        token.last_used_at = now
    return user, token

"""Accounts: creation, passwords, roles and authentication."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import bindparam, func, or_, select, true, update
from sqlalchemy.orm import Session, joinedload

from app.bounds import one_line_problem
from app.db import begin_write, folded
from app.errors import Conflict, Forbidden, NotFound, ValidationError
from app.models import ROLES, PasswordReset, User, UserRole, utcnow
from app.models.users import USER_STATUSES

from . import api_tokens, audit

_hasher = PasswordHasher()
# A hash of a random password, verified against when the e-mail is unknown, so timing does not
# reveal which addresses have accounts. Made on first use: hashing is deliberately
# slow, and a command that signs nobody in should not pay for it (`dummy_hash`).
_DUMMY_HASH: str | None = None
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EMAIL_MAX = 254
NAME_MAX = 200
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1000  # hashing is deliberately slow: no megabyte "passwords"
RESET_LINK_HOURS = 24


def dummy_hash() -> str:
    """The timing equaliser's hash, made on first call (the web app makes it when it starts)."""
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _hasher.hash("groundwork-timing-equaliser")
    return _DUMMY_HASH


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_problem(password: str) -> str | None:
    """Why a new password will not do, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"must be at most {MAX_PASSWORD_LENGTH} characters"
    return None


def validate_new_account(email: str, name: str, password: str, roles) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not EMAIL_RE.fullmatch(email) or len(email) > EMAIL_MAX or not email.isprintable():
        errors["email"] = "is not an e-mail address"  # invisible characters would make a look-alike
    elif not email.isascii():
        # A full-width "ａ" or a Cyrillic "е" reads as the address it imitates, on every page that lists
        # people: an internationalised domain goes in its ASCII form (xn--…).
        errors["email"] = ("must be written in ASCII letters (an internationalised domain in its xn-- form): "
                           "look-alike letters from other scripts are refused")
    elif email.split("@", 1)[1].endswith(".") or ".." in email:
        errors["email"] = "is not an e-mail address (a dot at the end, or two dots in a row)"
    if not name.strip():
        errors["name"] = "is required"
    elif len(name.strip()) > NAME_MAX:
        errors["name"] = f"must be at most {NAME_MAX} characters"
    elif problem := one_line_problem(name.strip()):
        errors["name"] = problem
    if problem := password_problem(password):
        errors["password"] = problem
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        errors["role"] = f"unknown role {', '.join(unknown)}; choose from {', '.join(ROLES)}"
    if not roles:
        errors["role"] = f"at least one role is required ({', '.join(ROLES)})"
    return errors


def create_user(
    session: Session, email: str, name: str, password: str, roles, actor_id: int | None = None
) -> User:
    """A new account with its roles, audited. Commits."""
    email = normalise_email(email)
    roles = sorted(set(roles))
    errors = validate_new_account(email, name, password, roles)
    if errors:
        raise ValidationError(errors)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"a user with e-mail {email} already exists")
    user = User(email=email, name=name.strip(), password_hash=hash_password(password))
    user.role_rows = [UserRole(role=r) for r in roles]
    session.add(user)
    session.flush()
    audit.record(session, actor_id, "user.create", "user", user.id, {"roles": roles})
    session.commit()
    return user


# The roles an admin gives and takes on the people page. Admin is given on the server only
# (``groundwork users create``): from the page, one admin could make a second account an admin and meet
# every rule that needs "another admin" alone. Applicant comes with an application (/apply).
PAGE_ROLES = ("trainer", "reviewer", "client")


def _shown_roles(values) -> str:
    """Roles someone asked for, as a message may repeat them: a few, each cut short (a message travels in
    the session cookie as a flash)."""
    values = list(values)
    shown = ", ".join(repr(v[:20]) if len(v) > 20 else v for v in values[:3])
    return shown + (f" and {len(values) - 3} more" if len(values) > 3 else "")


def invite_user(session: Session, email: str, name: str, roles, actor_id: int) -> User:
    """An account an admin makes on the people page, for someone who sets their own password with a
    one-time link (``issue_reset_link``): its password is random and never shown. Roles from
    ``PAGE_ROLES`` only. Commits."""
    roles = sorted(set(roles))
    outside = [r for r in roles if r not in PAGE_ROLES]
    if outside:
        raise ValidationError({"role": f"{_shown_roles(outside)} cannot be given here; choose from "
                                       f"{', '.join(PAGE_ROLES)} (an admin is made on the server)"})
    return create_user(session, email, name, secrets.token_urlsafe(32), roles, actor_id)


def set_page_roles(session: Session, user: User, roles, actor_id: int) -> User:
    """An admin gives or takes the ``PAGE_ROLES`` of someone else; their other roles (admin, applicant)
    stay as they are, and they keep at least one role. Takes effect on their next request (every
    request reads the roles). Audited. Commits."""
    wanted = set(roles)
    outside = sorted(wanted - set(PAGE_ROLES))
    if outside:
        raise ValidationError({"role": f"{_shown_roles(outside)} cannot be given here; choose from {', '.join(PAGE_ROLES)}"})
    if user.id == actor_id:
        raise Forbidden("nobody changes their own roles; another admin does")
    # Two admins at once: the second reads the roles the first left (the row's lock on PostgreSQL,
    # SQLite's write lock), so neither adds a role row the other added.
    begin_write(session)
    session.execute(select(User.id).where(User.id == user.id).with_for_update())
    session.refresh(user, ["role_rows"])
    before = sorted(user.roles)
    after = sorted({r for r in before if r not in PAGE_ROLES} | wanted)
    if not after:
        raise ValidationError({"role": "an account keeps at least one role (suspend it to end its access)"})
    if after != before:
        user.role_rows = [row for row in user.role_rows if row.role in after] + [
            UserRole(role=r) for r in after if r not in before]
        audit.record(session, actor_id, "user.roles", "user", user.id, {"from": before, "to": after})
    session.commit()
    return user


def find_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalise_email(email)))


def find_by_id(session: Session, user_id: int | None) -> User | None:
    return session.get(User, user_id) if user_id is not None else None


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def names_by_id(session: Session, user_ids) -> dict[int, str]:
    """{id: name} of the given users (who created what, on a list)."""
    ids = {i for i in user_ids if i is not None}
    if not ids:
        return {}
    return dict(session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())


SEARCH_MAX = 100


def _matching(query: str):
    """Accounts whose name or e-mail holds ``query`` (any case), or every account for an empty one."""
    text = "".join(c for c in (query or "")[:SEARCH_MAX] if c.isprintable()).strip().lower()  # no NUL reaches SQL
    if not text:
        return true()
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return or_(folded(User.name).like(pattern, escape="\\"), folded(User.email).like(pattern, escape="\\"))


def count_users(session: Session, query: str = "") -> int:
    return session.scalar(select(func.count(User.id)).where(_matching(query)))


def list_users(session: Session, limit: int, offset: int = 0, query: str = "") -> list[User]:
    """One page of the accounts whose name or e-mail holds ``query`` (all of them for none), by name."""
    return list(session.scalars(select(User).where(_matching(query)).order_by(User.name, User.id)
                                .limit(limit).offset(offset)))


# Built once: a ``session.get`` with options makes a new statement (and its cache key) per request.
_SESSION_USER = select(User).options(joinedload(User.role_rows)).where(User.id == bindparam("user_id"))


def session_user(session: Session, user_id: int, version: int) -> User | None:
    """The user a session cookie names, while the account is active and the cookie carries the
    account's current session version (sign-out, a password change or an admin ends older ones).
    Read fresh on every request, with the roles in the same statement (every request pays for this
    one, so it is one round trip): a suspension or a revoked role holds from the next request on."""
    user = session.execute(_SESSION_USER, {"user_id": user_id}).unique().scalar_one_or_none()
    if user is None or not session_holds(user.status, user.session_version, version):
        return None
    return user


def session_holds(status: str, session_version: int, cookie_version: int) -> bool:
    """Whether a session cookie carrying ``cookie_version`` still signs in an account with this status
    and current session version (also checked inside a heartbeat's own locking read)."""
    return status == "active" and session_version == cookie_version


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The user when the e-mail and password match an active account, otherwise None. A match
    records the sign-in (and a stronger hash when the parameters changed) and commits."""
    email = normalise_email(email)
    if len(email) > EMAIL_MAX or len(password or "") > MAX_PASSWORD_LENGTH:
        return None
    user = find_by_email(session, email)
    # The hash takes tens of milliseconds: end the reading transaction first, so a sign-in never holds
    # a lock (SQLite's write lock, for a POST) while it hashes. Nothing is expired: the user stays read.
    session.commit()
    if user is None:
        try:
            _hasher.verify(dummy_hash(), password or "x")
        except VerificationError:
            pass
        return None
    if not check_password(user, password) or not user.is_active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    session.commit()
    return user


# --- sessions ------------------------------------------------------------------------------------
# A session cookie carries the user's session version (``User.get_id``); bumping it ends every
# session signed in before. The access layer compares the two on every request.


def end_sessions(session: Session, user: User) -> None:
    """Every cookie issued to ``user`` so far stops working. Does not commit."""
    session.execute(update(User).where(User.id == user.id).values(session_version=User.session_version + 1))
    session.refresh(user, ["session_version"])


def end_access(session: Session, user: User, actor_id: int | None, because: str) -> None:
    """Every cookie issued to ``user`` so far stops working, and so does every API token they made
    (a token made from a copied cookie must not outlive what ended the cookie) and every reset link
    not used yet (one that leaked would otherwise undo a password change, or outlive a suspension and
    work again once the account is reactivated). Does not commit."""
    end_sessions(session, user)
    api_tokens.revoke_all(session, user.id, actor_id, because)
    session.execute(update(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
                    .values(used_at=utcnow()))


def sign_out(session: Session, user: User) -> None:
    """The person signs out: this cookie, every copy of it and their other sessions end. Commits."""
    end_sessions(session, user)
    session.commit()


def sign_out_everywhere(session: Session, user: User, actor_id: int | None) -> None:
    """An admin ends every session and API token of ``user``, audited. Commits."""
    end_access(session, user, actor_id, "signed out everywhere")
    audit.record(session, actor_id, "user.sign_out_everywhere", "user", user.id)
    session.commit()


def set_status(session: Session, user: User, status: str, actor_id: int | None) -> User:
    """Suspend (which also ends their sessions and API tokens) or reactivate an account. Commits."""
    if status not in USER_STATUSES:
        raise ValidationError({"status": f"must be one of {', '.join(USER_STATUSES)}"})
    if user.id == actor_id and status != "active":
        raise ValidationError({"status": "you cannot suspend your own account"})
    if user.status != status:
        audit.record(session, actor_id, "user.status", "user", user.id, {"from": user.status, "to": status})
        user.status = status
        if status != "active":
            end_access(session, user, actor_id, f"account {status}")
    session.commit()
    return user


def change_password(session: Session, user: User, current: str, new: str, confirm: str) -> User:
    """The signed-in person changes their password; every other session of theirs and every API
    token they made end. Commits."""
    errors = {}
    # The new password's own checks first, on what was typed: none of them says whether ``current`` is
    # right, so the form cannot be used to test guesses of it without changing it (and the caller
    # counts every wrong one, as a failed sign-in).
    if problem := password_problem(new or ""):
        errors["new"] = problem
    elif new != confirm:
        errors["confirm"] = "does not match the new password"
    elif new == current:
        errors["new"] = "is the same as the current password"
    elif not check_password(user, current or ""):
        errors["current"] = "is not your current password"
    if errors:
        raise ValidationError(errors)
    user.password_hash = hash_password(new)
    end_access(session, user, user.id, "password changed")
    audit.record(session, user.id, "user.password_change", "user", user.id)
    session.commit()
    return user


ADMIN_RESET_ON_SERVER = ("an admin's one-time password link is made on the server: "
                         "groundwork users reset-link EMAIL")


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_reset_link(session: Session, user: User, actor_id: int | None, now: datetime | None = None) -> str:
    """A one-time password reset token for ``user``, valid for a day; earlier unused ones stop working.
    Returns the token (shown once to the admin, who passes it on); only its hash is stored. Commits.

    An admin's account gets one only from the command line (``actor_id`` None): from the people page,
    one admin could take over another's account, and with it the rules that need "another admin"."""
    if actor_id is not None and user.has_role("admin"):
        raise Forbidden(ADMIN_RESET_ON_SERVER)
    now = now or utcnow()
    session.execute(update(PasswordReset).where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
                    .values(used_at=now))
    token = secrets.token_urlsafe(32)
    session.add(PasswordReset(user_id=user.id, token_hash=_token_hash(token), created_by=actor_id, created_at=now,
                              expires_at=now + timedelta(hours=RESET_LINK_HOURS)))
    audit.record(session, actor_id, "user.reset_link", "user", user.id)
    session.commit()
    return token


TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,100}$")


def reset_for(session: Session, token: str, now: datetime | None = None) -> tuple[PasswordReset, User]:
    """The unused, unexpired reset a token opens, or NotFound (the same for every kind of wrong)."""
    now = now or utcnow()
    reset = session.scalar(select(PasswordReset).where(PasswordReset.token_hash == _token_hash(token))) \
        if TOKEN_RE.fullmatch(token or "") else None
    if reset is None or reset.used_at is not None or reset.expires_at <= now:
        raise NotFound("this reset link is not valid any more")
    user = session.get(User, reset.user_id)
    if user is None or not user.is_active:
        raise NotFound("this reset link is not valid any more")
    return reset, user


def reset_password(session: Session, token: str, new: str, confirm: str, now: datetime | None = None) -> User:
    """Set a new password through a one-time link: the link is spent, every session and API token
    ends. Commits."""
    now = now or utcnow()
    reset, user = reset_for(session, token, now)
    if problem := password_problem(new or ""):
        raise ValidationError({"new": problem})
    if new != confirm:
        raise ValidationError({"confirm": "does not match the new password"})
    spent = session.execute(update(PasswordReset).where(PasswordReset.id == reset.id, PasswordReset.used_at.is_(None))
                            .values(used_at=now)).rowcount
    if spent != 1:
        raise NotFound("this reset link is not valid any more")
    user.password_hash = hash_password(new)
    end_access(session, user, None, "password reset")
    audit.record(session, None, "user.password_reset", "user", user.id, {"reset": reset.id})
    session.commit()
    return user

"""Accounts: creation, passwords, roles and authentication."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ROLES, User, UserRole, utcnow

from . import audit
from .errors import Conflict, ValidationError

_hasher = PasswordHasher()
# A hash of a random password, verified against when the e-mail is unknown, so timing does not
# reveal which addresses have accounts.
_DUMMY_HASH = _hasher.hash("groundwork-timing-equaliser")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD_LENGTH = 10


def normalise_email(email: str) -> str:
    return (email or "").strip().lower()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def validate_new_account(email: str, name: str, password: str, roles) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not EMAIL_RE.match(email):
        errors["email"] = "is not an e-mail address"
    if not name.strip():
        errors["name"] = "is required"
    if len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = f"must be at least {MIN_PASSWORD_LENGTH} characters"
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        errors["role"] = f"unknown role {', '.join(unknown)}; choose from {', '.join(ROLES)}"
    if not roles:
        errors["role"] = f"at least one role is required ({', '.join(ROLES)})"
    return errors


def create_user(
    session: Session, email: str, name: str, password: str, roles, actor_id: int | None = None
) -> User:
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
    return user


def find_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalise_email(email)))


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The user when the e-mail and password match an active account, otherwise None."""
    user = find_by_email(session, email)
    if user is None:
        try:
            _hasher.verify(_DUMMY_HASH, password or "x")
        except VerificationError:
            pass
        return None
    if not check_password(user, password) or not user.is_active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return user

"""Seed a database for a load run: one active work project with label and rating questions, its items,
N trainers, a few reviewers and one admin, all sharing one password hashed once.

Bulk Core inserts for the people (thousands in a second or two); the project goes through the service
so its questions are checked like any other. Returns what the load file needs to know (slug, e-mails).
"""

from __future__ import annotations

import argparse
import json

from sqlalchemy import insert, select

from app import create_app
from app.db import get_db
from app.migrate import upgrade
from app.models import Item, ProjectMember, User, UserRole
from app.services import projects as project_service
from app.services import users as user_service

PASSWORD = "load-test-password-1"
SLUG = "load"
QUESTIONS = [
    {"key": "label", "type": "label", "title": "Is the response helpful?", "options": {"labels": ["good", "bad"]}},
    {"key": "score", "type": "rating", "title": "How good is it?", "options": {"min": 1, "max": 5}},
]
ANSWER_FORM = {"answer.label": ("good", "bad"), "answer.score": ("1", "2", "3", "4", "5")}


def trainer_email(n: int) -> str:
    return f"load-trainer-{n}@example.test"


def reviewer_email(n: int) -> str:
    return f"load-reviewer-{n}@example.test"


ADMIN_EMAIL = "load-admin@example.test"


def seed(database_url: str, trainers: int, reviewers: int = 3, items: int | None = None, overlap: int = 2,
         lease_minutes: int = 2, instance_path: str | None = None, migrate: bool = True) -> dict:
    """Migrate the database to head (unless ``migrate`` is false: the schema is there) and fill it;
    returns the plan the load file reads (as JSON)."""
    config = {"DATABASE_URL": database_url, "SECRET_KEY": "load", "REDIS_URL": None}
    if instance_path:
        config["INSTANCE_PATH"] = instance_path
    app = create_app(config)
    items = items if items is not None else max(2000, trainers * 40)
    with app.app_context():
        engine = get_db().engine
        if migrate:
            upgrade(engine)
        session = get_db().session_factory()
        try:
            project = project_service.create_project(
                session, name="Load test", slug=SLUG, status="active", overlap=overlap, lease_minutes=lease_minutes,
                hourly_rate_cents=2400, review_rate=0.2, questions=QUESTIONS,
            )  # commits
            password_hash = user_service.hash_password(PASSWORD)  # once, with the production parameters
            people = ([(trainer_email(n), "trainer") for n in range(trainers)]
                      + [(reviewer_email(n), "reviewer") for n in range(reviewers)] + [(ADMIN_EMAIL, "admin")])
            for start in range(0, len(people), 5000):
                chunk = people[start:start + 5000]
                session.execute(insert(User), [{"email": email, "name": email.split("@")[0].replace("-", " ").title(),
                                                "password_hash": password_hash, "status": "active"}
                                               for email, _ in chunk])
                ids = dict(session.execute(select(User.email, User.id).where(User.email.in_([e for e, _ in chunk]))).all())
                session.execute(insert(UserRole), [{"user_id": ids[email], "role": role} for email, role in chunk])
                members = [{"project_id": project.id, "user_id": ids[email], "role": role, "status": "active"}
                           for email, role in chunk if role in ("trainer", "reviewer")]
                if members:
                    session.execute(insert(ProjectMember), members)
            rows = [{
                "project_id": project.id, "external_id": f"load-{n}",
                "context": [{"role": "user", "content": f"Question {n}: how do tides work, in two sentences?"}],
                "responses": [{"id": "r1", "text": f"Answer {n}: the moon's gravity pulls the oceans."}],
                "meta": {}, "is_gold": False, "priority": 0, "done_count": 0, "active_count": 0, "is_open": True,
                "content_hash": f"load-{n}", "single_turn": True,
            } for n in range(items)]
            for start in range(0, len(rows), 10_000):
                session.execute(insert(Item), rows[start:start + 10_000])
            session.commit()
        finally:
            session.close()
        engine.dispose()
    return {"slug": SLUG, "password": PASSWORD, "trainers": [trainer_email(n) for n in range(trainers)],
            "reviewers": [reviewer_email(n) for n in range(reviewers)], "admin": ADMIN_EMAIL,
            "answers": {k: list(v) for k, v in ANSWER_FORM.items()}, "items": items, "overlap": overlap,
            "lease_minutes": lease_minutes}


def main() -> None:
    parser = argparse.ArgumentParser(description="Seed a database for a load run (migrates it to head first).")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--trainers", type=int, default=100)
    parser.add_argument("--reviewers", type=int, default=3)
    parser.add_argument("--items", type=int)
    parser.add_argument("--overlap", type=int, default=2)
    parser.add_argument("--lease-minutes", type=int, default=2)
    parser.add_argument("--plan", required=True, help="where to write the plan (JSON) the load file reads")
    args = parser.parse_args()
    plan = seed(args.database_url, args.trainers, args.reviewers, args.items, args.overlap, args.lease_minutes)
    with open(args.plan, "w") as f:
        json.dump(plan, f)
    print(f"seeded {args.trainers} trainers, {args.reviewers} reviewers, 1 admin, {plan['items']} items")


if __name__ == "__main__":
    main()

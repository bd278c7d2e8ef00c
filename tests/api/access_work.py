"""Access rows: the trainer's loop, reviews and pay.

The trainer's loop is for trainer members of the URL's project: a trainer of another project (the
outsider) finds no such project; other roles, admins included, are refused by role. Bodies reach each
service's own checks, so a caller who may act gets the service's answer (an empty answer set or skip
reason is a 422 from the queue), and one who may not gets 403 or 404 before anything is read.
"""

from __future__ import annotations

from .access_projects import row

TRAINER_LOOP = dict(trainer=200, outsider=404, admin=403)

ROWS = {
    ("POST", "api.next_task"): row(**TRAINER_LOOP),
    ("POST", "api.heartbeat"): row(**TRAINER_LOOP),
    ("POST", "api.submit_task"): row(**{**TRAINER_LOOP, "trainer": 422}),  # no answer to the required question
    ("POST", "api.skip_task"): row(**{**TRAINER_LOOP, "trainer": 422}),  # no reason given
    # Reviewer members and admins; a reviewer of nothing finds no such project.
    ("GET", "api.next_review"): row(reviewer=200, stranger=404),
    ("GET", "api.list_reviews"): row(reviewer=200, stranger=404),
    ("POST", "api.give_verdict"): row(reviewer=201, stranger=404, admin=201, admin_ro=403),
    # A trainer's own pay (every trainer has some, maybe none yet); the payroll is the admins'.
    ("GET", "api.my_timesheets"): row(trainer=200, outsider=200, admin=403),
    ("GET", "api.payroll"): row(),
}

BODIES = {
    ("POST", "api.submit_task"): {"answers": {}},
    ("POST", "api.skip_task"): {"reason": ""},
    ("POST", "api.give_verdict"): {"verdict": "approve"},
}

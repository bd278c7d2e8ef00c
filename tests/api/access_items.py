"""Access rows: items, imports and members.

Items and imports are for admins and the project's clients (trainers, reviewers and applicants hold
neither role); members are the admins'. Writes carry an empty JSON object, so a caller who may act
gets the checks' answer: an object is not a batch of items (422), a member needs an e-mail or a status.
"""

from __future__ import annotations

from .access_projects import row

ROWS = {
    ("POST", "api.push_items"): row(client=422, admin=422, admin_ro=403),
    ("GET", "api.list_items"): row(client=200),
    ("GET", "api.get_import"): row(client=200),  # world.project's import
    ("GET", "api.list_members"): row(),  # the people list: never a client's
    ("POST", "api.add_member"): row(admin=422, admin_ro=403),
    ("PATCH", "api.update_member"): row(admin=422, admin_ro=403),  # the trainer's membership of world.project
    ("PUT", "api.set_member_work"): row(admin=422, admin_ro=403),  # the same membership; an empty body
}

"""Access rows: the document, the reference page and projects."""

from __future__ import annotations


def row(anonymous=401, applicant=403, trainer=403, outsider=403, reviewer=403, stranger=403, client=403, admin=200,
        admin_ro=None):
    """One row; a read-only admin token gets what the admin gets unless said (writes: 403)."""
    return {"anonymous": anonymous, "applicant": applicant, "trainer": trainer, "outsider": outsider,
            "reviewer": reviewer, "stranger": stranger, "client": client, "admin": admin,
            "admin_ro": admin if admin_ro is None else admin_ro}


def everyone(status):
    return row(status, status, status, status, status, status, status, status)


ROWS = {
    ("GET", "api.openapi"): everyone(200),
    ("GET", "api.reference"): everyone(200),
    ("GET", "api.list_projects"): row(applicant=200, trainer=200, outsider=200, reviewer=200, stranger=200,
                                      client=200),
    ("POST", "api.create_project"): row(admin=422, admin_ro=403),  # an empty body: name and questions missing
    ("GET", "api.get_project"): row(applicant=404, trainer=200, outsider=404, reviewer=200, stranger=404,
                                    client=200),
    ("PATCH", "api.update_project"): row(admin=200, admin_ro=403),  # an empty change changes nothing
}

"""Access rows: dataset versions — admins and the project's clients build, list, follow and download
them (world.project's finished raw version and its data file); nobody else learns they exist."""

from __future__ import annotations

from .access_projects import row

ROWS = {
    ("POST", "api.create_export"): row(client=422, admin=422, admin_ro=403),  # an empty body names no format
    ("GET", "api.list_exports"): row(client=200),
    ("GET", "api.get_export"): row(client=200),
    ("GET", "api.download_export_file"): row(client=200),
}

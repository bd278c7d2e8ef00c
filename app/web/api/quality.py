"""API: quality (not written yet)."""

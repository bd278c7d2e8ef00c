"""API: items (not written yet)."""

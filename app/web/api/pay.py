"""API: pay (not written yet)."""

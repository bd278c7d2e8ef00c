"""API: work (not written yet)."""

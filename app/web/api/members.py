"""API: members (not written yet)."""

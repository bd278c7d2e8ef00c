"""API: exports (not written yet)."""

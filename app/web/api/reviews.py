"""API: reviews (not written yet)."""

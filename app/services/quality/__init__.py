"""Quality maths: pure functions on plain Python data (no ORM imports here)."""

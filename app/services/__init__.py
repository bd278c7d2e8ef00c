"""The domain. Functions take a Session and plain values; none of them knows about HTTP."""

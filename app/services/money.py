"""Money is integer cents, never float. Parsing and formatting live here, and only here."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation


class AmountError(ValueError):
    pass


def parse_amount(text: str) -> int:
    """'37.50' -> 3750. At most two decimals; no negative amounts (adjustments say so explicitly)."""
    raw = (text or "").strip().replace(",", "")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise AmountError("must be an amount like 37.50") from None
    if not value.is_finite() or value < 0:
        raise AmountError("must be an amount of 0 or more, like 37.50")
    if value != value.quantize(Decimal("0.01")):
        raise AmountError("may have at most two decimals")
    return int(value * 100)


def format_cents(cents: int | None) -> str:
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(int(cents)), 100)
    return f"{sign}{whole:,}.{part:02d}"


def cents_for(seconds: int, rate_cents_per_hour: int) -> int:
    """Pay for a duration, rounded half-even once, to the cent."""
    exact = Decimal(seconds) * Decimal(rate_cents_per_hour) / Decimal(3600)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))

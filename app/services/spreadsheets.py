"""CSV files people open in a spreadsheet: text that would run as a formula does not.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to Excel,
LibreOffice and Google Sheets (OWASP "CSV injection"); trainers' text and names can start that way.
Such a cell gets a leading apostrophe, which spreadsheets show as text. Plain numbers ("-2.50") are
left alone. Used for the payroll CSV; dataset files keep every text exactly as written.
"""

from __future__ import annotations

import re

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[-+]?[0-9]+(\.[0-9]+)?")


def safe_cell(value):
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def spreadsheet_safe(frame):
    """The frame with every text cell made safe (a new frame; numbers and other types unchanged)."""
    frame = frame.copy()
    for name in frame.columns:
        if frame[name].dtype == object or str(frame[name].dtype) == "string":
            frame[name] = frame[name].map(safe_cell, na_action="ignore")
    return frame

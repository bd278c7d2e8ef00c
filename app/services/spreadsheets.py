"""CSV files people open in a spreadsheet: text that would run as a formula does not.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is a formula to Excel,
LibreOffice and Google Sheets (OWASP "CSV injection"); trainers' text and names can start that way.
Such a cell gets a leading apostrophe, which spreadsheets show as text. Plain numbers ("-2.50") are
left alone. Used for the payroll CSV; dataset files keep every text exactly as written.

Every CSV the app writes (payroll, dataset versions) comes from ``csv_text``: rows end with CRLF, as
RFC 4180 has it, which is also what makes the writer quote a cell holding a lone carriage return (it
quotes the line end's characters only; with a bare newline, a CR in a name or an answer ended the
row early for every reader and started a forged one).
"""

from __future__ import annotations

import re

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[-+]?[0-9]+(\.[0-9]+)?")


CSV_LINE_END = "\r\n"


def csv_text(frame, header: bool = True) -> str:
    """The frame as CSV text: no index, CRLF line ends, any cell with a CR or LF quoted."""
    return frame.to_csv(index=False, header=header, lineterminator=CSV_LINE_END)


def formula_cells(frame) -> int:
    """How many text cells of the frame a spreadsheet would read as a formula (``safe_cell`` would change)."""
    return sum(1 for name in _text_columns(frame) for v in frame[name] if isinstance(v, str) and safe_cell(v) is not v)


def safe_cell(value):
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def _text_columns(frame) -> list:
    """The columns that may hold text: object columns and pandas' string dtypes (``str`` by default since
    pandas 3, ``string``), whatever their name."""
    from pandas.api.types import is_object_dtype, is_string_dtype

    return [name for name in frame.columns if is_object_dtype(frame[name].dtype) or is_string_dtype(frame[name].dtype)]


def spreadsheet_safe(frame):
    """The frame with every text cell made safe (a new frame; numbers and other types unchanged)."""
    frame = frame.copy()
    for name in _text_columns(frame):
        frame[name] = frame[name].map(safe_cell, na_action="ignore")
    return frame

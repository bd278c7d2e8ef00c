"""Where export lines go: JSONL (orjson, buffered, hashed while written), CSV and Parquet (pandas).

A sink writes into the export's temporary folder; nothing here knows about final paths. Each
``close()`` returns the file's facts for the manifest: rows, bytes and sha256.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from ..spreadsheets import csv_text, formula_cells

# Lines per chunk handed to the writer thread: big chunks mean few GIL hand-overs between threads.
BUFFER_LINES = 512
TABLE_CHUNK = 50_000
# A version's own files (not the parts another process writes) ask for write-back every this many bytes.
WRITEBACK_BYTES = 16 << 20
_ADVISE = getattr(os, "posix_fadvise", None)  # not on every platform
_LINE_SEPARATORS = ("\u2028".encode(), "\u2029".encode())
_SEPARATOR = re.compile(b"\xe2\x80[\xa8\xa9]")  # either of them, encoded


@dataclass
class FileInfo:
    name: str
    rows: int
    bytes: int
    sha256: str
    role: str = "data"  # data | meta | items | annotators
    formula_cells: int = 0  # a CSV's text cells a spreadsheet would run as formulas (not in the manifest's list)

    def as_dict(self) -> dict:
        return {"name": self.name, "rows": self.rows, "bytes": self.bytes, "sha256": self.sha256, "role": self.role}


def _fsync_close(handle) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _BackgroundWriter:
    """Writes and hashes chunks on a thread: both release the GIL, so they overlap the encoding."""

    def __init__(self, handle, digest):
        self._queue: queue.Queue = queue.Queue(maxsize=8)
        self._handle, self._digest = handle, digest
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="export-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._handle.write(chunk)
                    if self._digest is not None:
                        self._digest.update(chunk)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                    self._error = exc

    def put(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(chunk)

    def finish(self, raise_error: bool = True) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and raise_error:
            raise self._error


class _InlineWriter:
    def __init__(self, handle, digest):
        self._handle, self._digest = handle, digest

    def put(self, chunk: bytes) -> None:
        self._handle.write(chunk)
        if self._digest is not None:
            self._digest.update(chunk)

    def finish(self, raise_error: bool = True) -> None:
        pass


class JsonlSink:
    """One JSON object per line, every key on every line (a null stays null: the card's features type it)."""

    def __init__(self, path: Path, hashed: bool = True, threaded: bool = True):
        self.path = path
        self._handle = open(path, "wb")  # noqa: SIM115 - closed in close()
        # A part another process appends is hashed there, in order; hashing it here would be waste.
        self._digest = hashlib.sha256() if hashed else None
        # The writer thread pays off when a core is free; when every core already runs a part, it
        # only adds hand-overs of the GIL, so parallel exports write inline.
        self._writer = _BackgroundWriter(self._handle, self._digest) if threaded else _InlineWriter(self._handle, self._digest)
        self._inline = not threaded
        self._buffer: list[bytes] = []
        self.rows = 0
        self.bytes = 0
        self._advised = 0

    def write(self, line: dict) -> None:
        self._buffer.append(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        if len(self._buffer) >= BUFFER_LINES:
            self._flush()

    def write_many(self, lines: list[dict]) -> None:
        dumps, option = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        self._buffer.extend([dumps(line, option=option) for line in lines])
        if len(self._buffer) >= BUFFER_LINES:
            self._flush()

    def write_line(self, line: bytes) -> None:
        """One line already encoded, ending with a newline."""
        self._buffer.append(line)
        if len(self._buffer) >= BUFFER_LINES:
            self._flush()

    def write_encoded(self, lines: list[bytes]) -> None:
        """Lines already encoded, each ending with a newline."""
        self._buffer.extend(lines)
        if len(self._buffer) >= BUFFER_LINES:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            chunk = b"".join(self._buffer)
            # Both separators start with byte E2: one memchr pass rules them out for most chunks (a
            # three-byte search runs at a tenth of that speed, and ran over every byte written).
            if b"\xe2" in chunk and _SEPARATOR.search(chunk) is not None:
                # Valid JSON, but str.splitlines() and some JavaScript readers break lines there: escape
                # them (they only occur inside strings), so line n is always row n.
                chunk = chunk.replace(_LINE_SEPARATORS[0], b"\\u2028").replace(_LINE_SEPARATORS[1], b"\\u2029")
            self._writer.put(chunk)
            self.rows += len(self._buffer)
            self.bytes += len(chunk)
            self._buffer = []
            if self._inline and self._digest is not None and self.bytes - self._advised >= WRITEBACK_BYTES:
                self._write_back()

    def finish(self) -> None:
        """Everything buffered is on its way to disk and hashed (the writer thread has stopped)."""
        if self._writer is not None:
            self._flush()
            self._writer.finish()
            self._writer = None

    def append_file(self, path: Path, rows: int) -> None:
        """Append another part's lines (written by another process) as if written here: one pass
        that hashes each block and writes it (the hash needs every byte read anyway)."""
        self.follow(path, lambda: True)
        self.account(rows)

    def follow(self, path: Path, finished, pause: float = 0.005) -> int:
        """Copy a part file into this one while another process is still writing it, until
        ``finished()`` says the writer closed it. Returns the bytes copied."""
        return follow_parts([(self, path)], finished, pause)

    def _take(self, block: bytes) -> None:
        self._digest.update(block)
        self._handle.write(block)
        self.bytes += len(block)
        if self.bytes - self._advised >= WRITEBACK_BYTES:
            self._write_back()

    def _write_back(self) -> None:
        """Have the kernel start writing out what this file gained since the last call, so the fsync
        at close finds little left to write (on Linux, POSIX_FADV_DONTNEED starts the write-back of
        a range's dirty pages; the pages are not read again here). A version of 543 MB: the fsync
        0.17 s → 0.01 s."""
        self._handle.flush()  # a full disk raises here, as on any write
        if _ADVISE is not None:
            try:
                _ADVISE(self._handle.fileno(), self._advised, self.bytes - self._advised, os.POSIX_FADV_DONTNEED)
            except OSError:  # only advice: a file system that declines it loses nothing
                pass
        self._advised = self.bytes

    def account(self, rows: int) -> None:
        """Count a followed part's lines."""
        self.rows += rows

    def abandon(self) -> None:
        """Stop without finishing (the export failed or starts again); the caller removes the file."""
        if self._writer is not None:
            self._buffer = []
            self._writer.finish(raise_error=False)
            self._writer = None
        self._handle.close()

    def close(self, sync: bool = True) -> FileInfo:
        self.finish()
        if sync:
            _fsync_close(self._handle)
        else:  # a part another process appends: it is read once, right away, never kept
            self._handle.close()
        return FileInfo(self.path.name, self.rows, self.bytes, self._digest.hexdigest() if self._digest else "")


def follow_parts(targets: list[tuple[JsonlSink, Path]], finished, pause: float = 0.005) -> int:
    """Copy part files into their sinks (each after the sink's own lines) while another process is
    still writing them, until ``finished()`` says the writer closed them all. sha256 is sequential,
    so this is how the merge overlaps the other process's work: every file at once, so none is left
    to copy after the writer ends. Returns the bytes copied."""
    for sink, _path in targets:
        sink.finish()
    sources: dict[int, object] = {}
    pending = list(range(len(targets)))
    copied = 0
    try:
        while pending:
            done = finished()  # asked before reading: once true, an empty read is the end of the file
            moved = False
            for n in list(pending):
                sink, path = targets[n]
                source = sources.get(n)
                if source is None:
                    if not path.exists():
                        if done:  # the writer finished without this file
                            pending.remove(n)
                        continue
                    source = sources[n] = open(path, "rb")  # noqa: SIM115 - closed below
                block = source.read(1 << 20)
                if block:
                    sink._take(block)
                    copied += len(block)
                    moved = True
                elif done:
                    pending.remove(n)
            if not moved and pending and not done:
                time.sleep(pause)
    finally:
        for source in sources.values():
            source.close()
    return copied


class _TableSink:
    """Rows gathered in chunks into a pandas DataFrame with fixed column types."""

    def __init__(self, path: Path, columns: dict[str, str]):
        self.path = path
        self.columns = columns  # name -> "string" | "int" | "float"
        self._rows: list[dict] = []
        self.rows = 0

    def write(self, line: dict) -> None:
        self._rows.append(line)
        if len(self._rows) >= TABLE_CHUNK:
            self._flush()

    def write_many(self, lines) -> None:
        for line in lines:
            self.write(line)

    def _frame(self):
        import pandas as pd

        dtypes = {"string": "string", "int": "Int64", "float": "Float64"}
        frame = pd.DataFrame(self._rows, columns=list(self.columns))
        return frame.astype({name: dtypes[kind] for name, kind in self.columns.items()})

    def _flush(self) -> None:
        if self._rows or self.rows == 0:
            self._write_frame(self._frame(), first=self.rows == 0)
            self.rows += len(self._rows)
            self._rows = []


class CsvSink(_TableSink):
    def __init__(self, path: Path, columns: dict[str, str]):
        super().__init__(path, columns)
        self._handle = open(path, "wb")  # noqa: SIM115 - closed in close()
        self._digest = hashlib.sha256()
        self.bytes = 0
        self.formula_cells = 0

    def _write_frame(self, frame, first: bool) -> None:
        # Dataset files keep every text exactly (a markdown list starts with "- "); only the payroll
        # CSV, made for spreadsheets, neutralises formulas. The cells a spreadsheet would run are counted
        # for the version's warnings.
        self.formula_cells += formula_cells(frame)
        data = csv_text(frame, header=first).encode()
        self._handle.write(data)
        self._digest.update(data)
        self.bytes += len(data)

    def abandon(self) -> None:
        self._handle.close()

    def close(self) -> FileInfo:
        if self._rows or self.rows == 0:
            self._flush()
        _fsync_close(self._handle)
        return FileInfo(self.path.name, self.rows, self.bytes, self._digest.hexdigest(), formula_cells=self.formula_cells)


class ParquetSink(_TableSink):
    def __init__(self, path: Path, columns: dict[str, str]):
        import pyarrow as pa

        super().__init__(path, columns)
        types = {"string": pa.string(), "int": pa.int64(), "float": pa.float64()}
        self._schema = pa.schema([(name, types[kind]) for name, kind in columns.items()])
        self._writer = None

    def _write_frame(self, frame, first: bool) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self._schema)
        self._writer.write_table(pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False))

    def abandon(self) -> None:
        if self._writer is not None:
            self._writer.close()

    def close(self) -> FileInfo:
        if self._rows or self.rows == 0:
            self._flush()
        self._writer.close()
        with open(self.path, "rb+") as handle:
            os.fsync(handle.fileno())
        return FileInfo(self.path.name, self.rows, self.path.stat().st_size, file_sha256(self.path))

"""Building one dataset version: stream, map, write, in one or more processes, then merge.

A large JSONL export is cut into contiguous ranges of item ids with about the same number of
annotations. This process writes the first range while forked children write the others into
part files, then copies each part after its own lines (following a part while it is still being
written) and hashes as it copies, so the sha256 is that of the one file. Ranges follow the single-process order exactly, so the file is byte-identical
whatever the number of processes. Small exports, CSV and Parquet run in one process.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import signal
from collections import Counter
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

from sqlalchemy import select

from app.models import Annotation

from .formats import Format, NeedsConversational, Plan, group_agreement
from .sinks import CsvSink, JsonlSink, ParquetSink
from .source import (
    Pseudonyms,
    annotation_conditions,
    corrections,
    count_annotations,
    in_test_split,
    stream_groups,
)

# Below this many annotations one process is quicker than starting others.
PARALLEL_MIN_ANNOTATIONS = 100_000
_trainer_of = itemgetter(2)


@dataclass
class PartResult:
    """What one range produced: its sinks' facts and the figures the manifest adds up."""

    files: dict[str, dict] = field(default_factory=dict)  # split -> {"path", "rows", "bytes", "null_only"}
    read: int = 0
    items: Counter = field(default_factory=Counter)
    trainers: set = field(default_factory=set)
    agreements: list = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)


def make_sink(fmt: Format, plan: Plan, path: Path, part: bool = False, threaded: bool = True):
    if fmt.extension == "jsonl":
        return JsonlSink(path, fmt.nullable, hashed=not part, threaded=threaded)
    columns = {"item_id": "string", "trainer": "string", "submitted_at": "string", "active_seconds": "int",
               "gold_score": "float", "review_status": "string"}
    columns.update({f"answer_{q.key}": q.kind.column_kind for q in plan.questions})
    return (CsvSink if fmt.extension == "csv" else ParquetSink)(path, columns)


# The first range is this process's, and it merges the others afterwards: it takes a smaller share.
FIRST_SHARE = 0.9


def split_points(session, project_id: int, total: int, parts: int) -> list[int]:
    """Item ids that cut the project's annotations into ``parts`` ranges: the first a little
    smaller (its process also merges the rest), the others equal."""
    first = FIRST_SHARE / parts
    bounds = [first + (1 - first) * k / (parts - 1) for k in range(parts - 1)]
    points = []
    for share in bounds:
        item_id = session.scalar(
            select(Annotation.item_id).where(Annotation.project_id == project_id)
            .order_by(Annotation.item_id).limit(1).offset(int(total * share))
        )
        if item_id is not None and (not points or item_id > points[-1]):
            points.append(item_id)
    return points


def write_range(session, fmt: Format, plan: Plan, conditions: list, folder: Path, fetch_rows: int,
                report=None, every: int = 20000, keep_sinks: bool = False, part: bool = False,
                threaded: bool = True):
    """Stream one range of annotations through the format into ``folder``; return (result, sinks).

    ``report(read)`` is called every ``every`` annotations. With ``keep_sinks`` the sinks are
    returned unclosed, so more parts can be appended to them. A ``part`` (written by a helper
    process) is left unhashed, unsynced and with its null-only columns: the appending side decides.
    """
    result = PartResult()
    fraction = plan.options.test_fraction
    sinks = {"train": make_sink(fmt, plan, folder / f"train.{fmt.extension}", part, threaded)}
    if fraction > 0:
        sinks["test"] = make_sink(fmt, plan, folder / f"test.{fmt.extension}", part, threaded)
    write_train = sinks["train"].write_many
    write_test = sinks["test"].write_many if fraction > 0 else None
    min_agreement = plan.options.min_agreement
    build, trainers, agreements, skipped = fmt.build, result.trainers, result.agreements, plan.skipped
    train_items = test_items = read = 0
    next_report = every
    groups = stream_groups(session, conditions, corrections(session, plan.project_id), fetch_rows,
                           full_rows=fmt.full_rows)
    gc.disable()  # the loop makes millions of short-lived objects and no cycles: spare the collector
    try:
        for group, read in groups:
            if report is not None and read >= next_report:
                report(read)
                next_report = read + every
            if min_agreement is not None:
                value = group_agreement(group, plan)
                if value is None or value < min_agreement:
                    skipped["item below min_agreement"] += 1
                    continue
                agreements.append(value)
            lines = build(group, plan)
            if type(lines) is not list:
                lines = list(lines)
            if not lines:
                continue
            if write_test is not None and in_test_split(group.external_id, fraction):
                write_test(lines)
                test_items += 1
            else:
                write_train(lines)
                train_items += 1
            trainers.update(map(_trainer_of, group.rows))
    except BaseException:
        for sink in sinks.values():
            sink.abandon()
        raise
    finally:
        gc.enable()
        groups.close()
    result.read, result.items = read, Counter(train=train_items, test=test_items)
    result.skipped = Counter(skipped)
    if keep_sinks:
        return result, sinks
    for split, sink in sinks.items():
        null_only = sorted(getattr(sink, "pending_null", ()))
        info = sink.close(drop_null=not part, sync=not part) if isinstance(sink, JsonlSink) else sink.close()
        result.files[split] = {"path": str(sink.path), "rows": info.rows, "null_only": null_only, "info": info}
    return result, None


def _die_with_parent() -> None:
    """A child writing a part must not outlive a killed export (Linux: ask for SIGKILL then)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _child(pipe, session_factory, fmt: Format, plan: Plan, conditions: list, folder: str, fetch_rows: int,
           progress_value) -> None:
    _die_with_parent()
    try:
        folder_path = Path(folder)
        folder_path.mkdir(parents=True, exist_ok=True)

        def report(read: int) -> None:
            progress_value.value = read

        with session_factory() as session:
            result, _ = write_range(session, fmt, plan, conditions, folder_path, fetch_rows, report, every=5000,
                                    part=True, threaded=False)
        progress_value.value = result.read
        pipe.send(("ok", result))
    except NeedsConversational as exc:
        pipe.send(("conversational", str(exc)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the export
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        pipe.close()
        os._exit(0)  # no atexit handlers, no flushing of the parent's copied state


def write_all(session, session_factory, project_id: int, fmt: Format, plan: Plan, work: Path, secret: str,
              progress, fetch_rows: int, processes: int) -> PartResult:
    """Write the version's data files into ``work`` and return the merged figures.

    Starts plain and, when an item needs messages, starts again conversational (see formats.prompt).
    """
    plan.project_id = project_id
    plan.pseudonym = Pseudonyms(secret)
    conditions = annotation_conditions(session, project_id, plan.options, fmt.keeps_rejected)
    # Progress counts against the project's annotations (an index-only count); filters make the
    # real number smaller, so the bar may finish early, never late.
    total = count_annotations(session, [Annotation.project_id == project_id])
    progress.expect(total)
    parts = processes if fmt.extension == "jsonl" and total >= PARALLEL_MIN_ANNOTATIONS else 1
    points = split_points(session, project_id, total, parts) if parts > 1 else []
    while True:
        try:
            return _write_parts(session, session_factory, fmt, plan, conditions, points, work, progress, fetch_rows)
        except NeedsConversational:
            if plan.conversational:
                raise
            for path in work.iterdir():
                if path.is_file():
                    path.unlink()
            plan.conversational = True
            plan.skipped.clear()


def _write_parts(session, session_factory, fmt, plan, conditions, points, work: Path, progress, fetch_rows):
    if not points:
        result, _ = write_range(session, fmt, plan, conditions, work, fetch_rows, progress, progress.every)
        progress(result.read)
        return result
    bounds = [None, *points, None]
    ranges = [conditions + [c for c in (
        Annotation.item_id >= lo if lo is not None else None,
        Annotation.item_id < hi if hi is not None else None) if c is not None]
        for lo, hi in zip(bounds, bounds[1:], strict=False)]
    context = multiprocessing.get_context("fork")
    children = []
    for n, part_conditions in enumerate(ranges[1:], start=1):
        receive, send = context.Pipe(duplex=False)
        value = context.RawValue("q", 0)
        process = context.Process(target=_child, daemon=True, args=(
            send, session_factory, fmt, plan, part_conditions, str(work / f"part-{n}"), fetch_rows, value))
        process.start()
        send.close()
        children.append((process, receive, value))
    try:
        def report(read: int) -> None:
            progress(read + sum(v.value for _, _, v in children))

        result, sinks = write_range(session, fmt, plan, ranges[0], work, fetch_rows, report, progress.every,
                                    keep_sinks=True, threaded=False)
        outcomes = []
        for n, (process, receive, _value) in enumerate(children, start=1):
            # Merge the helper's lines while it is still writing them (it reports once its file is closed).
            sinks["train"].follow(work / f"part-{n}" / f"train.{fmt.extension}", receive.poll)
            try:
                outcomes.append(receive.recv())
            except EOFError:
                outcomes.append(("error", f"export process {process.pid} died (exit code {process.exitcode})"))
            process.join()
            if outcomes[-1][0] != "ok":
                break
        for status, payload in outcomes:
            if status == "conversational":
                for sink in sinks.values():
                    sink.abandon()
                raise NeedsConversational(payload)
            if status == "error":
                for sink in sinks.values():
                    sink.abandon()
                raise RuntimeError(payload)
        for _status, part in outcomes:
            result.read += part.read
            result.items.update(part.items)
            result.trainers.update(part.trainers)
            result.agreements.extend(part.agreements)
            result.skipped.update(part.skipped)
            for split, info in part.files.items():
                if split == "train":  # already copied while it was written
                    sinks[split].account(info["rows"], info["null_only"])
                else:
                    sinks[split].append_file(Path(info["path"]), info["rows"], info["null_only"])
        for split, sink in sinks.items():
            result.files[split] = {"info": sink.close()}
        progress(result.read)
        return result
    finally:
        for process, _receive, _value in children:
            if process.is_alive():
                process.kill()
            process.join()
        for n in range(1, len(ranges)):
            part = work / f"part-{n}"
            if part.exists():
                for path in part.iterdir():
                    path.unlink()
                part.rmdir()

"""Building one dataset version: stream, map, write, in one or more processes, then merge.

Every version has, per split, a data file and a line-aligned ``<split>.meta.jsonl`` (which item,
responses, models, annotations and annotators each line comes from), and one ``items.jsonl`` of the
exported items. A large JSONL export is cut into contiguous ranges of item ids with about the same
number of annotations. This process writes the first range while forked children write the others
into part files, then copies each part after its own lines (following every part file while it
is still being written) and hashes as it copies, so each sha256 is that of the one file. Ranges follow
the single-process order exactly, so every file is byte-identical whatever the number of processes.
Small exports, CSV and Parquet run in one process.
"""

from __future__ import annotations

import ctypes
import gc
import multiprocessing
import os
import signal
from array import array
from collections import Counter
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

import orjson
from sqlalchemy import select

from app.models import Annotation, TrainerStats

from .formats import Format, NeedsConversational, Plan, group_agreement, prompt_key
from .sinks import CsvSink, FileInfo, JsonlSink, ParquetSink, follow_parts
from .source import (
    SPLITS,
    Group,
    Pseudonyms,
    Snapshot,
    annotation_conditions,
    corrections,
    count_annotations,
    first_and_last_submitted,
    split_of,
    stream_groups,
)

ITEMS_FILE = "items.jsonl"
ANNOTATORS_FILE = "annotators.jsonl"
# Below this many annotations one process is quicker than starting others.
PARALLEL_MIN_ANNOTATIONS = 100_000
_trainer_of = itemgetter(2)
_dumps = orjson.dumps
_NEWLINE = orjson.OPT_APPEND_NEWLINE


class RepeatedPrompt(Exception):  # noqa: N818 - a signal to start again, like NeedsConversational
    """Two items of a watched file (consensus pairs or ratings, KTO, SFT) share a prompt, so their rows
    could repeat or contradict each other: the version starts again in one process that checks every
    row (``Plan.pair_digests``, ``formats.given_before``)."""


@dataclass
class PartResult:
    """What one range produced: its files' facts and the figures the manifest adds up."""

    files: dict[str, dict] = field(default_factory=dict)  # file name -> {"path", "rows", "info"}
    read: int = 0
    items: Counter = field(default_factory=Counter)  # split -> items
    trainers: Counter = field(default_factory=Counter)  # trainer id -> exported annotations
    agreements: list = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    models: Counter = field(default_factory=Counter)  # source model -> lines that hold one of its responses
    submitted: list = field(default_factory=list)  # [first, last] submitted_at of the annotations read
    # hash() of each prompt that gave rows, when rows are watched, in item order (a helper sends them as
    # the bytes of the array); ``repeats_prompts`` checks them all once every range is written
    prompts: array = field(default_factory=lambda: array("q"))

    @property
    def infos(self) -> list[FileInfo]:
        return [f["info"] for f in self.files.values()]

    def data_files(self) -> list[FileInfo]:
        return [info for info in self.infos if info.role == "data"]


def role_of(name: str) -> str:
    if name.endswith(".meta.jsonl"):
        return "meta"
    return {ITEMS_FILE: "items", ANNOTATORS_FILE: "annotators"}.get(name, "data")


def splits_of(plan: Plan) -> list[str]:
    """The splits this version may have: train, and validation / test when their fraction is set."""
    fractions = {"validation": plan.options.validation_fraction, "test": plan.options.test_fraction}
    return [s for s in SPLITS if s == "train" or fractions[s] > 0]


def make_sink(fmt: Format, plan: Plan, path: Path, part: bool = False, threaded: bool = True):
    if fmt.extension == "jsonl":
        return JsonlSink(path, hashed=not part, threaded=threaded)
    columns = {"item_id": "string", "trainer": "string", "submitted_at": "string", "active_seconds": "int",
               "gold_score": "float", "review_status": "string"}
    columns.update({f"answer_{q.key}": q.kind.column_kind for q in plan.questions})
    return (CsvSink if fmt.extension == "csv" else ParquetSink)(path, columns)


def make_sinks(fmt: Format, plan: Plan, folder: Path, part: bool, threaded: bool) -> dict:
    """Every file a range writes, by name, in the manifest's order: data files, meta files, items."""
    splits = splits_of(plan)
    sinks = {f"{s}.{fmt.extension}": make_sink(fmt, plan, folder / f"{s}.{fmt.extension}", part, threaded)
             for s in splits}
    for s in splits:
        sinks[f"{s}.meta.jsonl"] = JsonlSink(folder / f"{s}.meta.jsonl", hashed=not part, threaded=threaded)
    sinks[ITEMS_FILE] = JsonlSink(folder / ITEMS_FILE, hashed=not part, threaded=threaded)
    return sinks


def meta_lines(group: Group, lines: list[dict], pseudonym, models: Counter) -> list[bytes]:
    """Pop each line's ``_meta`` and return its provenance line, encoded: the item, the responses and
    their models, the annotations and their annotators' pseudonyms, the agreement. What ``_meta``
    leaves out defaults to all the item's responses and annotations. Runs once per line: the item's
    lists are built once and shared."""
    rows, responses = group.rows, group.responses
    item_models = [r.get("model") for r in responses]
    named = item_models.count(None) != len(item_models)  # most items name no model
    annotation_ids = [r[0] for r in rows]
    response_ids = annotators = trainer_of = distinct = None
    item_id = group.external_id
    out = []
    for line in lines:
        given = line.pop("_meta", None) or {}
        ids = given.get("response_ids")
        if ids is None:
            if response_ids is None:
                response_ids = [r["id"] for r in responses]
            ids, used_models = response_ids, item_models
        elif named:
            position = {r["id"]: k for k, r in enumerate(responses)}
            used_models = [item_models[position[i]] for i in ids]
        else:
            used_models = [None] * len(ids)
        chosen = given.get("annotation_ids", annotation_ids)
        if chosen is annotation_ids or chosen == annotation_ids:
            if annotators is None:
                annotators = [pseudonym[r[2]] for r in rows]
            names = annotators
        else:
            if trainer_of is None:
                trainer_of = {r[0]: r[2] for r in rows}
            names = [pseudonym[trainer_of[i]] for i in chosen]
        n_annotators = given.get("n_annotators")
        if n_annotators is None:
            if distinct is None:
                distinct = len({r[2] for r in rows})
            n_annotators = distinct
        out.append(_dumps({"item_id": item_id, "response_ids": ids, "models": used_models, "annotation_ids": chosen,
                           "annotators": names, "agreement": given.get("agreement"), "n_annotators": n_annotators},
                          option=_NEWLINE))
        if named:
            models.update({m for m in used_models if m is not None})
    return out


def item_line(group: Group) -> bytes:
    """The item as exported, encoded: its prompt (a string for one user turn, else the context
    messages), its responses with their model, its metadata."""
    context = group.context
    if len(context) == 1 and context[0]["role"] == "user":
        line = {"item_id": group.external_id, "prompt": context[0]["content"]}
    else:
        line = {"item_id": group.external_id, "context": [{"role": m["role"], "content": m["content"]} for m in context]}
    line["responses"] = [{"id": r["id"], "text": r["text"], "model": r.get("model")} for r in group.responses]
    line["metadata"] = group.meta
    line["is_gold"] = group.is_gold
    return _dumps(line, option=_NEWLINE)


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


def write_range(session, fmt: Format, plan: Plan, snapshot: Snapshot, conditions: list, folder: Path,
                fetch_rows: int, report=None, every: int = 20000, keep_sinks: bool = False, part: bool = False,
                threaded: bool = True):
    """Stream one range of annotations through the format into ``folder``; return (result, sinks).

    ``report(read)`` is called every ``every`` annotations. With ``keep_sinks`` the sinks are
    returned unclosed, so more parts can be appended to them. A ``part`` (written by a helper
    process) is left unhashed and unsynced: the appending side hashes it.
    """
    result = PartResult()
    sinks = make_sinks(fmt, plan, folder, part, threaded)
    options = plan.options
    test_fraction, validation_fraction = options.test_fraction, options.validation_fraction
    split_files = len(splits_of(plan)) > 1
    write_data = {s: sinks[f"{s}.{fmt.extension}"].write_many for s in splits_of(plan)}
    write_meta = {s: sinks[f"{s}.meta.jsonl"].write_encoded for s in splits_of(plan)}
    write_item = sinks[ITEMS_FILE].write_line
    encode = fmt.encoder(plan)
    if encode is not None:  # only a JSONL format has an encoder
        data_line = {s: sinks[f"{s}.{fmt.extension}"].write_line for s in splits_of(plan)}
        meta_line = {s: sinks[f"{s}.meta.jsonl"].write_line for s in splits_of(plan)}
    min_agreement = options.min_agreement
    build, trainers, agreements, skipped = fmt.build, result.trainers, result.agreements, plan.skipped
    # Each exported annotation's trainer, counted in bulk every ``every`` annotations (a Counter update
    # per item costs more).
    trainer_ids: list[int] = []
    add_trainers = trainer_ids.extend
    pseudonym, models = plan.pseudonym, result.models
    items = Counter()
    read = 0
    next_report = every
    # A consensus pair file (and KTO, SFT) notes the hash of each prompt that gives rows; once every range
    # is written, a hash seen twice starts the version again with every row checked (the usual project
    # asks each prompt once: a hash a row, appended, costs little; a set here cost ~1 µs an item).
    watched = (fmt.consensus_rows and plan.consensus) or fmt.completion_rows
    prompts = result.prompts if watched and plan.pair_digests is None else None
    prompt_of = plan.prompt_of = fmt.row_prompt or prompt_key
    # One plain ASCII user turn already reads as a reader sees it (``projects.plain_text`` would give it
    # back unchanged): its hash is ``prompt_key``'s, without the normalising.
    fast_prompts = fmt.row_prompt is None

    def split_for(group):  # one split per item in every format (``split_of``)
        return split_of(group.context, test_fraction, validation_fraction)
    note_prompt = prompts.append if prompts is not None else None
    groups = stream_groups(session, conditions, corrections(session, plan.project_id, snapshot), fetch_rows,
                           full_rows=fmt.full_rows, snapshot=snapshot)
    gc.disable()  # the loop makes millions of short-lived objects and no cycles: spare the collector
    try:
        for group, read in groups:
            if read >= next_report:
                next_report = read + every
                trainers.update(trainer_ids)
                trainer_ids.clear()
                if report is not None:
                    report(read)
            if min_agreement is not None:
                value = group_agreement(group, plan)
                if value is None or value < min_agreement:  # unknown (one answer): not shown to agree
                    skipped["item below min_agreement" if value is not None
                            else "item whose agreement is unknown (one answer) under min_agreement"] += 1
                    continue
                agreements.append(value)
            if encode is not None and (encoded := encode(group, models)) is not None:
                if not encoded:
                    continue
                if prompts is not None:  # inline: once per item of a million-row export
                    context = group.context
                    text = context[0]["content"] if fast_prompts and len(context) == 1 else None
                    key = hash(text if text is not None and context[0]["role"] == "user" and text.isascii()
                               and text.isprintable() and "  " not in text and text[:1] != " " != text[-1:]
                               else prompt_of(group))
                    note_prompt(key)
                split = split_for(group) if split_files else "train"
                data_line[split](encoded[0])
                meta_line[split](encoded[1])
                write_item(item_line(group))
                items[split] += 1
                add_trainers(map(_trainer_of, group.rows))
                continue
            lines = build(group, plan)
            if type(lines) is not list:
                lines = list(lines)
            if not lines:
                continue
            if prompts is not None:
                note_prompt(hash(prompt_of(group)))
            split = split_for(group) if split_files else "train"
            encoded = meta_lines(group, lines, pseudonym, models)
            write_data[split](lines)
            write_meta[split](encoded)
            write_item(item_line(group))
            items[split] += 1
            add_trainers(map(_trainer_of, group.rows))
    except BaseException:
        for sink in sinks.values():
            sink.abandon()
        raise
    finally:
        gc.enable()
        groups.close()
    result.read, result.items = read, items
    trainers.update(trainer_ids)
    result.skipped = Counter(skipped)
    if keep_sinks:
        return result, sinks
    close_sinks(sinks, result, part)
    return result, None


def repeats_prompts(*hashes: array) -> bool:
    """Whether a prompt's hash comes twice in the ranges' notes (a rare false alarm, two prompts with
    one hash, only costs the checked rebuild)."""
    count = sum(len(h) for h in hashes)
    return count > 1 and len(set().union(*hashes)) != count


def close_sinks(sinks: dict, result: PartResult, part: bool) -> None:
    """Close every file into ``result.files``; a finished version keeps no file without a line."""
    for name, sink in sinks.items():
        info = sink.close(sync=not part) if isinstance(sink, JsonlSink) else sink.close()
        info.role = role_of(name)
        if not part and info.rows == 0:
            sink.path.unlink()
            continue
        result.files[name] = {"path": str(sink.path), "rows": info.rows, "info": info}


def _die_with_parent() -> None:
    """A child writing a part must not outlive a killed export (Linux: ask for SIGKILL then)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _child(pipe, session_factory, fmt: Format, plan: Plan, snapshot: Snapshot, conditions: list, folder: str,
           fetch_rows: int, progress_value) -> None:
    _die_with_parent()
    try:
        folder_path = Path(folder)
        folder_path.mkdir(parents=True, exist_ok=True)

        def report(read: int) -> None:
            progress_value.value = read

        with session_factory() as session:
            result, _ = write_range(session, fmt, plan, snapshot, conditions, folder_path, fetch_rows, report,
                                    every=5000, part=True, threaded=False)
        progress_value.value = result.read
        result.prompts = result.prompts.tobytes()  # one block: pickling 10⁵ Python ints costs the merge
        pipe.send(("ok", result))
    except NeedsConversational as exc:
        pipe.send(("conversational", str(exc)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the export
        pipe.send(("error", f"{type(exc).__name__}: {exc}", getattr(exc, "errno", None)))
    finally:
        pipe.close()
        os._exit(0)  # no atexit handlers, no flushing of the parent's copied state


def write_all(session, session_factory, project_id: int, fmt: Format, plan: Plan, snapshot: Snapshot, work: Path,
              secret: str, progress, fetch_rows: int, processes: int, conditions: list | None = None) -> PartResult:
    """Write the version's files into ``work`` and return the merged figures.

    ``conditions`` are the export's SQL filters when the caller has them already (else made here).
    Starts plain and, when an item needs messages, starts again conversational (see formats.prompt).
    """
    plan.project_id = project_id
    plan.pseudonym = Pseudonyms(secret)
    if conditions is None:
        conditions = annotation_conditions(session, project_id, plan.options, fmt.keeps_rejected, snapshot)
    # Progress counts against the project's annotations (an index-only count); filters make the
    # real number smaller, so the bar may finish early, never late.
    total = count_annotations(session, [Annotation.project_id == project_id])
    progress.expect(total)
    parts = processes if fmt.extension == "jsonl" and total >= PARALLEL_MIN_ANNOTATIONS else 1
    points = split_points(session, project_id, total, parts) if parts > 1 else []
    while True:
        try:
            result = _write_parts(session, session_factory, fmt, plan, snapshot, conditions, points, work,
                                  progress, fetch_rows)
            break
        except NeedsConversational:
            if plan.conversational:
                raise
            plan.conversational = True
        except RepeatedPrompt:
            if plan.pair_digests is not None:
                raise
            plan.pair_digests = set()  # every pair checked against every other: one process keeps them all
            points = []
        for path in work.iterdir():
            if path.is_file():
                path.unlink()
        plan.skipped.clear()
        if plan.pair_digests is not None:
            plan.pair_digests.clear()
    result.submitted = first_and_last_submitted(session, conditions)
    # Raw tables (the formats that keep every annotation) get a table of their annotators.
    if fmt.keeps_rejected and result.trainers:
        write_annotators(session, project_id, plan.pseudonym, result, work)
    return result


def write_annotators(session, project_id: int, pseudonym, result: PartResult, work: Path) -> None:
    """``annotators.jsonl``: each annotator's pseudonym, annotations in this version and quality
    figures (gold accuracy, agreement with the consensus; null when unknown), by pseudonym."""
    stats = {trainer_id: (gold, agreement) for trainer_id, gold, agreement in session.execute(
        select(TrainerStats.trainer_id, TrainerStats.gold_accuracy, TrainerStats.consensus_agreement)
        .where(TrainerStats.project_id == project_id))}
    lines = sorted(({"trainer": pseudonym(trainer_id), "annotations": count,
                     "gold_accuracy": stats.get(trainer_id, (None, None))[0],
                     "consensus_agreement": stats.get(trainer_id, (None, None))[1]}
                    for trainer_id, count in result.trainers.items()), key=lambda x: x["trainer"])
    sink = JsonlSink(work / ANNOTATORS_FILE, threaded=False)
    sink.write_many(lines)
    info = sink.close()
    info.role = "annotators"
    result.files[ANNOTATORS_FILE] = {"path": str(sink.path), "rows": info.rows, "info": info}


def _write_parts(session, session_factory, fmt, plan, snapshot, conditions, points, work: Path, progress,
                 fetch_rows):
    if not points:
        result, _ = write_range(session, fmt, plan, snapshot, conditions, work, fetch_rows, progress, progress.every)
        if repeats_prompts(result.prompts):
            raise RepeatedPrompt("items share a prompt")
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
            send, session_factory, fmt, plan, snapshot, part_conditions, str(work / f"part-{n}"), fetch_rows, value))
        process.start()
        send.close()
        children.append((process, receive, value))
    try:
        def report(read: int) -> None:
            progress(read + sum(v.value for _, _, v in children))

        result, sinks = write_range(session, fmt, plan, snapshot, ranges[0], work, fetch_rows, report,
                                    progress.every, keep_sinks=True, threaded=False)
        outcomes = []
        jsonl = [name for name, sink in sinks.items() if isinstance(sink, JsonlSink)]
        for n, (process, receive, _value) in enumerate(children, start=1):
            # Merge the helper's lines while it is still writing them (it reports once its files are closed).
            follow_parts([(sinks[name], work / f"part-{n}" / name) for name in jsonl], receive.poll)
            try:
                outcomes.append(receive.recv())
            except EOFError:
                outcomes.append(("error", f"export process {process.pid} died (exit code {process.exitcode})"))
            process.join()
            if outcomes[-1][0] != "ok":
                break
        for status, payload, *errno in outcomes:
            if status in ("conversational", "error"):
                for sink in sinks.values():
                    sink.abandon()
                if status == "conversational":
                    raise NeedsConversational(payload)
                if errno and errno[0] is not None:  # a full disk in a helper reads as one here too
                    raise OSError(errno[0], payload)
                raise RuntimeError(payload)
        for _status, part in outcomes:
            theirs = array("q")
            theirs.frombytes(part.prompts)
            part.prompts = theirs
        if repeats_prompts(result.prompts, *(part.prompts for _status, part in outcomes)):
            for sink in sinks.values():
                sink.abandon()
            raise RepeatedPrompt("items share a prompt")
        for _status, part in outcomes:
            result.read += part.read
            result.items.update(part.items)
            result.trainers.update(part.trainers)
            result.agreements.extend(part.agreements)
            result.skipped.update(part.skipped)
            result.models.update(part.models)
            for name, info in part.files.items():  # every file was copied while it was written
                sinks[name].account(info["rows"])
        close_sinks(sinks, result, part=False)
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

"""stage: fetch the inputs of this user's claimed runs until ``nprep`` are ready: C -> S.

One read says what to do; with nothing to do that is all a call costs (the run loop calls
it every cycle).  Tape recalls go out first for every claimed run, once per run.  Then,
while the data file system stays below ``spacelim``, inputs are fetched (in threads for a
remote archive, bounded by ``transfers``), checked against their expected adler32, and
recorded: C -> S with the input path, or a failed attempt that leaves the run in C (X at
``max_attempts``).  Results are written in batches, at least once a second.  At or over
``spacelim``, claimed runs beyond the ``nprep`` this user may stage go back to N, so
that users with space may take them (as in 2014).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from alcapctl.archive import Archive, ArchiveUnavailable, FetchError, Progress, open_archive
from alcapctl.archive.base import TransferCancelled
from alcapctl.archive.checksums import expected_checksums, verify_checksum
from alcapctl.archive.space import SpaceGate, SpaceUnknown, announce, probe_space
from alcapctl.events import Event
from alcapctl.faults import Kind, classify
from alcapctl.states import RunState
from alcapctl.steps.claim import hand_back
from alcapctl.steps.context import StepContext
from alcapctl.steps.recall import forget_recalls, recall_inputs
from alcapctl.steps.units import OwnTransactions, Units
from alcapctl.store import RunRecord, RunTable

__all__ = ["StageResult", "stage"]

log = structlog.get_logger("alcapctl.stage")

C, S = RunState.CLAIMED, RunState.STAGED
FLUSH_EVERY = 1.0  # seconds between database writes while transfers go on

Item = tuple[RunRecord, str | None]  # a run to stage and its input's name (None: unknown)
Outcome = Path | FetchError | OSError  # OSError: staging cannot be written (ENOSPC, EIO)


@dataclass
class StageResult:
    staged: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)  # run -> reason of this attempt
    exhausted: list[int] = field(default_factory=list)  # failed runs that reached X
    recalled: list[int] = field(default_factory=list)
    handed_back: list[int] = field(default_factory=list)  # C -> N: no space to stage them
    waiting_for_space: bool = False
    space_percent: float | None = None
    unavailable: str | None = None  # the archive or the staging disk failed; nothing counted
    dry_run: bool = False
    claimed: int = 0  # this user's C runs when the step began
    events: list[Event] = field(default_factory=list)

    @property
    def left(self) -> int:
        """This user's runs still waiting in C (as far as this step knows)."""
        return self.claimed - len(self.staged) - len(self.exhausted)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "events"}


@dataclass(frozen=True)
class _Plan:
    claimed: list[RunRecord]  # this user's C runs, for recalls
    todo: list[Item]  # the runs to fetch now


def _plan(ctx: StepContext, runs: RunTable) -> _Plan:
    held = runs.held(ctx.owner, (C, S))
    claimed = [r for r in held if r.status is C]
    if not claimed:
        return _Plan([], [])
    room = ctx.limits.nprep - (len(held) - len(claimed))
    chosen = claimed[: max(room, 0)]
    if ctx.record.type == "rootana":
        trees = runs.base_outputs("tree", [r.run for r in chosen]) if chosen else {}
        return _Plan(claimed, [(r, trees.get(r.run)) for r in chosen])
    return _Plan(claimed, [(r, input_name(ctx, r.run)) for r in chosen])


def input_name(ctx: StepContext, run: int) -> str:
    """The raw file name of ``run`` in the archive (``run02091.mid`` by default)."""
    return ctx.settings.archive.filename.format(**ctx.fields(run))


def stage(
    ctx: StepContext,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    units: Units | None = None,
) -> StageResult:
    """Stage inputs of this user's claimed runs until ``nprep`` are ready; see the module.

    Decide (one read), fetch (outside any transaction unless ``units`` is a unit its
    caller holds open), record the outcomes (a write at least once a second).
    """
    units = units or OwnTransactions(ctx.store, ctx.record)
    plan = units.read(lambda runs: _plan(ctx, runs))
    result = StageResult(dry_run=dry_run, claimed=len(plan.claimed))

    def say(text: str, **fields: Any) -> None:
        result.events.append(Event(text, fields=fields))

    if not plan.claimed:
        return result
    archive = open_archive(ctx)
    if archive.recalls and not dry_run:
        names = {r.run: input_name(ctx, r.run) for r in plan.claimed}
        result.recalled = recall_inputs(ctx, archive, names)
    if not plan.todo:
        return result
    try:
        gate = SpaceGate(probe_space(ctx.settings.site.quota, ctx.staging_dir), ctx.limits.spacelim)
    except SpaceUnknown as exc:
        log.warning("cannot measure the space left; no input fetched", reason=str(exc))
        result.waiting_for_space = True
        return result
    result.space_percent = round(gate.percent, 1)
    if not dry_run:
        announce(ctx.workdir / f"space-full.{ctx.settings.owner}", gate)
    if not gate.allows():
        result.waiting_for_space = True
        beyond = [r.run for r in plan.claimed[len(plan.todo) :]]  # more than it may stage
        if beyond and not dry_run:
            result.handed_back = hand_back(ctx, beyond, units)
            say(f"Handed back runs: {result.handed_back}", runs=result.handed_back)
        return result
    runs = [r.run for r, _ in plan.todo]
    if dry_run:
        say(f"Would stage runs: {runs}", runs=runs)
        result.staged = runs
        return result
    say(f"Staging runs: {runs}", runs=runs)
    if archive.copies:
        ctx.staging_dir.mkdir(parents=True, exist_ok=True)
    _fetch_all(ctx, units, archive, plan.todo, gate, result, progress)
    return result


def _fetch_all(
    ctx: StepContext,
    units: Units,
    archive: Archive,
    todo: list[Item],
    gate: SpaceGate,
    result: StageResult,
    progress: Progress | None,
) -> None:
    checksums = ctx.settings.archive.checksums
    sums = expected_checksums(checksums) if checksums is not None else {}
    recorder = _Recorder(ctx, units, result, forget_recalls=archive.recalls)

    def say(text: str, run: int, level: str = "info") -> None:
        result.events.append(Event(text, level=level, fields={"run": run}))

    last_started = [0]
    workers = min(ctx.limits.transfers, len(todo)) if archive.parallel else 1
    stop = threading.Event()
    watched = _Stoppable(progress, stop) if workers > 1 else progress

    def fetch(item: Item) -> Outcome:
        record, name = item
        try:
            return _fetch_one(ctx, archive, record.run, name, sums, watched)
        except FetchError as exc:
            return exc
        except OSError as exc:  # the staging disk, not the run, when it is transient
            if classify(exc) is not Kind.TRANSIENT:
                raise
            return exc

    def may_start() -> bool:
        return gate.allows() and result.unavailable is None

    def on_start(item: Item) -> None:
        last_started[0] = item[0].run
        say(f"{archive.action} run: {item[0].run}", item[0].run)

    try:
        for (record, _), outcome in _fetches(todo, fetch, workers, may_start, on_start, stop):
            suffix = "" if last_started[0] == record.run else f" (run {record.run})"
            if isinstance(outcome, ArchiveUnavailable):
                log.warning("archive unavailable; no attempt counted", reason=str(outcome))
                result.unavailable = str(outcome)
                say(f"... Archive unavailable{suffix}: {outcome}", record.run, "warning")
            elif isinstance(outcome, OSError):
                reason = f"{ctx.staging_dir}: {outcome.strerror}"
                log.warning("cannot write staging; no attempt counted", reason=reason)
                result.unavailable = reason
                say(f"... Cannot write staging{suffix}: {reason}", record.run, "warning")
            elif isinstance(outcome, FetchError):
                log.warning("staging failed", run=record.run, reason=str(outcome))
                say(f"... Failed{suffix}: {outcome}", record.run, "warning")
                recorder.failed(record, str(outcome))
            else:
                say(f"... Success!{suffix}", record.run)
                stat = outcome.stat()
                if archive.copies and stat.st_nlink == 1:  # a hard link takes no new space
                    gate.add(stat.st_size)
                recorder.staged(record, outcome)
    finally:
        recorder.flush()
    if not gate.allows():
        result.waiting_for_space = True
        announce(ctx.workdir / f"space-full.{ctx.settings.owner}", gate)


def _fetch_one(
    ctx: StepContext,
    archive: Archive,
    run: int,
    name: str | None,
    sums: dict[str, str],
    progress: Progress | None,
) -> Path:
    if name is None:
        raise FetchError(f"run {run}: the base production records no finished tree for it")
    filename = Path(name).name
    path = archive.fetch(name, ctx.staging_dir / filename, progress)
    expected = sums.get(filename)
    if expected is not None:
        try:
            verify_checksum(path, expected)
        except FetchError:
            discard(ctx, path)
            raise
    return path


def discard(ctx: StepContext, path: Path) -> None:
    """Delete a staged file; only ever one inside this production's staging directory."""
    if path.parent == ctx.staging_dir:
        path.unlink(missing_ok=True)


def _fetches(
    items: Sequence[Item],
    fetch: Callable[[Item], Outcome],
    workers: int,
    may_start: Callable[[], bool],
    on_start: Callable[[Item], None],
    stop: threading.Event,
) -> Iterator[tuple[Item, Outcome]]:
    """Fetch items in order (threads when ``workers`` > 1) while ``may_start`` allows.

    If the consumer stops early (an exception, Ctrl-C), ``stop`` is set so that transfers
    in threads give up at their next block instead of running to the end.
    """
    pending = iter(items)
    if workers <= 1:
        for item in pending:
            if not may_start():
                return
            on_start(item)
            yield item, fetch(item)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="alcapctl-stage") as pool:
        running: dict[Future[Outcome], Item] = {}

        def top_up() -> None:
            while len(running) < workers and may_start():
                item = next(pending, None)
                if item is None:
                    return
                on_start(item)
                running[pool.submit(fetch, item)] = item

        try:
            top_up()
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield running.pop(future), future.result()
                top_up()
        except BaseException:
            stop.set()
            raise


class _Stoppable:
    """Passes progress on; ends a transfer running in a thread once the step is stopping."""

    def __init__(self, progress: Progress | None, stop: threading.Event) -> None:
        self.progress = progress
        self.stop = stop

    def start(self, name: str, total: int | None, done: int = 0) -> None:
        if self.progress is not None:
            self.progress.start(name, total, done)

    def advance(self, name: str, nbytes: int) -> None:
        if self.stop.is_set():
            raise TransferCancelled(f"{name}: staging stopped")
        if self.progress is not None:
            self.progress.advance(name, nbytes)

    def finish(self, name: str) -> None:
        if self.progress is not None:
            self.progress.finish(name)


class _Recorder:
    """Collects outcomes and writes them in one transaction, at most every FLUSH_EVERY s."""

    def __init__(
        self, ctx: StepContext, units: Units, result: StageResult, *, forget_recalls: bool
    ) -> None:
        self.ctx = ctx
        self.units = units
        self.result = result
        self.forget_recalls = forget_recalls
        self.ok: list[tuple[RunRecord, Path]] = []
        self.bad: list[tuple[RunRecord, str]] = []
        self.last = time.monotonic()

    def staged(self, record: RunRecord, path: Path) -> None:
        self.ok.append((record, path))
        self._maybe_flush()

    def failed(self, record: RunRecord, reason: str) -> None:
        self.bad.append((record, reason))
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if time.monotonic() - self.last >= FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        ok, bad = self.ok, self.bad
        self.ok, self.bad, self.last = [], [], time.monotonic()
        if not ok and not bad:
            return
        ctx = self.ctx

        def write(runs: RunTable) -> tuple[set[int], dict[int, RunState | None]]:
            inputs = {record.run: {"input": str(path)} for record, path in ok}
            moved = set(runs.move_each(inputs, C, S, ctx.owner, lease=runs.now))
            fails = {
                record.run: runs.fail(
                    record,
                    step="stage",
                    reason=reason,
                    max_attempts=ctx.limits.max_attempts,
                    retry_state=C,
                )
                for record, reason in bad
            }
            return moved, fails

        moved, fails = self.units.write(write)
        for record, path in ok:
            if record.run in moved:
                self.result.staged.append(record.run)
            else:  # the run left C meanwhile (abort, recover): its input is nobody's
                log.warning("run no longer claimed; staged input removed", run=record.run)
                discard(ctx, path)
        if self.forget_recalls:
            forget_recalls(ctx, [input_name(ctx, r.run) for r, _ in ok if r.run in moved])
        for record, reason in bad:
            self.result.failed[record.run] = reason
            if fails[record.run] is RunState.FAILED:
                self.result.exhausted.append(record.run)

"""retry: failed runs (X), or runs named explicitly (X or F), back to N with attempts reset."""

from __future__ import annotations

from collections.abc import Sequence

from alcapctl.errors import UsageError
from alcapctl.states import RunState
from alcapctl.steps.context import StepContext
from alcapctl.store import RunTable
from alcapctl.store.productions import reopen

__all__ = ["retry"]


def retry(ctx: StepContext, runs: Sequence[int] | None, failed: bool) -> list[int]:
    """Reset every X run (``failed``) and the named ``runs`` (X or F); the runs reset.

    A named run that is in no such state is refused, naming the run; nothing is written.
    """
    if not runs and not failed:
        raise UsageError("retry: say which runs, with --run N (repeatable) or --failed")
    named = sorted(set(runs or ()))

    def step(table: RunTable) -> list[int]:
        found = {r.run: r.status for r in table.select(runs=named)} if named else {}
        for run in named:
            state = found.get(run)
            if state not in (RunState.FAILED, RunState.FINISHED):
                what = f"is {state.value} ({state.label})" if state else "is not in it"
                raise UsageError(
                    f"run {run} of {ctx.record.name} {what}; only X or F runs can be retried"
                )
        done = table.reset((RunState.FAILED, RunState.FINISHED), runs=named) if named else []
        if failed:
            done += table.reset((RunState.FAILED,))
        if done:
            reopen(table.conn, ctx.record)
        return sorted(set(done))

    return ctx.store.runs(ctx.record, step, write=True)

"""Run states and the transitions between them; the store refuses every other change.

The letters are the legacy ones (N, C, R, F) plus S (staged) and X (failed for good), kept as
plain strings so they sit in the legacy TEXT ``status`` column.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["ACTIVE", "ALLOWED", "DONE", "RunState", "check_transition"]


class RunState(str, Enum):
    NEW = "N"
    CLAIMED = "C"
    STAGED = "S"
    RUNNING = "R"
    FINISHED = "F"
    FAILED = "X"

    @property
    def label(self) -> str:
        return _LABELS[self]

    def __str__(self) -> str:
        return self.value


_LABELS = {
    RunState.NEW: "not claimed",
    RunState.CLAIMED: "claimed",
    RunState.STAGED: "staged",
    RunState.RUNNING: "running",
    RunState.FINISHED: "finished",
    RunState.FAILED: "failed",
}

N, C, S, R, F, X = RunState

ALLOWED: dict[RunState, frozenset[RunState]] = {
    N: frozenset({C}),
    # A failed staging attempt keeps the claim (C -> C with attempts + 1) or gives up (X).
    C: frozenset({S, C, X, N}),
    # A staged input that vanished goes back to C; a submission makes it R.
    S: frozenset({R, C, X, N}),
    # A failed attempt goes back to S (input still local) or C, or X at the cap.
    R: frozenset({F, S, C, X, N}),
    # retry: X always, F only when the runs are named explicitly.
    F: frozenset({N}),
    X: frozenset({N}),
}

ACTIVE = frozenset({C, S, R})
DONE = frozenset({F, X})


def check_transition(old: RunState, new: RunState) -> None:
    """Raise TransitionError unless ``old -> new`` is an allowed change."""
    if new not in ALLOWED[old]:
        from alcapctl.errors import TransitionError

        raise TransitionError(f"a run cannot go from {old.value} to {new.value}")

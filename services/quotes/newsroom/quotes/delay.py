"""The delay line: accepted ticks held until they are their exchange's delay old.

A public snapshot only ever shows what was true ``delay`` ago. :meth:`DelayLine.hold` puts an
accepted tick at the back of its instrument's :class:`Lane`; :meth:`DelayLine.release` takes off,
lane by lane and oldest first, every held tick whose exchange time is at least the lane's delay
before ``now``. Only lanes that hold ticks are visited. No I/O and no wall clock: ``now`` is given.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Generic, TypeVar

__all__ = ["DelayLine", "Held", "Lane"]

Held = tuple[float, Decimal, int, Decimal | None]
"""A held tick: (exchange time as UTC epoch seconds, price, volume, previous_close hint)."""


class Lane:
    """One instrument's place on the delay line: its delay and its held ticks, oldest first."""

    __slots__ = ("delay_s", "held", "waiting")

    def __init__(self, delay: timedelta) -> None:
        self.delay_s = delay.total_seconds()
        self.held: deque[Held] = deque()
        self.waiting = False
        """Whether the line visits this lane (it holds ticks)."""


L = TypeVar("L", bound=Lane)


class DelayLine(Generic[L]):
    """The lanes that hold ticks, and the release of those that became due."""

    __slots__ = ("_waiting",)

    def __init__(self) -> None:
        self._waiting: list[L] = []

    def hold(self, lane: L, tick: Held) -> None:
        """Hold ``tick`` at the back of ``lane`` (its exchange time is not before the lane's newest)."""
        lane.held.append(tick)
        if not lane.waiting:
            lane.waiting = True
            self._waiting.append(lane)

    def resume(self, lane: L) -> None:
        """Visit ``lane`` again, whose held ticks were put back after a restart."""
        if lane.held and not lane.waiting:
            lane.waiting = True
            self._waiting.append(lane)

    def release(self, now_ts: float, into: Callable[[L, Held], None]) -> None:
        """Hand every held tick at least its lane's delay old at ``now_ts`` to ``into``, in order."""
        if not self._waiting:
            return
        still: list[L] = []
        for lane in self._waiting:
            held = lane.held
            cutoff = now_ts - lane.delay_s
            while held and held[0][0] <= cutoff:
                into(lane, held.popleft())
            if held:
                still.append(lane)
            else:
                lane.waiting = False
        self._waiting = still

    def clear(self) -> None:
        """Forget every lane (their held ticks stay with them)."""
        self._waiting = []

    @property
    def count(self) -> int:
        """Ticks held on the line."""
        return sum(len(lane.held) for lane in self._waiting)

"""When the engine lets the risk gate look at the account between decisions.

A daily-loss trip with close-all must close every position at the close where the limit is
reached, in a backtest as in paper trading (which looks at every close). The engine cannot look
at every close of a backtest, so it looks where a trip may happen: the gate plans the next one
from the book it knows (:meth:`~service_layer.risk_gate.RiskGate.replan`: the first close at
which that book reaches the floor, searched a day ahead), and the plan goes stale when the book
changes (a fill, a decision's orders): it is made again at the next close, from the new book.
Funding changes the book too, but only by a bounded amount: a funding time becomes a look only
when the funding that may be paid by the planned look could reach the floor
(:meth:`~domain.ports.BarMatcher.funding_at_risk` against the plan's slack).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

from domain.ledger import Ledger
from domain.ports import BarMatcher
from service_layer.history import CandleHistory
from service_layer.risk_gate import RiskGate

LOOK = 1
"""The phase of a look in the engine's event heap: after the decisions at a close, before the
fills at the bar opening then."""


class RiskLooks:
    """The pending look of one engine (at most one: the earliest needed).

    ``look`` is its time (a bar close, ms UTC) or None; ``stale`` says that the book changed
    since the plan, so that the look must first plan again (a full look only when the gate
    cannot say, or says the trip is at that close).
    """

    def __init__(self, risk: RiskGate, matcher: BarMatcher | None, tf_ms: int) -> None:
        self.risk = risk
        self.matcher = matcher
        self.tf_ms = tf_ms
        self.look: int | None = None
        self.stale = False

    def changed(self, t: int, heap: list, *, held: bool = True) -> None:
        """The book changed at ``t`` (a fill at a bar's open, orders decided at a close): plan
        again at the next close. A flat book (``held`` false) cannot reach the daily-loss
        floor: no look until a fill opens a position (the pending one is dropped)."""
        if not self.risk.watching:
            return
        if not held:
            self.look, self.stale = None, False
            return
        self.stale = True
        self.push(heap, t + self.tf_ms)

    def push(self, heap: list, at: int | None) -> None:
        """Look at ``at`` (ms UTC), unless a look is due sooner."""
        if at is None or (self.look is not None and self.look <= at):
            return
        self.look = at
        heapq.heappush(heap, (at, LOOK, "", 0))

    def take(self, t: int) -> bool | None:
        """Pop the look at ``t``: None when it is not the pending one (superseded), else
        whether it must plan again first (True) or look now (False)."""
        if t != self.look:
            return None
        self.look = None
        stale, self.stale = self.stale, False
        return stale

    def plan(
        self, t: int, ledger: Ledger, history: Mapping[str, CandleHistory]
    ) -> tuple[bool, int | None]:
        """Plan the next look from the book now, held after ``t`` (ms UTC): ``(False, None)``
        when the gate cannot (the caller looks instead), else ``(True, the look's time or
        None)`` for the caller to :meth:`push`."""
        account = ledger.account
        if not self.risk.replan(t, account.cash, account.positions):
            return False, None
        return True, self._funding_look(t, ledger, history)

    def _funding_look(
        self, t: int, ledger: Ledger, history: Mapping[str, CandleHistory]
    ) -> int | None:
        """The planned look, or the first funding time after ``t`` before it when the funding
        since the gate's last observation (settled or not) could reach the daily-loss floor."""
        risk, matcher = self.risk, self.matcher
        look = risk.next_look
        if look is None or matcher is None:
            return look
        since = min(t, risk.observed_at if risk.observed_at is not None else t)
        at_risk = 0.0
        for symbol in ledger.account.positions:
            bound = matcher.funding_at_risk(symbol, history[symbol].candles, since, look)
            if bound is None:
                at_risk = float("inf")
                break
            at_risk += bound
        if at_risk * (1.0 + 1e-9) < risk.slack:
            return look  # no funding payment can bring a trip sooner
        for symbol in ledger.account.positions:  # look again when it is paid
            funding = matcher.next_funding_time(symbol)
            if funding is not None and funding > t:
                look = min(look, funding)
        return look

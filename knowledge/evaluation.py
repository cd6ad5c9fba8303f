"""Router accuracy on a labelled question set (JSON lines), as the tests and the README report it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowledge.models import ThreadState
from knowledge.router import Router


@dataclass
class Report:
    total: int = 0
    area_total: int = 0
    area_hits: int = 0
    route_hits: int = 0
    entry_total: int = 0
    entry_hits: int = 0
    live_total: int = 0
    live_hits: int = 0
    lang_hits: int = 0
    specialist_total: int = 0
    specialist_hits: int = 0
    false_handoffs: int = 0
    misses: list[dict[str, Any]] = field(default_factory=list)

    @staticmethod
    def pct(hits: int, total: int) -> float:
        return 100.0 * hits / total if total else 0.0

    @property
    def area_accuracy(self) -> float:
        return self.pct(self.area_hits, self.area_total)

    @property
    def route_accuracy(self) -> float:
        return self.pct(self.route_hits, self.total)

    @property
    def entry_accuracy(self) -> float:
        return self.pct(self.entry_hits, self.entry_total)

    @property
    def live_accuracy(self) -> float:
        return self.pct(self.live_hits, self.live_total)

    @property
    def lang_accuracy(self) -> float:
        return self.pct(self.lang_hits, self.total)

    def summary(self) -> str:
        return (f"{self.total} questions: area {self.area_accuracy:.1f}% ({self.area_hits}/{self.area_total}), "
                f"route {self.route_accuracy:.1f}% ({self.route_hits}/{self.total}; specialists "
                f"{self.specialist_hits}/{self.specialist_total}, false hand-offs {self.false_handoffs}), "
                f"entry {self.entry_accuracy:.1f}% ({self.entry_hits}/{self.entry_total}), "
                f"live {self.live_accuracy:.1f}% ({self.live_hits}/{self.live_total}), "
                f"language {self.lang_accuracy:.1f}%")


def load_questions(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def evaluate(router: Router, rows: list[dict[str, Any]]) -> Report:
    """Scores each labelled row. Area counts where the row has an area label (the main letter or an
    accepted alternative); route counts on every row (a hand-off where none is due is a miss); entry and
    live count on the rows that name one."""
    rep = Report()
    for row in rows:
        r = router.route(row["q"], ThreadState())
        rep.total += 1
        ok = True
        if r.lang == row["lang"]:
            rep.lang_hits += 1
        if row.get("area"):
            rep.area_total += 1
            accepted = {row["area"], *row.get("alt_areas", [])}
            if r.area in accepted:
                rep.area_hits += 1
            else:
                ok = False
        if r.specialist == row.get("route"):
            rep.route_hits += 1
        else:
            ok = False
        if row.get("route"):
            rep.specialist_total += 1
            rep.specialist_hits += r.specialist == row["route"]
        elif r.specialist:
            rep.false_handoffs += 1
        if row.get("entry"):
            rep.entry_total += 1
            if r.entry == row["entry"]:
                rep.entry_hits += 1
            else:
                ok = False
        if row.get("live"):
            rep.live_total += 1
            if r.live == row["live"]:
                rep.live_hits += 1
            else:
                ok = False
        elif r.live:
            ok = False
        if not ok:
            rep.misses.append({"q": row["q"], "want": {k: row.get(k) for k in ("area", "route", "entry", "live")},
                               "got": {"area": r.area, "route": r.specialist, "entry": r.entry, "live": r.live},
                               "scores": r.scores})
    return rep

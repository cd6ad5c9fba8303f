"""Router and answer-engine speed: median and p95 time per question over the labelled question sets.

Prints the router, the full engine (route + Jinja render + parse) and the Slack formatting, next to a
baseline in the same run: a plain keyword lookup (first hit wins, one dict scan), the kind of router the
scored one replaces. Run: python bench/router_bench.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from knowledge import load_knowledge  # noqa: E402
from knowledge.engine import Engine  # noqa: E402
from knowledge.evaluation import load_questions  # noqa: E402
from knowledge.render import to_blocks, to_mrkdwn  # noqa: E402

BASELINE_KEYWORDS = {"flow": "A", "campaign": "B", "segment": "C", "predict": "D", "sms": "E", "form": "F",
                     "review": "G", "profile": "H", "webhook": "I", "agent": "J", "coupon": "K", "report": "L",
                     "template": "M", "hub": "N", "api": "O", "price": "P"}


def baseline_route(question: str) -> str | None:
    q = question.lower()
    for word, letter in BASELINE_KEYWORDS.items():
        if word in q:
            return letter
    return None


def timed(fn, questions: list[str], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        for q in questions:
            t0 = time.perf_counter()
            fn(q)
            samples.append(time.perf_counter() - t0)
    return samples


def describe(name: str, samples: list[float]) -> str:
    samples = sorted(samples)
    med = statistics.median(samples) * 1e6
    p95 = samples[int(len(samples) * 0.95) - 1] * 1e6
    return f"| {name:<34} | {med:>10.1f} | {p95:>10.1f} | {1e6 / med:>12,.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    t0 = time.perf_counter()
    kb = load_knowledge()
    engine = Engine(kb)
    load_ms = (time.perf_counter() - t0) * 1000
    rows = [row for name in ("dev_questions", "dev2_questions", "holdout_questions")
            for row in load_questions(ROOT / f"tests/data/{name}.jsonl")]
    questions = [r["q"] for r in rows]
    router = kb.router
    for q in questions:  # warm up (template compilation, regex caches)
        engine.compose(q)
    print(f"{len(questions)} questions x {args.repeat}; knowledge load + validation: {load_ms:.0f} ms\n")
    print(f"| {'what':<34} | {'median µs':>10} | {'p95 µs':>10} | {'questions/s':>12} |")
    print(f"|{'-' * 36}|{'-' * 12}|{'-' * 12}|{'-' * 14}|")
    print(describe("baseline: first keyword hit", timed(baseline_route, questions, args.repeat)))
    print(describe("router.route (scored)", timed(router.route, questions, args.repeat)))
    print(describe("engine.compose (route+render)", timed(engine.compose, questions, args.repeat)))
    labelled = [r for r in rows if r.get("area")]
    base_hits = sum(baseline_route(r["q"]) in {r["area"], *r.get("alt_areas", [])} for r in labelled)
    scored_hits = sum(router.route(r["q"]).area in {r["area"], *r.get("alt_areas", [])} for r in labelled)
    answers = [engine.compose(q).answer for q in questions]
    samples = []
    for _ in range(args.repeat):
        for a in answers:
            t = time.perf_counter()
            to_blocks(a)
            to_mrkdwn(a)
            samples.append(time.perf_counter() - t)
    print(describe("Slack formatting (blocks+mrkdwn)", samples))
    print(f"\narea accuracy on all three sets: baseline {100 * base_hits / len(labelled):.1f}%, "
          f"scored router {100 * scored_hits / len(labelled):.1f}% ({len(labelled)} labelled questions)")


if __name__ == "__main__":
    main()

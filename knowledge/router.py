"""The router: reads a free-text question and decides language, area, specialist, entry, role, goal and
live-lookup intent. Pure and deterministic: no network, no database, no clock.

Evidence is scored, not first-hit: every phrase in `data/vocabulary.toml` that appears adds its weight
to the areas, entries, specialists and intents it belongs to, concepts are shared between them, and the
thread's remembered area breaks ties when a follow-up carries little evidence of its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from knowledge.models import Route, ThreadState
from knowledge.text import Term, compile_term, detect_lang, normalize, term_matches

AREA_LETTERS = "ABCDEFGHIJKLMNOPQ"
ROLE_LETTERS = "ABCDEF"


@dataclass(frozen=True)
class Scored:
    """Something the router scores: an area, entry, specialist, topic or live intent."""

    id: str
    terms: tuple[Term, ...] = ()
    concepts: tuple[tuple[str, float], ...] = ()  # (concept name, weight)
    require: tuple[tuple[str, ...], ...] = ()  # each inner tuple: at least one of these concepts must match
    veto: tuple[str, ...] = ()  # any of these concepts matched: not eligible
    area: str | None = None
    kind: str | None = None
    min_score: float = 0.0
    force_area: bool = False  # a live intent that decides the area (stats questions are Reporting)


@dataclass
class Vocabulary:
    concepts: dict[str, tuple[Term, ...]] = field(default_factory=dict)
    masks: dict[str, tuple[str, ...]] = field(default_factory=dict)  # phrases hidden from one concept
    areas: dict[str, Scored] = field(default_factory=dict)
    entries: dict[str, Scored] = field(default_factory=dict)
    specialists: dict[str, Scored] = field(default_factory=dict)
    topics: dict[str, Scored] = field(default_factory=dict)
    live: dict[str, Scored] = field(default_factory=dict)
    roles: dict[str, tuple[Term, ...]] = field(default_factory=dict)
    menu_areas: dict[str, str] = field(default_factory=dict)  # normalized name -> letter
    menu_roles: dict[str, str] = field(default_factory=dict)  # normalized name -> role id
    role_letters: dict[str, str] = field(default_factory=dict)  # "A" -> "owner"
    commands: dict[str, str] = field(default_factory=dict)  # normalized phrase -> command
    settings: dict[str, float] = field(default_factory=dict)


def _terms(raw: list[str] | None, default_weight: float = 1.0) -> tuple[Term, ...]:
    """Compiles terms; a phrase listed twice counts once, at its highest weight."""
    best: dict[str, Term] = {}
    for text in raw or []:
        term = compile_term(text, default_weight)
        if term.text not in best or abs(term.weight) > abs(best[term.text].weight):
            best[term.text] = term
    return tuple(best.values())


def _scored(id_: str, spec: dict[str, Any], **extra: Any) -> Scored:
    require = tuple(tuple(r) if isinstance(r, list) else (r,) for r in spec.get("require", []))
    return Scored(id=id_, terms=_terms(spec.get("terms")),
                  concepts=tuple((k, float(v)) for k, v in spec.get("concepts", {}).items()),
                  require=require, veto=tuple(spec.get("veto", [])),
                  min_score=float(spec.get("min_score", 0.0)), force_area=bool(spec.get("force_area", False)),
                  **extra)


def build_vocabulary(vocab: dict[str, Any], areas: list[dict[str, Any]], roles: list[dict[str, Any]],
                     entry_kinds: dict[str, tuple[str, str]]) -> Vocabulary:
    """Compiles the vocabulary file. `entry_kinds` maps entry id -> (kind, area letter)."""
    v = Vocabulary(settings={k: float(x) for k, x in vocab.get("settings", {}).items()})
    v.concepts = {name: _terms(terms) for name, terms in vocab.get("concept", {}).items()}
    # "churn risk" is a predictive attribute, not customers churning: a mask hides such phrases from a concept.
    v.masks = {name: tuple(normalize(p) for p in phrases) for name, phrases in vocab.get("concept_mask", {}).items()}
    for letter, spec in vocab.get("area", {}).items():
        v.areas[letter] = _scored(letter, spec, area=letter)
    for entry_id, spec in vocab.get("entry", {}).items():
        kind, area = entry_kinds[entry_id]
        v.entries[entry_id] = _scored(entry_id, spec, area=area, kind=kind)
    for slug, spec in vocab.get("specialist", {}).items():
        v.specialists[slug] = _scored(slug, spec, area=spec.get("area"))
    for topic, spec in vocab.get("topic", {}).items():
        v.topics[topic] = _scored(topic, spec, area=spec.get("area"))
    for name, spec in vocab.get("live", {}).items():
        v.live[name] = _scored(name, spec, area=spec.get("area"))
    for role_id, spec in vocab.get("role", {}).items():
        v.roles[role_id] = _terms(spec.get("terms"))
    for area in areas:
        names = {area["letter"].lower(), area["id"].replace("_", " "), area["name"]["en"], area["name"]["zh"]}
        names.update(vocab.get("menu", {}).get("areas", {}).get(area["letter"], []))
        for name in names:
            v.menu_areas[_menu_key(name)] = area["letter"]
    for role in roles:
        v.role_letters[role["letter"]] = role["id"]
        names = {role["name"]["en"], role["name"]["zh"]}
        names.update(vocab.get("menu", {}).get("roles", {}).get(role["id"], []))
        for name in names:
            v.menu_roles[_menu_key(name)] = role["id"]
    for command, phrases in vocab.get("commands", {}).items():
        for phrase in phrases:
            v.commands[_menu_key(phrase)] = command
    return v


_MENU_STRIP = re.compile(r"^[\s\-–—:：)）(（.。!！?？'\"`*_]+|[\s\-–—:：)）(（.。!！?？'\"`*_]+$")


def _menu_key(text: str) -> str:
    return _MENU_STRIP.sub("", normalize(text))


# "I'm a developer", "as an agency", "我是店主": statements of role. Kept as patterns because they read
# the sentence's shape, not just a word ("developer experience" is no role statement).
_SELF = r"(?:i'?m|i am|im|we'?re|we are|as|speaking as|i work as|i work at|i run|we run|i own|we own)\s+(?:an?\s+|the\s+|one of the\s+)?"
_ZH_SELF = r"(?:我是|我们是|作为|本人是|我在|我做|我负责|我们做)"

_GOAL_PATTERNS = [
    re.compile(r"(?:we|i)\s+(?:want|need|would like|'d like|are trying|am trying|'re trying|'m trying|hope)\s+to\s+([^.?!\n]{4,160})"),
    re.compile(r"(?:our|my)\s+goal\s+(?:is|:)\s+(?:to\s+)?([^.?!\n]{4,160})"),
    re.compile(r"(?:trying|looking)\s+to\s+([^.?!\n]{4,160})"),
    re.compile(r"(?:目标是|目的是|我们想|我想|想要|希望|打算)([^。？！?!\n]{2,80})"),
]


class Router:
    """Scores a question against the vocabulary. Build once, call many times."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.v = vocab
        s = vocab.settings
        self.context_bonus = s.get("context_bonus", 1.5)
        self.area_min = s.get("area_min", 1.0)
        self.entry_min = s.get("entry_min", 2.0)
        self.specialist_min = s.get("specialist_min", 2.5)
        self.specialist_margin = s.get("specialist_margin", 0.0)
        self.live_min = s.get("live_min", 2.0)
        self.topic_min = s.get("topic_min", 2.0)

    # -- evidence ---------------------------------------------------------------------------------
    def _concepts(self, text: str) -> dict[str, float]:
        found: dict[str, float] = {}
        for name, terms in self.v.concepts.items():
            seen = text
            for phrase in self.v.masks.get(name, ()):
                seen = seen.replace(phrase, " ")
            best = 0.0
            for term in terms:
                if term.weight > best and term_matches(term, seen):
                    best = term.weight
            if best:
                found[name] = best
        return found

    @staticmethod
    def _score(item: Scored, text: str, concepts: dict[str, float]) -> float:
        if any(c in concepts for c in item.veto):
            return 0.0
        for group in item.require:
            if not any(c in concepts for c in group):
                return 0.0
        score = 0.0
        for term in item.terms:
            if term_matches(term, text):
                score += term.weight
        for name, weight in item.concepts:
            if name in concepts:
                score += weight * concepts[name]
        return score if score >= item.min_score else 0.0

    def _best(self, items: dict[str, Scored], text: str, concepts: dict[str, float]) -> list[tuple[str, float]]:
        scored = [(key, self._score(item, text, concepts)) for key, item in items.items()]
        return sorted((p for p in scored if p[1] > 0), key=lambda p: (-p[1], p[0]))

    def detect_role(self, text: str) -> str | None:
        for role_id, terms in self.v.roles.items():
            for term in terms:
                if term_matches(term, text):
                    return role_id
        return None

    @staticmethod
    def detect_goal(original: str) -> str | None:
        text = " ".join(original.split())
        lowered = text.lower()
        for pattern in _GOAL_PATTERNS:
            m = pattern.search(lowered)
            if m:
                start, end = m.span(1)
                goal = text[start:end].strip(" ,，、:;")
                if len(goal) >= 2:
                    return goal[:160]
        return None

    # -- menu answers -----------------------------------------------------------------------------
    def menu_pick(self, text: str, state: ThreadState) -> tuple[str, str] | None:
        """("area", letter) or ("role", role id) when the whole message is a menu answer."""
        key = _menu_key(text)
        if not key or len(key) > 40:
            return None
        for prefix, kind in (("area ", "area"), ("role ", "role"), ("区域", "area"), ("模块", "area"),
                             ("角色", "role")):
            if key.startswith(prefix):
                rest = _menu_key(key[len(prefix):])
                if kind == "area" and rest.upper() in AREA_LETTERS and len(rest) == 1:
                    return ("area", rest.upper())
                if kind == "role" and rest.upper() in ROLE_LETTERS and len(rest) == 1:
                    return ("role", self.v.role_letters[rest.upper()])
        if len(key) == 1 and key.upper() in AREA_LETTERS:
            letter = key.upper()
            # The guide asks for the area first, then the role: once an area is known and the role is
            # not, a bare A-F answers the role question.
            if state.area and not state.role and letter in ROLE_LETTERS:
                return ("role", self.v.role_letters[letter])
            return ("area", letter)
        if key in self.v.menu_areas:
            return ("area", self.v.menu_areas[key])
        if key in self.v.menu_roles:
            return ("role", self.v.menu_roles[key])
        return None

    # -- the decision -----------------------------------------------------------------------------
    def route(self, question: str, state: ThreadState | None = None) -> Route:
        state = state or ThreadState()
        text = normalize(question)
        lang = state.lang if state.lang_pinned and state.lang else (detect_lang(question) or state.lang or "en")

        command = self.v.commands.get(_menu_key(question))
        if command:
            return Route(lang=lang, command=command)  # type: ignore[arg-type]
        pick = self.menu_pick(question, state)
        if pick is not None:
            kind, value = pick
            if kind == "area":
                return Route(lang=lang, area=value, menu="area", confidence=1.0)  # type: ignore[arg-type]
            return Route(lang=lang, area=state.area, role=value, menu="role", confidence=1.0)  # type: ignore[arg-type]

        concepts = self._concepts(text)
        role = self.detect_role(text)
        goal = self.detect_goal(question)

        area_scores = dict(self._best(self.v.areas, text, concepts))
        direct = dict(area_scores)  # the areas' own evidence, before entries and topics add theirs
        entries = self._best(self.v.entries, text, concepts)
        for entry_id, score in entries:  # an entry's evidence is evidence for its area
            letter = self.v.entries[entry_id].area
            if letter:
                area_scores[letter] = area_scores.get(letter, 0.0) + 0.5 * score
        topics = self._best(self.v.topics, text, concepts)
        for topic_id, score in topics:
            letter = self.v.topics[topic_id].area
            if letter:
                area_scores[letter] = area_scores.get(letter, 0.0) + 0.5 * score
        live = self._best(self.v.live, text, concepts)
        live_name = live[0][0] if live and live[0][1] >= self.live_min else None
        if live_name:
            letter = self.v.live[live_name].area
            if letter:
                area_scores[letter] = area_scores.get(letter, 0.0) + 1.0

        evidence = sum(area_scores.values())
        if state.area:
            # A follow-up stays in the thread's area unless the new message clearly points elsewhere.
            area_scores[state.area] = area_scores.get(state.area, 0.0) + self.context_bonus
        ranked = sorted(area_scores.items(), key=lambda p: (-p[1], p[0]))
        area = ranked[0][0] if ranked and ranked[0][1] >= self.area_min else None
        top = ranked[0][1] if ranked else 0.0
        second = ranked[1][1] if len(ranked) > 1 else 0.0
        confidence = 0.0 if not area else min(1.0, (top - second + 0.5) / (top + 0.5)) * min(1.0, top / 3)

        specialists = self._best(self.v.specialists, text, concepts)
        specialist = None
        if specialists and specialists[0][1] >= self.specialist_min:
            klaviyo_strength = area_scores.get(area, 0.0) if area else 0.0
            if state.area and area == state.area:
                klaviyo_strength -= self.context_bonus
            klaviyo_mentioned = "klaviyo" in concepts
            margin = self.specialist_margin + (1.5 if klaviyo_mentioned else 0.0)
            if specialists[0][1] >= klaviyo_strength * 0.5 + margin:
                specialist = specialists[0][0]

        entry = entry_kind = None
        direct_top = max(direct.values(), default=0.0)
        # The best entry whose own area has real evidence in the question (an entry about carts is not the
        # answer to "does the Magento integration pick up carts?", where integration evidence dominates).
        candidates = [e for e, score in entries if score >= self.entry_min
                      and direct.get(self.v.entries[e].area or "", 0.0) >= 0.4 * direct_top]
        if candidates and not specialist:
            entry = candidates[0]
            entry_kind = self.v.entries[entry].kind
            # Entries are specific: the entry's area wins over a broader area that outscored it.
            area = self.v.entries[entry].area or area
        topic = topics[0][0] if topics and topics[0][1] >= self.topic_min and not entry else None
        if specialist and evidence < 1.5:
            area = None
        if specialist and self.v.specialists[specialist].area and "klaviyo" in concepts:
            area = self.v.specialists[specialist].area
        if live_name and self.v.live[live_name].force_area:
            area = self.v.live[live_name].area

        return Route(lang=lang, area=area, specialist=specialist, entry=entry, entry_kind=entry_kind,  # type: ignore[arg-type]
                     topic=topic, role=role, goal=goal, live=live_name,
                     confidence=round(confidence, 3), scores=tuple((k, round(s, 2)) for k, s in ranked[:4]))

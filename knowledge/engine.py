"""The answer engine: question + thread state -> (route, channel-neutral answer, new state).

It follows the guide's conversation rules: answer first with the assumptions stated, ask at most two
questions at the end and only about what is still unknown (area, role, goal), hand over to a sibling
specialist with a one-line reason while still giving the Klaviyo-specific part, surface the gotchas
where they bite, and write for the asker's role (click-paths for operators, endpoints for developers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from knowledge import KnowledgeBase, default_knowledge
from knowledge.markup import parse_markup
from knowledge.models import Answer, BadInput, Handoff, Link, Route, ThreadState
from knowledge.text import cjk_count

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
MAX_QUESTION_CHARS = 4000
MAX_QUESTIONS = 2
_SHOPIFY_WORDS = re.compile(r"shopify|bigcommerce|woocommerce|magento|adobe commerce|salesforce commerce", re.I)
_REGION_WORDS = re.compile(r"\bus\b|u\.s\.|united states|america|canad|uk\b|australia|美国|加拿大|英国|澳洲", re.I)


_STOP = frozenset("""the and for you your our can how what does do did with this that from into have has are was
were will would should could about when where which who why its it's not but any all out get got use using set
there their them they then than just like want need make more most some such very also only into over klaviyo
flow flows send sent email emails""".split())
_WORD = re.compile(r"[a-z][a-z0-9]+")
_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")


def keywords(text: str) -> set[str]:
    """Content words of a question: English words (crudely stemmed) and Chinese character pairs."""
    lowered = text.lower()
    words = set()
    for w in _WORD.findall(lowered):
        if len(w) < 3 or w in _STOP:
            continue
        for suffix in ("ing", "es", "ed", "s"):
            if w.endswith(suffix) and len(w) - len(suffix) >= 4:
                w = w[: -len(suffix)]
                break
        words.add(w)
    for run in _CJK_RUN.findall(text):
        words.update(run[i:i + 2] for i in range(len(run) - 1))
    return words


def _rank_points(modules: list[dict[str, Any]], words: set[str], kb: KnowledgeBase, letter: str,
                 lang: str) -> list[dict[str, Any]]:
    """The module points that share words with the question, best first (matched on both languages)."""
    if not words:
        return []
    scored = []
    for mod in modules:
        raw_points = kb.modules[mod["id"]]["point"]
        for view_point, raw_point in zip(mod["point"], raw_points):
            text = " ".join(f"{raw_point['title'][lg]} {raw_point['text'][lg]}" for lg in ("en", "zh"))
            point_words = keywords(text)
            score = len(words & point_words) + 2 * len(words & keywords(raw_point["title"]["en"] + " "
                                                                        + raw_point["title"]["zh"]))
            if score:
                scored.append((score, view_point))
    scored.sort(key=lambda p: -p[0])
    return [p for _, p in scored]


def slack_escape(text: str) -> str:
    """Escapes the three characters Slack treats as markup, so user text cannot form mentions or links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def build_environment(templates_dir: Path = TEMPLATES_DIR) -> jinja2.Environment:
    """The one Jinja environment: strict about undefined names, output is markup, not HTML."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir)), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, autoescape=False, keep_trailing_newline=False,
                             auto_reload=False)  # templates are part of the release: no stat() per answer
    env.filters["slack_escape"] = slack_escape
    env.filters["oneline"] = lambda s: " ".join(str(s).split())
    return env


def clean_question(text: str | None) -> str:
    """Returns the question ready for routing, or raises BadInput with a message for the user."""
    if text is None or not text.strip():
        raise BadInput("The question is empty. Ask me anything about Klaviyo, e.g. "
                       "\"How do I set up an abandoned cart flow?\" (or `help` for the menu).")
    if "\x00" in text or text.count("\ufffd") > max(3, len(text) // 20):
        raise BadInput("That looks like binary data, not a question. Please type or paste text.")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\n\r\t")
    if controls > max(3, len(text) // 20):
        raise BadInput("That looks like binary data, not a question. Please type or paste text.")
    if len(text) > MAX_QUESTION_CHARS:
        raise BadInput(f"That message is {len(text):,} characters long; I read questions up to "
                       f"{MAX_QUESTION_CHARS:,}. Please send the key part (the error, the setting, the goal).")
    return " ".join(text.split())


@dataclass(frozen=True)
class Composed:
    route: Route
    answer: Answer
    state: ThreadState


class Engine:
    """Builds answers from the knowledge base and the Jinja templates."""

    def __init__(self, kb: KnowledgeBase | None = None, env: jinja2.Environment | None = None) -> None:
        self.kb = kb or default_knowledge()
        self.env = env or build_environment()
        assert self.kb.router is not None
        self.router = self.kb.router

    # -- public -----------------------------------------------------------------------------------
    def compose(self, question: str, state: ThreadState | None = None, *, turn: int = 0) -> Composed:
        """Answers one message. `turn` is how many messages the thread had before this one."""
        state = state or ThreadState()
        text = clean_question(question)
        route = self.router.route(text, state)
        lang = route.lang
        if route.command == "reset":
            new_state = ThreadState(lang=state.lang if state.lang_pinned else lang, lang_pinned=state.lang_pinned)
            answer = self._render("reset.md.j2", lang, {}, route)
            return Composed(route, answer, new_state)
        if route.command == "help":
            return Composed(route, self.menu(lang, route), state.merged(lang=lang))

        new_state = state.merged(lang=None if state.lang_pinned else lang, area=route.area, role=route.role,
                                 goal=route.goal)
        role_only = bool(route.role) and not (route.entry or route.topic or route.live or route.specialist) \
            and route.area in (None, state.area) and len(text.split()) + cjk_count(text) // 3 <= 8
        if route.menu == "role" or role_only:
            answer = self._role_ack(route, new_state)
        elif route.live:
            answer = self._live_fallback(route, new_state)
        elif route.entry:
            new_state = new_state.merged(last_entry=route.entry)
            answer = self._entry_answer(route.entry, route, new_state, text)
        elif route.specialist:
            answer = self._handoff_answer(route, new_state)
        elif route.topic:
            answer = self._topic_answer(route.topic, route, new_state)
        elif new_state.area and (route.area or route.menu):
            answer = self._area_answer(new_state.area, route, new_state, "" if route.menu else text)
        else:
            answer = self.menu(lang, route, unclear=True)
        answer = self._finish(answer, route, state, new_state, text, turn)
        return Composed(route, answer, new_state)

    def menu(self, lang: str, route: Route | None = None, *, unclear: bool = False) -> Answer:
        ctx = {"areas": [self._area_view(letter, lang) for letter in sorted(self.kb.areas)],
               "roles": self.kb.view(lang)["roles"]["role"], "unclear": unclear,
               "sales_do": self._specialist_view("sales-do", lang)}
        return self._render("menu.md.j2", lang, ctx, route or Route(lang=lang))  # type: ignore[arg-type]

    def render_entry(self, entry_id: str, lang: str, role: str | None = None) -> Answer:
        """Renders one runbook / example / troubleshooting entry (used by tests and the Slack buttons)."""
        route = Route(lang=lang, entry=entry_id, area=self.kb.entries[entry_id][1]["area"])  # type: ignore[arg-type]
        return self._entry_answer(entry_id, route, ThreadState(lang=lang, role=role), "")  # type: ignore[arg-type]

    def template_names(self) -> list[str]:
        return sorted(n for n in self.env.list_templates() if n.endswith(".j2") and "/_" not in n)

    # -- pieces -----------------------------------------------------------------------------------
    def _style(self, state: ThreadState) -> str:
        if state.role and state.role in self.kb.roles:
            return str(self.kb.roles[state.role].get("style", "ui"))
        return "ui"

    def _area_view(self, letter: str, lang: str) -> dict[str, Any]:
        return self.kb.localized("areas", "letter", letter, lang, "area")

    def _specialist_view(self, slug: str, lang: str) -> dict[str, Any]:
        return self.kb.localized("specialists", "slug", slug, lang, "specialist")

    def _gotchas_for(self, ids: list[str], area: str | None, lang: str, limit: int = 2) -> list[dict[str, Any]]:
        chosen = list(dict.fromkeys(ids))
        if area:
            chosen += [g["id"] for g in self.kb.raw["gotchas"]["gotcha"] if area in g.get("areas", [])
                       and g["id"] not in chosen]
        view = {g["id"]: g for g in self.kb.view(lang)["gotchas"]["gotcha"]}
        return [view[g] for g in chosen[:limit]]

    def _base_ctx(self, lang: str, state: ThreadState) -> dict[str, Any]:
        return {"lang": lang, "t": self.kb.labels(lang), "style": self._style(state),
                "role": state.role, "overview": self.kb.view(lang)["overview"]["overview"]}

    def _render(self, template: str, lang: str, ctx: dict[str, Any], route: Route,
                state: ThreadState | None = None) -> Answer:
        full = self._base_ctx(lang, state or ThreadState())
        full.update(ctx)
        text = self.env.get_template(template).render(**full)
        title, intro, sections = parse_markup(text)
        return Answer(lang=lang, title=title, intro=intro, sections=sections,  # type: ignore[arg-type]
                      area=route.area, route=route.specialist, entry=route.entry, role=route.role,
                      goal=route.goal, live=route.live)

    def _entry_answer(self, entry_id: str, route: Route, state: ThreadState, text: str) -> Answer:
        kind, entry = self.kb.entry(entry_id, route.lang)
        folder = {"runbook": "runbooks", "example": "examples", "troubleshooting": "troubleshooting"}[kind]
        ctx = {"entry": entry, "gotchas": self._gotchas_for(entry.get("gotchas", []), None, route.lang),
               "related": self._related(entry.get("related", []), route.lang)}
        return self._render(f"{folder}/{entry_id}.md.j2", route.lang, ctx, route, state)

    def _related(self, ids: list[str], lang: str) -> list[str]:
        names = []
        for rid in ids[:4]:
            if rid in self.kb.entries:
                names.append(self.kb.entry(rid, lang)[1]["title"])
            elif rid in self.kb.modules:
                names.append(self.kb.localized("modules", "id", rid, lang, "module")["name"])
        return names

    def _module_views(self, letter: str, lang: str) -> list[dict[str, Any]]:
        area = self.kb.areas[letter]
        return [self.kb.localized("modules", "id", mid, lang, "module") for mid in area.get("modules", [])]

    def _area_answer(self, letter: str, route: Route, state: ThreadState, text: str = "") -> Answer:
        area = self.kb.areas[letter]
        topics = area.get("topics", [])
        if not area.get("modules") and topics:
            return self._topic_answer(topics[0], route, state)
        words = keywords(text)
        modules = self._module_views(letter, route.lang)
        hits = _rank_points(modules, words, self.kb, letter, route.lang)
        # A question that sits between two areas ("can a flow send WhatsApp?") also gets the best points
        # of the runner-up area.
        also = None
        if len(route.scores) > 1 and route.scores[1][1] >= 0.75 * route.scores[0][1] and route.scores[1][0] != letter:
            second = route.scores[1][0]
            second_hits = _rank_points(self._module_views(second, route.lang), words, self.kb, second, route.lang)
            if second_hits:
                also = {"area": self._area_view(second, route.lang), "points": second_hits[:2]}
        ctx = {"area": self._area_view(letter, route.lang), "modules": modules, "hits": hits[:3], "also": also,
               "gotchas": self._gotchas_for([], letter, route.lang)}
        return self._render("modules/module.md.j2", route.lang, ctx, route, state)

    def _topic_answer(self, topic: str, route: Route, state: ThreadState) -> Answer:
        view = self.kb.view(route.lang)
        ctx: dict[str, Any] = {"pricing": view["pricing"]["pricing"], "api": view["api"]["api"],
                               "integrations": view["integrations"]["category"],
                               "objects": view["data_model"]["object"],
                               "gotchas": self._gotchas_for([], route.area, route.lang)}
        name = {"billing": "pricing"}.get(topic, topic)
        ctx["focus_billing"] = topic == "billing"
        return self._render(f"topics/{name}.md.j2", route.lang, ctx, route, state)

    def _handoff_answer(self, route: Route, state: ThreadState) -> Answer:
        spec = self._specialist_view(route.specialist or "", route.lang)
        modules = self._module_views(route.area, route.lang) if route.area else []
        ctx = {"specialist": spec, "modules": modules,
               "area": self._area_view(route.area, route.lang) if route.area else None}
        return self._render("handoff.md.j2", route.lang, ctx, route, state)

    def _live_fallback(self, route: Route, state: ThreadState) -> Answer:
        meanwhile = {"predictive_readiness": "predictions_missing",
                     "flow_audit": "flow_emails_after_conversion"}.get(route.live or "")
        entry = self.kb.entry(meanwhile, route.lang)[1] if meanwhile else None
        ctx = {"live": route.live, "entry": entry,
               "reporting": self.kb.localized("modules", "id", "reporting", route.lang, "module")}
        return self._render("live.md.j2", route.lang, ctx, route, state)

    def _role_ack(self, route: Route, state: ThreadState) -> Answer:
        role_name = self.kb.localized("roles", "id", route.role or "", route.lang, "role")["name"]
        if state.last_entry:
            answer = self._entry_answer(state.last_entry, route, state, "")
            intro = self.kb.labels(route.lang)["role_set"].format(role=role_name)
            return Answer(**{**answer.__dict__, "intro": intro, "entry": state.last_entry})
        if state.area:
            answer = self._area_answer(state.area, route, state)
            intro = self.kb.labels(route.lang)["role_set"].format(role=role_name)
            return Answer(**{**answer.__dict__, "intro": intro})
        ctx = {"role_name": role_name}
        return self._render("role_set.md.j2", route.lang, ctx, route, state)

    def _finish(self, answer: Answer, route: Route, before: ThreadState, state: ThreadState, text: str,
                turn: int) -> Answer:
        """Adds assumptions, the closing questions, the hand-off and links."""
        lang = route.lang
        labels = self.kb.labels(lang)
        assume = labels["assume"]
        ask = labels["ask"]
        assumptions: list[str] = []
        questions: list[str] = []
        area_name = self._area_view(state.area, lang)["name"] if state.area else None
        is_menu = route.menu is not None or (answer.area is None and not route.specialist and not route.live)

        if area_name and route.menu is None and not route.entry and route.confidence < 0.6 \
                and before.area != state.area:
            assumptions.append(assume["area"].format(area=area_name))
        if state.role:
            if route.menu != "role" and not route.role:
                role_name = self.kb.localized("roles", "id", state.role, lang, "role")["name"]
                assumptions.append(assume["role_known"].format(role=role_name))
        elif not is_menu and route.topic not in ("api", "overview", "pricing", "billing"):
            assumptions.append(assume["role_ui"])
        if route.entry in ("abandoned_cart_flow", "abandoned_cart_sms_fallback", "flow_emails_after_conversion") \
                and not _SHOPIFY_WORDS.search(text):
            assumptions.append(assume["shopify"])
        if route.entry in ("sms_with_email", "sms_not_delivering", "abandoned_cart_sms_fallback") \
                and not _REGION_WORDS.search(text):
            assumptions.append(assume["sms_region"])
        if route.topic in ("pricing", "billing"):
            pricing = self.kb.view(lang)["pricing"]["pricing"]
            assumptions.append(assume["pricing"].format(as_of=pricing["as_of_label"]))

        # Questions only about what is still unknown, most critical first, never more than two.
        if not route.specialist and not route.command:
            if not state.area and route.menu is None:
                questions.append(ask["area"])
            vague = route.menu == "area" or (not route.entry and not route.topic and not route.live
                                             and route.confidence < 0.3)
            if not state.goal and vague and state.area:
                questions.append(ask["goal"])
            if not state.role and turn == 0 and route.menu != "role" and (route.entry or route.area):
                questions.append(ask["role"])
        handoff = None
        if route.specialist:
            spec = self._specialist_view(route.specialist, lang)
            handoff = Handoff(slug=route.specialist, command=spec["command"], reason=spec["reason"])
        links: list[Link] = []
        if route.topic in ("api",) or (route.entry == "api_custom_data_sync") or self._style(state) == "api":
            links.append(Link(labels["docs"], self.kb.view(lang)["api"]["api"]["docs_url"]))
        if route.topic in ("pricing", "billing"):
            links.append(Link(labels["pricing_page"], self.kb.view(lang)["overview"]["overview"]["pricing_url"]))
        return Answer(**{**answer.__dict__, "assumptions": tuple(assumptions),
                         "questions": tuple(questions[:MAX_QUESTIONS]), "handoff": handoff, "links": tuple(links),
                         "area": state.area if not route.specialist or route.area else None,
                         "route": route.specialist, "entry": route.entry or answer.entry,
                         "role": state.role, "goal": state.goal, "live": route.live})


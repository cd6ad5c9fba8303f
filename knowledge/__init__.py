"""The bot's knowledge: bilingual data files, validated at load, plus the router built from them."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from knowledge.router import AREA_LETTERS, Router, build_vocabulary

DATA_DIR = Path(__file__).resolve().parent / "data"
LANGS = ("en", "zh")
ENTRY_FILES = {"runbook": ("runbooks.toml", "runbook"), "example": ("examples.toml", "example"),
               "troubleshooting": ("troubleshooting.toml", "problem")}
GOTCHA_IDS = ("billing_active_profiles", "advanced_kdp_enterprise", "webhooks_flow_vs_system", "sms_compliance",
              "predictive_data")


class KnowledgeError(ValueError):
    """The data files are inconsistent; raised at start-up, never at answer time."""


def is_localized(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == set(LANGS)


def localize(value: Any, lang: str) -> Any:
    """Returns `value` with every {en, zh} pair replaced by the text in `lang`."""
    if is_localized(value):
        return value[lang]
    if isinstance(value, dict):
        return {k: localize(v, lang) for k, v in value.items()}
    if isinstance(value, list):
        return [localize(v, lang) for v in value]
    return value


@dataclass
class KnowledgeBase:
    raw: dict[str, Any]
    areas: dict[str, dict[str, Any]] = field(default_factory=dict)
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    specialists: dict[str, dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)
    gotchas: dict[str, dict[str, Any]] = field(default_factory=dict)
    entries: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)  # id -> (kind, data)
    router: Router | None = None
    _views: dict[str, dict[str, Any]] = field(default_factory=dict)

    def view(self, lang: str) -> dict[str, Any]:
        """All data with text in one language (computed once per language)."""
        if lang not in self._views:
            self._views[lang] = localize(self.raw, lang)
        return self._views[lang]

    def labels(self, lang: str) -> dict[str, Any]:
        return self.view(lang)["labels"]["labels"]

    def entry(self, entry_id: str, lang: str) -> tuple[str, dict[str, Any]]:
        kind, _ = self.entries[entry_id]
        file_key, table = ENTRY_FILES[kind]
        for item in self.view(lang)[file_key.removesuffix(".toml")][table]:
            if item["id"] == entry_id:
                return kind, item
        raise KeyError(entry_id)

    def localized(self, collection: str, key: str, key_value: str, lang: str, table: str) -> dict[str, Any]:
        for item in self.view(lang)[collection][table]:
            if item[key] == key_value:
                return item
        raise KeyError(key_value)


def _load_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise KnowledgeError(f"{path.name}: {exc}") from None


def _check_localized(value: Any, where: str) -> None:
    if isinstance(value, dict):
        if set(value) & set(LANGS):
            if not is_localized(value):
                raise KnowledgeError(f"{where}: a localized text needs exactly 'en' and 'zh'")
            for lang in LANGS:
                if not isinstance(value[lang], str) or not value[lang].strip():
                    raise KnowledgeError(f"{where}: empty {lang} text")
            return
        for k, v in value.items():
            _check_localized(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_localized(v, f"{where}[{i}]")


def load_knowledge(data_dir: Path = DATA_DIR) -> KnowledgeBase:
    """Loads and validates every data file; raises KnowledgeError naming the first problem found."""
    raw = {path.stem: _load_file(path) for path in sorted(data_dir.glob("*.toml"))}
    required = ["areas", "roles", "specialists", "modules", "gotchas", "labels", "vocabulary", "pricing", "api",
                "integrations", "data_model", "overview", *(f.removesuffix(".toml") for f, _ in ENTRY_FILES.values())]
    missing = [name for name in required if name not in raw]
    if missing:
        raise KnowledgeError(f"missing data files: {', '.join(missing)}")
    for name, content in raw.items():
        if name != "vocabulary":
            _check_localized(content, name)

    kb = KnowledgeBase(raw=raw)
    kb.areas = {a["letter"]: a for a in raw["areas"]["area"]}
    if "".join(sorted(kb.areas)) != AREA_LETTERS:
        raise KnowledgeError(f"areas.toml must define A-Q exactly once, got {''.join(sorted(kb.areas))}")
    kb.roles = {r["id"]: r for r in raw["roles"]["role"]}
    kb.specialists = {s["slug"]: s for s in raw["specialists"]["specialist"]}
    kb.modules = {m["id"]: m for m in raw["modules"]["module"]}
    kb.gotchas = {g["id"]: g for g in raw["gotchas"]["gotcha"]}
    for kind, (file_name, table) in ENTRY_FILES.items():
        for item in raw[file_name.removesuffix(".toml")][table]:
            if item["id"] in kb.entries:
                raise KnowledgeError(f"duplicate entry id {item['id']}")
            kb.entries[item["id"]] = (kind, item)

    for letter, area in kb.areas.items():
        for module_id in area.get("modules", []):
            if module_id not in kb.modules:
                raise KnowledgeError(f"area {letter} names unknown module {module_id}")
    for gotcha_id in GOTCHA_IDS:
        if gotcha_id not in kb.gotchas:
            raise KnowledgeError(f"gotchas.toml lacks {gotcha_id}")
    for entry_id, (_, item) in kb.entries.items():
        if item["area"] not in kb.areas:
            raise KnowledgeError(f"entry {entry_id} names unknown area {item['area']}")
        for gotcha_id in item.get("gotchas", []):
            if gotcha_id not in kb.gotchas:
                raise KnowledgeError(f"entry {entry_id} names unknown gotcha {gotcha_id}")
        for rel in item.get("related", []):
            if rel not in kb.entries and rel not in kb.modules:
                raise KnowledgeError(f"entry {entry_id} names unknown related id {rel}")

    vocab = raw["vocabulary"]
    for entry_id in vocab.get("entry", {}):
        if entry_id not in kb.entries:
            raise KnowledgeError(f"vocabulary.toml scores unknown entry {entry_id}")
    for entry_id in kb.entries:
        if entry_id not in vocab.get("entry", {}):
            raise KnowledgeError(f"vocabulary.toml has no evidence for entry {entry_id}")
    for slug in vocab.get("specialist", {}):
        if slug not in kb.specialists:
            raise KnowledgeError(f"vocabulary.toml scores unknown specialist {slug}")
    concept_names = set(vocab.get("concept", {}))
    for section in ("area", "entry", "specialist", "topic", "live"):
        for key, spec in vocab.get(section, {}).items():
            used = set(spec.get("concepts", {})) | set(spec.get("veto", []))
            used |= {c for group in spec.get("require", []) for c in (group if isinstance(group, list) else [group])}
            unknown = used - concept_names
            if unknown:
                raise KnowledgeError(f"vocabulary.toml {section}.{key} uses unknown concepts {sorted(unknown)}")
    entry_kinds = {eid: (kind, item["area"]) for eid, (kind, item) in kb.entries.items()}
    kb.router = Router(build_vocabulary(vocab, raw["areas"]["area"], raw["roles"]["role"], entry_kinds))
    return kb


@lru_cache(maxsize=1)
def default_knowledge() -> KnowledgeBase:
    """The packaged knowledge, loaded once per process."""
    return load_knowledge()

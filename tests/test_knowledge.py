"""Coverage of the help guide's knowledge, in both languages, and every template rendering."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import jinja2
import pytest

from knowledge import DATA_DIR, KnowledgeError, load_knowledge
from knowledge.engine import TEMPLATES_DIR, Engine, build_environment

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def kb():
    return load_knowledge()


@pytest.fixture(scope="module")
def engine(kb):
    return Engine(kb)


def test_guide_coverage_counts(kb):
    assert sorted(kb.areas) == list("ABCDEFGHIJKLMNOPQ")
    assert sorted(r["letter"] for r in kb.roles.values()) == list("ABCDEF")
    assert set(kb.specialists) == {"sales-email-marketing", "sales-deliverability", "sales-email-tracking",
                                   "sales-integration", "sales-checkout", "sales-customerio", "sales-mailchimp",
                                   "sales-do"}
    assert set(kb.modules) == {"flows", "campaigns", "segmentation", "predictive", "multichannel", "forms",
                               "reviews", "kdp", "advanced_kdp", "ai_agents", "catalogs", "coupons", "reporting",
                               "templates"}
    kinds = {}
    for entry_id, (kind, _) in kb.entries.items():
        kinds.setdefault(kind, set()).add(entry_id)
    assert kinds["runbook"] == {"abandoned_cart_flow", "predictive_segments", "shopify_integration",
                                "sms_with_email", "api_custom_data_sync"}
    assert kinds["example"] == {"abandoned_cart_sms_fallback", "welcome_series_sms_consent",
                                "predictive_churn_segment"}
    assert kinds["troubleshooting"] == {"predictions_missing", "flow_emails_after_conversion", "sms_not_delivering"}
    assert set(kb.gotchas) == {"billing_active_profiles", "advanced_kdp_enterprise", "webhooks_flow_vs_system",
                               "sms_compliance", "predictive_data"}
    assert len(kb.raw["data_model"]["object"]) == 14
    assert len(kb.raw["integrations"]["category"]) == 9
    assert [p["id"] for p in kb.raw["pricing"]["pricing"]["plan"]] == ["free", "email", "email_sms", "advanced_kdp"]
    assert kb.raw["pricing"]["pricing"]["as_of"] == "2026-03"
    assert len(kb.raw["api"]["api"]["auth"]) == 3
    assert len(kb.raw["api"]["api"]["base_url"]) == 2


def test_key_figures_carried_over(kb):
    en = str(kb.view("en"))
    for figure in ["500+", "180+", "10DLC", "Feb 2025", "$20/mo", "$35/mo", "1,250 SMS", "HMAC-SHA256",
                   "Klaviyo-API-Key", "2012", "KVYO", "193K", "7.3B", "65%", "/api/profiles/", "/client/events/"]:
        assert figure in en, figure


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_item_exists_in_both_languages(kb, lang):
    view = kb.view(lang)
    items = [*view["areas"]["area"], *view["roles"]["role"], *view["specialists"]["specialist"],
             *view["modules"]["module"], *view["gotchas"]["gotcha"], *view["runbooks"]["runbook"],
             *view["examples"]["example"], *view["troubleshooting"]["problem"], *view["pricing"]["pricing"]["plan"]]
    assert len(items) == 17 + 6 + 8 + 14 + 5 + 5 + 3 + 3 + 4
    for item in items:
        name = item.get("name") or item.get("title")
        assert isinstance(name, str) and name.strip()
        if lang == "zh":
            text = " ".join(str(v) for v in item.values() if isinstance(v, str))
            assert CJK.search(text), item.get("id") or name


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("role", [None, "owner", "developer", "growth"])
def test_every_entry_template_renders(engine, kb, lang, role):
    for entry_id in kb.entries:
        answer = engine.render_entry(entry_id, lang, role)
        assert answer.title and answer.sections
        text = " ".join(i.text for s in answer.sections for i in s.items)
        assert "{{" not in text and "{%" not in text
        if lang == "zh":
            assert CJK.search(answer.title)


class RecordingLoader(jinja2.FileSystemLoader):
    """Notes every template the engine loads."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path))
        self.seen: set[str] = set()

    def get_source(self, environment, template):  # type: ignore[no-untyped-def]
        self.seen.add(template)
        return super().get_source(environment, template)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_template_file_renders_through_the_engine(kb, lang):
    env = build_environment()
    loader = RecordingLoader(TEMPLATES_DIR)
    env.loader = loader
    engine = Engine(kb, env)
    questions = {
        "en": ["flows", "what do the plans cost", "api rate limits and endpoints", "which integrations are there",
               "data model objects and fields", "who founded klaviyo", "help", "reset", "how do I set up DMARC",
               "open rate of my last campaign", "I'm a developer"],
        "zh": ["流程", "套餐价格多少", "API 接口限流", "有哪些集成", "数据模型有哪些对象", "Klaviyo 是谁创立的", "帮助",
               "重新开始", "SPF和DKIM怎么配置", "帮我看下我们上周campaign的打开率", "我是开发"],
    }[lang]
    for q in questions:
        answer = engine.compose(q).answer
        assert answer.lang == lang and answer.title
    for entry_id in kb.entries:
        engine.render_entry(entry_id, lang)
    assert set(engine.template_names()) <= loader.seen


def test_broken_data_fails_fast(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    text = (data / "runbooks.toml").read_text(encoding="utf-8")
    (data / "runbooks.toml").write_text(text.replace('gotchas = ["sms_compliance"]', 'gotchas = ["no_such_gotcha"]', 1),
                                        encoding="utf-8")
    with pytest.raises(KnowledgeError, match="no_such_gotcha"):
        load_knowledge(data)


def test_missing_translation_fails_fast(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    path = data / "areas.toml"
    text = path.read_text(encoding="utf-8")
    broken = re.sub(r', zh = "[^"]*" \}', " }", text, count=1)
    assert broken != text
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(KnowledgeError, match="exactly 'en' and 'zh'"):
        load_knowledge(data)


def test_data_dir_is_packaged():
    assert Path(DATA_DIR, "vocabulary.toml").exists()

"""Block Kit builders for menus, feedback buttons and modals (all within Slack's limits)."""

from __future__ import annotations

import json
from typing import Any

from handlers import ids
from knowledge import KnowledgeBase
from knowledge.render import truncate

UI = {
    "en": {"area": "Pick an area", "role": "Your role", "goal": "Set my goal", "goal_title": "Your goal",
           "goal_label": "What are you trying to achieve?", "goal_hint": "One sentence is enough, e.g. "
           "\"recover more abandoned carts without discount abuse\".", "save": "Save", "cancel": "Cancel",
           "useful": "Helpful", "not_useful": "Not helpful", "fb_title": "What was missing?",
           "fb_label": "Tell us what the answer lacked", "send": "Send", "menu_hint": "Or just type "
           "`/klaviyo <your question>`, mention me in a channel, or DM me."},
    "zh": {"area": "选择模块", "role": "你的角色", "goal": "设置目标", "goal_title": "你的目标",
           "goal_label": "你想达成什么目标？", "goal_hint": "一句话就行，比如“挽回更多弃购，同时避免优惠码被滥用”。",
           "save": "保存", "cancel": "取消", "useful": "有帮助", "not_useful": "没帮助", "fb_title": "缺了什么？",
           "fb_label": "告诉我们这个回答缺少什么", "send": "发送",
           "menu_hint": "也可以直接输入 `/klaviyo 你的问题`、在频道里 @我，或者私信我。"},
}


def _text(text: str, limit: int = 75) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": True}


def picker_blocks(kb: KnowledgeBase, lang: str) -> list[dict[str, Any]]:
    """Area select (all 17 areas), role select and the goal button, in one actions block."""
    ui = UI[lang]
    view = kb.view(lang)
    areas = [{"text": _text(f"{a['letter']}) {a['name']}"), "value": a["letter"],
              "description": _text(a["scope"])} for a in view["areas"]["area"]]
    roles = [{"text": _text(f"{r['letter']}) {r['name']}"), "value": r["id"]} for r in view["roles"]["role"]]
    return [
        {"type": "actions", "block_id": "menu_pickers", "elements": [
            {"type": "static_select", "action_id": ids.AREA_SELECT, "placeholder": _text(ui["area"], 150),
             "options": areas},
            {"type": "static_select", "action_id": ids.ROLE_SELECT, "placeholder": _text(ui["role"], 150),
             "options": roles},
            {"type": "button", "action_id": ids.GOAL_BUTTON, "text": _text(ui["goal"]), "value": lang},
        ]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": ui["menu_hint"]}]},
    ]


def feedback_blocks(lang: str, entry: str | None, area: str | None) -> list[dict[str, Any]]:
    ui = UI[lang]
    value = json.dumps({"e": entry, "a": area, "l": lang}, separators=(",", ":"))
    return [{"type": "actions", "block_id": "feedback", "elements": [
        {"type": "button", "action_id": ids.FEEDBACK_UP, "text": _text(f"👍 {ui['useful']}"), "value": value},
        {"type": "button", "action_id": ids.FEEDBACK_DOWN, "text": _text(f"👎 {ui['not_useful']}"), "value": value},
    ]}]


def goal_modal(lang: str, metadata: dict[str, Any]) -> dict[str, Any]:
    ui = UI[lang]
    return {"type": "modal", "callback_id": ids.GOAL_MODAL, "title": _text(ui["goal_title"], 24),
            "submit": _text(ui["save"], 24), "close": _text(ui["cancel"], 24),
            "private_metadata": json.dumps(metadata)[:3000],
            "blocks": [{"type": "input", "block_id": ids.GOAL_BLOCK, "label": _text(ui["goal_label"], 2000),
                        "hint": _text(ui["goal_hint"], 2000),
                        "element": {"type": "plain_text_input", "action_id": ids.GOAL_INPUT, "max_length": 500}}]}


def feedback_modal(lang: str, metadata: dict[str, Any]) -> dict[str, Any]:
    ui = UI[lang]
    return {"type": "modal", "callback_id": ids.FEEDBACK_MODAL, "title": _text(ui["fb_title"], 24),
            "submit": _text(ui["send"], 24), "close": _text(ui["cancel"], 24),
            "private_metadata": json.dumps(metadata)[:3000],
            "blocks": [{"type": "input", "block_id": ids.FEEDBACK_BLOCK, "label": _text(ui["fb_label"], 2000),
                        "element": {"type": "plain_text_input", "action_id": ids.FEEDBACK_INPUT, "multiline": True,
                                    "max_length": 2000}}]}

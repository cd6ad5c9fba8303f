"""Text helpers: normalisation, language detection and the phrase matcher the router scores with."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[a-z]{2,}", re.IGNORECASE)
# Words that only a Chinese sentence has: question words, pronouns, particles. One of them makes a
# mostly-English-jargon message ("怎么设置abandoned cart flow的SMS") a Chinese one.
_ZH_FUNCTION = re.compile(r"怎么|如何|什么|为什么|为啥|吗|呢|的|我|我们|你|能不能|可以|是否|哪|请|帮|还是|需要|要不要|有没有|了")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalize(text: str) -> str:
    """Lower-cases, folds full-width forms (NFKC), drops control characters, collapses white space."""
    text = unicodedata.normalize("NFKC", text)
    text = _CJK_PUNCT_SPACE.sub(" ", text)
    text = _CONTROL.sub(" ", text).lower()
    text = text.replace("’", "'").replace("‘", "'")
    return " ".join(text.split())


_CJK_PUNCT_SPACE = re.compile(r"[，。？！、；：“”（）《》【】]")


def cjk_count(text: str) -> int:
    return len(_CJK.findall(text))


def detect_lang(text: str) -> str | None:
    """Returns "zh" or "en", or None when the text has no words to judge by (only emoji, digits)."""
    cjk = cjk_count(text)
    latin_words = len(_LATIN_WORD.findall(text))
    if cjk == 0 and latin_words == 0:
        return None
    if cjk >= 2 and (_ZH_FUNCTION.search(text) or cjk / 1.5 >= latin_words):
        return "zh"
    if cjk >= 1 and latin_words == 0:
        return "zh"
    return "en"


@dataclass(frozen=True)
class Term:
    """One phrase of evidence with its weight."""

    text: str
    weight: float
    pattern: re.Pattern[str] | None  # None: plain substring match (CJK phrases)
    anchor: str = ""  # a literal the text must contain for the pattern to match: a cheap pre-check


_SUFFIX = r"(?:s|es|ed|d|ing|ies|er|ers)?"


def compile_term(raw: str, default_weight: float = 1.0) -> Term:
    """Parses "phrase^2" (weight 2). English words match whole words with common endings; a word ending
    in * matches any ending; CJK phrases match as substrings."""
    weight = default_weight
    if "^" in raw:
        raw, w = raw.rsplit("^", 1)
        weight = float(w)
    phrase = normalize(raw)
    if _CJK.search(phrase) and not _LATIN_WORD.search(phrase):
        return Term(phrase, weight, None)
    parts = []
    for word in phrase.split(" "):
        if word.endswith("*"):
            parts.append(re.escape(word[:-1]) + r"\w*")
        elif word.isalpha() and len(word) >= 3 and word.isascii():
            stem = word[:-1] if word.endswith("y") and len(word) > 3 else word
            parts.append(re.escape(stem) + (r"(?:y|ies|ied|ying)?" if stem != word else _SUFFIX))
        else:
            parts.append(re.escape(word))
    # Joined words may be written with a space, a hyphen or nothing ("pop-up", "popup", "pop up").
    body = r"(?:\s+|-|)".join(parts) if len(parts) > 1 else parts[0]
    left = r"(?<![a-z0-9])" if phrase[:1].isascii() and phrase[:1].isalnum() else ""
    right = r"(?![a-z0-9])" if phrase[-1:].isascii() and (phrase[-1:].isalnum() or phrase.endswith("*")) else ""
    first = phrase.split(" ")[0]
    anchor = first[:-1] if first.endswith("*") or (first.endswith("y") and len(first) > 3 and first.isalpha()) \
        else first
    return Term(phrase, weight, re.compile(left + body + right), anchor)


def term_matches(term: Term, text: str) -> bool:
    if term.pattern is None:
        return term.text in text
    return term.anchor in text and term.pattern.search(text) is not None

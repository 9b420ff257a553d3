import random
import string
import time

import pytest

from modelreg import lookalike
from modelreg.lookalike import find_lookalike, fold, within_one_edit


def test_fold():
    assert fold("FAQ-B0t") == "faqbot"
    assert fold("faq_bot.v1") == "faqbotvl"
    assert fold("Il1-model") == "lllmodel"


@pytest.mark.parametrize(
    "new, existing",
    [
        ("faq_bot", "faq-bot"),
        ("faqbot", "faq-bot"),
        ("faq-b0t", "faq-bot"),
        ("FAQ-Bot", "faq-bot"),
        ("faq.bot", "faq_bot"),
        ("bert-base-cased", "bert_base.cased"),  # several separators differ: equal after folding
        ("reranker-l", "reranker-1"),
        ("resnet5O", "resnet50"),
        ("sentiment", "sentimnet"),  # adjacent swap
        ("sentiment", "sentimet"),  # deletion
        ("sentiment", "sentiments"),  # insertion
        ("sentiment", "sentinent"),  # substitution
    ],
)
def test_lookalikes_are_found(new, existing):
    assert find_lookalike(new, ["llama-guard", existing, "whisper-small"]) == existing


@pytest.mark.parametrize(
    "new, existing",
    [
        ("bert-base", "bert-large"),
        ("faq-bot", "faq-robot-v2"),
        ("sentiment", "sentimental"),
        ("resnet50", "resnet152"),
        ("abcd", "badc"),  # two swaps
    ],
)
def test_different_names_are_not_lookalikes(new, existing):
    assert find_lookalike(new, [existing]) is None


def test_the_name_itself_is_not_a_lookalike():
    assert find_lookalike("faq-bot", ["faq-bot"]) is None
    assert find_lookalike("faq-bot", ["faq-bot", "faqbot"]) == "faqbot"
    assert find_lookalike("faq-bot", []) is None


def test_a_folded_match_is_preferred_over_an_edit():
    assert find_lookalike("faq-bot", ["faq-bat", "faq_bot"]) == "faq_bot"
    assert find_lookalike("faq-bot", ["faq-bat", "faq-bit"]) == "faq-bat"


def test_accepts_any_iterable():
    assert find_lookalike("faq-bot", (n for n in ["x", "faqbot"])) == "faqbot"


@pytest.mark.parametrize(
    "a, b, expected",
    [("", "", True), ("", "a", True), ("ab", "ba", True), ("abc", "acb", True), ("abc", "cab", False),
     ("abc", "abd", True), ("abc", "xbd", False), ("abc", "abcde", False), ("abc", "bc", True)],
)
def test_within_one_edit(a, b, expected):
    assert within_one_edit(a, b) is expected
    assert within_one_edit(b, a) is expected


def _names(count, seed=7):
    rng = random.Random(seed)
    alphabet = string.ascii_lowercase + "23456789"  # no glyphs that fold together
    names = set()
    while len(names) < count:
        length = rng.randint(6, 24)
        names.add("m" + "".join(rng.choice(alphabet) for _ in range(length)) + "-model")
    return sorted(names)


def test_ten_thousand_names_in_one_linear_pass(monkeypatch):
    existing = _names(10_000)
    planted = existing[5_000]

    start = time.perf_counter()
    assert find_lookalike(planted.replace("-model", "_model"), existing) == planted
    assert find_lookalike(planted[:-1] + "x", existing) == planted
    assert find_lookalike("zz-unrelated-name", existing) is None
    assert time.perf_counter() - start < 1.0  # linear: ~10 ms here, generous for slow CI

    # Only names passing the cheap length filter reach the edit-distance test.
    edit_checks = []
    real = lookalike.within_one_edit
    monkeypatch.setattr(lookalike, "within_one_edit", lambda a, b: edit_checks.append(b) or real(a, b))
    assert find_lookalike("zz-unrelated-name", existing) is None
    assert sorted(edit_checks) == [n for n in existing if abs(len(n) - len("zz-unrelated-name")) <= 1]
    assert len(edit_checks) < len(existing) / 4

"""ivr.core.hints: the key path every message names, and the did-you-mean suggestion."""

from __future__ import annotations

import pytest

from ivr.core.hints import did_you_mean, path_join


@pytest.mark.parametrize(
    ("path", "key", "joined"),
    [
        ("", "states", "states"),
        ("states", "menu", "states.menu"),
        ("states.menu.routes", "1", 'states.menu.routes."1"'),
        ("states.menu.routes", "*", 'states.menu.routes."*"'),
        ("states.menu.routes", "no-answer", "states.menu.routes.no-answer"),
        ("states.menu.prompts", 2, "states.menu.prompts[2]"),
        ("", 0, "[0]"),
    ],
)
def test_path_join_quotes_keys_that_are_not_plain_words(path, key, joined):
    assert path_join(path, key) == joined


def test_did_you_mean_suggests_the_closest_name():
    assert did_you_mean("biling", ["billing", "sales"]) == " (did you mean 'billing'?)"


def test_did_you_mean_says_nothing_when_nothing_is_close():
    assert did_you_mean("zzz", ["billing", "sales"]) == ""

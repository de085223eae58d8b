"""The case board states how time limits are counted (working hours, holidays, urgent cases)."""

from __future__ import annotations

import pytest

from tests.dashboard.conftest import APP


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("zh", ["时限按工作时间计算", "9:00–12:00、13:30–18:00", "扣除法定节假日", "调休上班日",
                "3 级（紧急）事件按自然时间计算"]),
        ("en", ["Time limits count working hours", "9:00–12:00 and 13:30–18:00", "without public holidays",
                "make-up working days", "level 3 (urgent) cases count calendar hours"]),
    ],
)
def test_case_board_states_the_time_limit_rule(env, lang: str, words: list[str]) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=90)
    at.query_params["lang"] = lang
    at.run()
    at.switch_page("views/incidents.py").run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption]
    rule = [c for c in captions if words[0] in c]
    assert len(rule) == 1, captions
    for w in words:
        assert w in rule[0]

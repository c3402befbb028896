"""`fmtheory survey`: cards in chapter order from the registry, findings first, errors shown and
the survey going on, the store's cache used, bad input exits 2."""

from __future__ import annotations

import json

import pytest

from fmtheory.cli import main
from fmtheory.errors import ConfigError
from fmtheory.survey import markdown_summary, run_survey, select, write_survey

pytestmark = pytest.mark.xdist_group("survey")
ONLY = ["survey-holds", "survey-fails", "survey-crash"]


@pytest.fixture(scope="module")
def survey(test_claims, tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    s = run_survey(only=ONLY, executor="inline", root=root)
    return root, s


def test_cards_follow_the_chapters_of_the_registry(survey):
    _, s = survey
    assert [c.name for c in s.cards] == ["survey-holds", "survey-fails", "survey-crash"]
    assert [c.chapter for c in s.cards] == ["generalization", "alignment", "ethics"]
    v = {c.name: c.verdict for c in s.cards}
    assert v == {"survey-holds": "holds", "survey-fails": "fails", "survey-crash": "error"}


def test_a_crash_is_an_error_card_with_its_message(survey):
    _, s = survey
    crash = next(c for c in s.cards if c.name == "survey-crash")
    assert "crashes on purpose" in crash.reason
    assert [c.name for c in s.findings()] == ["survey-fails", "survey-crash"]


def test_card_holds_model_code_and_counts(survey):
    _, s = survey
    c = s.cards[0]
    assert c.model == "line with 4 points" and c.code["source_hash"]
    assert c.counts == "claim: 1 hold · sanity: 1 hold" and c.formula == "err = slope · k"
    assert c.key_figure == "curve" and c.seconds is not None


def test_pages_and_json(survey, tmp_path):
    _, s = survey
    page, data = write_survey(s, tmp_path)
    text = page.read_text()
    assert text.index("Generalization") < text.index("Alignment") < text.index("Ethics")
    assert text.index("Findings") < text.index("id='claim-survey-holds'")
    assert "data:image/png;base64," in text and "✗ fails" in text
    d = json.loads(data.read_text())
    assert d["summary"]["alignment"]["fails"] == 1 and d["findings"] == [
        "survey-fails",
        "survey-crash",
    ]
    md = markdown_summary(s)
    assert "| Generalization | `survey-holds` | ✓ holds |" in md


def test_second_survey_reads_current_runs_from_the_store(survey):
    root, s = survey
    again = run_survey(only=["survey-holds", "survey-fails"], executor="inline", root=root)
    assert [c.run_dir for c in again.cards] == [c.run_dir for c in s.cards[:2]]
    assert again.executor and again.seconds < 30


def test_select_by_chapter_and_unknown_names(test_claims):
    assert [e.name for e in select(["alignment"]) if e.name.startswith("survey-")] == [
        "survey-fails"
    ]
    with pytest.raises(ConfigError, match="--only"):
        select(["no-such-chapter"])


def test_cli_bad_input_exits_2(test_claims, tmp_path, capsys):
    assert main(["survey", "--only", "nope", "--store", str(tmp_path)]) == 2
    assert main(["browse", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "--only" in err and "no such run store" in err
    assert not (tmp_path / "survey").exists()


def test_cli_survey_json(test_claims, tmp_path, capsys):
    code = main(["survey", "--only", "survey-holds", "--executor", "inline", "--store",
                 str(tmp_path), "--json"])  # fmt: skip
    assert code == 0
    d = json.loads(capsys.readouterr().out)
    assert d["cards"][0]["verdict"] == "holds"
    assert (tmp_path / "survey" / "survey.html").is_file()
    assert (tmp_path / "index.html").is_file()


def test_from_store_computes_nothing(survey, capsys):
    root, _ = survey
    code = main(["survey", "--from-store", "--only", "survey-holds", "survey-crash", "--store",
                 str(root), "--markdown", "--out", str(root / "s2")])  # fmt: skip
    assert code == 0
    md = capsys.readouterr().out
    assert "`survey-holds` | ✓ holds" in md and "`survey-crash` | · not run" in md

"""fmtheory.progress: plain lines when stderr is not a terminal (pytest captures it), or nothing."""

from __future__ import annotations

from fmtheory.progress import progress_bar


def test_lines_per_tenth_with_description_changes(capsys):
    bar = progress_bar("self-consuming", 20, unit="fits")
    for i in range(20):
        if i == 10:
            bar.describe("gmm: replace")
        bar.advance(1)
    bar.close()
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split()[-6] for line in lines] == [f"{k}/20" for k in range(2, 21, 2)]
    assert lines[0].startswith("self-consuming: fits 2/20 (10%)  elapsed ")
    assert lines[-1].startswith("gmm: replace: fits 20/20 (100%)  elapsed ")
    assert all(" left " in line and " loss " not in line for line in lines)


def test_loss_is_shown_and_a_disabled_bar_is_silent(capsys):
    bar = progress_bar("train", 4, start=2, loss=True)
    bar.update(4, 0.125)
    assert capsys.readouterr().err.startswith("train: step 4/4 (100%) loss 0.125  elapsed ")
    off = progress_bar("train", 4, enabled=False)
    off.update(4, 1.0)
    off.advance(1)
    off.describe("x")
    off.close()
    assert capsys.readouterr().err == ""

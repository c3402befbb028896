"""Check: kinds and statuses validated, JSON round trip with non-finite numbers, the verdict."""

import json
import math

import pytest

from fmtheory.contract import Check, check_counts, counts_text, verdict


def _c(kind="claim", status="holds", why=""):
    return Check("c", "s", kind, 1.0, 2.0, "tol", status, why)


def test_unknown_kind_or_status_is_rejected():
    with pytest.raises(ValueError, match="kind"):
        _c(kind="opinion")
    with pytest.raises(ValueError, match="status"):
        _c(status="maybe")


def test_inconclusive_and_na_need_a_reason():
    with pytest.raises(ValueError, match="reason"):
        _c(status="inconclusive")
    with pytest.raises(ValueError, match="reason"):
        _c(status="n/a")
    assert _c(status="n/a", why="d > n").holds is None


def test_round_trip_keeps_infinity_as_valid_json():
    c = Check("peak", "s", "theory", math.inf, -math.inf, "t", "fails")
    text = json.dumps(c.to_dict(), allow_nan=False)
    d = json.loads(text)
    assert d["predicted"] is None and d["predicted_text"] == "inf"
    back = Check.from_dict(d)
    assert back.predicted == math.inf and back.measured == -math.inf and back.status == "fails"


def test_legacy_check_reads_as_claim_with_reason():
    old = {"claim": "a", "source": "s", "predicted": 1, "measured": 2, "tolerance": "t",
           "holds": None}  # fmt: skip
    c = Check.from_dict(old)
    assert c.kind == "claim" and c.status == "n/a" and "older code" in c.why


def test_verdict_is_the_claim_checks_alone():
    assert verdict([_c("theory", "fails"), _c("sanity", "fails"), _c("claim", "holds")]) == "holds"
    assert verdict([_c("claim", "holds"), _c("claim", "fails")]) == "fails"
    assert verdict([_c("claim", "holds"), _c("claim", "inconclusive", "x")]) == "inconclusive"
    assert verdict([_c("theory", "holds")]) == "n/a"
    counts = check_counts([_c("theory", "fails"), _c("claim", "holds")])
    assert counts["theory"]["fails"] == 1 and counts["claim"]["holds"] == 1
    assert counts_text([_c("claim", "holds"), _c("sanity", "fails")]) == (
        "claim: 1 hold · sanity: 1 fail"
    )

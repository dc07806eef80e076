"""Canonical JSON by json's C writer is byte for byte the rfc8785 package's, whatever the document."""

from __future__ import annotations

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring import canonical

_numbers = st.one_of(
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1e17, max_value=1e17, allow_nan=False),
    st.floats(min_value=-1e-3, max_value=1e-3, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1e-4, 9.999e-5, 1e16, 9999999999999998.0, 1e21, 1e20, 2.0**53, 0.1, 1 / 3]),
)
_scalars = st.one_of(st.none(), st.booleans(), _numbers, st.text(max_size=8),
                     st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=8))
_documents = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=6), inner, max_size=5)), max_leaves=30)


def _written(dumps, document):
    """The bytes, or the error (an integer beyond 2^53 has no RFC 8785 form)."""
    try:
        return dumps(document)
    except rfc8785.CanonicalizationError as error:
        return type(error)


@settings(max_examples=600, deadline=None)
@given(_documents)
def test_the_bytes_are_rfc8785s_for_any_document(document):
    assert _written(canonical.dumps, document) == _written(rfc8785.dumps, document)


def test_a_scores_evidence_takes_the_fast_writer_and_an_exponent_falls_back():
    device = {"device_id": "d1", "availability": 0.9875, "slots": 480, "share": 2.0, "qc": {"x__gross": [1, 0, 3]}}
    assert canonical._plain(device)["share"] == 2  # integral floats as ints, as ECMAScript prints them
    assert canonical.dumps([device]) == rfc8785.dumps([device])
    tiny = {"qc_fail_share": 3.5e-05, "ok": "한국"}
    assert canonical.dumps(tiny) == rfc8785.dumps(tiny)

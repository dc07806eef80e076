"""The public verification page: a record file or bundle dropped on it is checked by the browser
alone (RFC 8785 form, Ed25519 with WebCrypto, the transparency log's proofs against its newest
signed tree head), with no sign-in, no upload and the network blocked but for 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import rfc8785

from tests.web import seed
from tests.web.conftest import Browser, Site


@dataclass(frozen=True)
class Issued:
    record_id: str
    record: bytes          # the signed record file, as issued
    bundle: bytes          # its bundle against the newest tree head
    older_bundle: bytes    # its bundle against the tree head it was first logged in, before a later record


@pytest.fixture(scope="module")
def issued(site: Site) -> Issued:
    """Records issued through the API for two pilots: the first one's files."""
    import uuid

    suffix = uuid.uuid4().hex[:8]
    firm = seed.firm(site.database_url, f"verify-{suffix}", "검증 주식회사")
    pilot = seed.pilot(site.database_url, f"verify-{suffix}", firm, name="도시 대기질", timezone="Asia/Seoul")
    later = seed.pilot(site.database_url, f"verify-later-{suffix}", firm)
    with site.api(site.key("admin")) as api:
        first = api.post(f"/pilots/{pilot}/records")
        assert first.status_code == 201, first.text
        record_id = first.json()["id"]
        older = api.get(f"/records/{record_id}", params={"bundle": "true"})
        assert api.post(f"/pilots/{later}/records").status_code == 201
        record, bundle = api.get(f"/records/{record_id}"), api.get(f"/records/{record_id}", params={"bundle": "true"})
    sizes = [json.loads(b.content)["tree_head"]["tree_head"]["tree_size"] for b in (older, bundle)]
    assert sizes[0] < sizes[1], "the second record grew the log"
    return Issued(record_id, record.content, bundle.content, older.content)


def _check(browser: Browser, name: str, content: bytes) -> tuple[bool, str]:
    result = browser.page.get_by_test_id("result")  # type: ignore[attr-defined]
    browser.page.set_input_files("#file", files=[{"name": name, "mimeType": "application/json", "buffer": content}])  # type: ignore[attr-defined]
    browser.page.wait_for_function("['true', 'false'].includes(document.getElementById('result').dataset.valid)")  # type: ignore[attr-defined]
    browser.snap(name)
    valid = result.get_attribute("data-valid") == "true"
    text = result.inner_text()
    browser.page.evaluate("document.getElementById('result').dataset.valid = ''")  # type: ignore[attr-defined]
    return valid, text


def _with_byte_changed(document: bytes, at: int) -> bytes:
    changed = bytearray(document)
    changed[at] = ord("0") if changed[at] != ord("0") else ord("1")
    return bytes(changed)


def test_an_issued_records_bundle_is_valid_and_one_changed_byte_is_not(browser: Browser, issued: Issued) -> None:
    browser.open("/ui/verify")  # no sign-in
    valid, text = _check(browser, "bundle.json", issued.bundle)
    assert valid, text
    assert "도시 대기질" in text and "verdict" in text
    assert "Window 2026-03-02 09:00 GMT+9 (Asia/Seoul)" in text  # the pilot's zone, which the record names
    assert "the record's Ed25519 signature holds" in text and "is a prefix of the log's newest" in text

    bundle = issued.bundle
    places = {"in the record's score": bundle.index(b'\\"score\\":') + 10,
              "in the record's signature": bundle.index(b'\\"value\\":\\"') + 14,
              "in the audit path": bundle.index(b'"audit_path":["') + 20,
              "in the tree head's root": bundle.index(b'"root_hash":"') + 20,
              "outside any value": bundle.index(b'"inclusion":') - 1}
    for where, at in places.items():
        valid, text = _check(browser, f"changed {where}.json", _with_byte_changed(bundle, at))
        assert not valid, f"a byte changed {where} passed: {text}"
        assert text.startswith("Not valid")
    assert browser.blocked == []


def test_a_bundle_from_an_older_tree_head_is_tied_to_the_newest_by_a_consistency_proof(browser: Browser,
                                                                                      issued: Issued) -> None:
    browser.open("/ui/verify")
    valid, text = _check(browser, "older-bundle.json", issued.older_bundle)
    assert valid, text
    older_size = json.loads(issued.older_bundle)["tree_head"]["tree_head"]["tree_size"]
    assert f"the tree of size {older_size} is a prefix of the log's newest" in text
    assert browser.blocked == []


def test_a_bare_record_file_is_checked_against_the_log_by_its_hash(browser: Browser, issued: Issued) -> None:
    browser.open("/ui/verify")
    asked: list[str] = []
    browser.page.on("request", lambda request: asked.append(request.url))  # type: ignore[attr-defined]
    valid, text = _check(browser, "record.json", issued.record)
    assert valid, text
    assert "of the log's newest tree" in text
    assert any(f"/records/{issued.record_id}/inclusion" in url for url in asked)
    assert not any(issued.record.decode()[:40] in url for url in asked)  # the file itself is never sent

    issue_year = issued.record.index(b'"issued_at":"') + 14  # "2026-…" becomes "2126-…": still canonical JSON
    valid, text = _check(browser, "record-changed.json", _with_byte_changed(issued.record, issue_year))
    assert not valid and "signature does not match" in text
    valid, text = _check(browser, "not-json.json", b"\xff\xfe not json")
    assert not valid and "not JSON" in text
    assert browser.blocked == []


def test_the_pages_canonical_form_is_rfc_8785_as_records_are_signed(browser: Browser, unique: Callable[[str], str]) -> None:
    """Where a hand-written RFC 8785 could part from Python's rfc8785: number forms, key order by
    UTF-16 code units (U+1F600 sorts before U+E000), escapes, non-ASCII text."""
    values: list[Any] = [
        [0.1, 1e21, 1e-7, 1.5e-7, 123456789012345680000.0, 5e-324, 1.7976931348623157e308, -0.0, 100.0, 1 / 3,
         2**53 - 1, -17, 0.000001, 1e20, 9.95],
        {"\ue000": 1, "😀": 2, "a": 3, "B": 4, "ä": 5, "": 6, "a\x00": 7, "10": 8, "9": 9},
        {"text": "줄\u2028바꿈\t\"탭\"\\ \x00\x1f\x7f é / 😀", "nested": [{"z": None, "y": [True, False]}, []]},
    ]
    browser.open("/ui/verify")
    for value in values:
        expected = rfc8785.dumps(value).decode()
        got = browser.page.evaluate(  # type: ignore[attr-defined]
            "async (text) => (await import('/ui/static/verify/canonical.js')).canonicalize(JSON.parse(text))",
            json.dumps(value))
        assert got == expected

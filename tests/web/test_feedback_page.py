"""Residents' feedback in the browser: a sticker's QR code (read back from its pixels by zxing-cpp)
opens the public form, which keeps no address; a code can be replaced; responses over a limit get
429 and a clear message; an admin moderates comments, and only approved ones appear, while every
rating counts at once. Each test is a resident at an address of its own (X-Forwarded-For from
127.0.0.1, as behind a proxy), with the session site's default limits: 5 an hour per client, 30 per
code."""

from __future__ import annotations

import uuid

import httpx
import numpy as np
import psycopg
import pytest

from tests.web import seed
from tests.web.conftest import Browser, Site

zxingcpp = pytest.importorskip("zxingcpp", reason="the sticker test reads QR codes with zxing-cpp (pip install -e '.[test]')")

READ_IMAGE = """async (img) => {
  await img.decode();
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext('2d');
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, c.width, c.height);
  ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(0, 0, c.width, c.height).data;
  return {width: c.width, height: c.height, grey: Array.from({length: c.width * c.height}, (_, i) => px[4 * i])};
}"""


def _qr_text(browser: Browser, target: str) -> str:
    """What the QR code of the sticker for `target` (a device id, or "pilot") says, read from its pixels."""
    found = browser.page.locator(f"figure[data-target='{target}'] img").evaluate(READ_IMAGE)  # type: ignore[attr-defined]
    image = np.array(found["grey"], dtype=np.uint8).reshape(found["height"], found["width"])
    result = zxingcpp.read_barcode(image)
    assert result is not None and result.format == zxingcpp.BarcodeFormat.QRCode
    return str(result.text)


@pytest.fixture
def pilot(site: Site) -> dict[str, str]:
    """A firm's running pilot of an env sensor (-d0) and a smart switch (-d1)."""
    suffix = uuid.uuid4().hex[:8]
    firm = seed.firm(site.database_url, f"fb-{suffix}", "Acme")
    pilot_id = seed.pilot(site.database_url, f"fb-{suffix}", firm, name="Smart streets", kinds=("env_sensor", "smart_switch"))
    return {"firm": firm, "pilot": pilot_id, "sensor": f"{pilot_id}-d0", "switch": f"{pilot_id}-d1"}


def _resident(browser: Browser) -> str:
    """This browser's address as the server sees it: an IPv6 documentation address in a /64 of its own."""
    random = uuid.uuid4().hex
    address = f"2001:db8:{random[:4]}:{random[4:8]}::1"
    browser.page.context.set_extra_http_headers({"X-Forwarded-For": address})  # type: ignore[attr-defined]
    return address


def _send(browser: Browser, rating: int, category: str, comment: str = "") -> int:
    """Fill in the open form and send it; the HTTP status of the answer to the POST (303 to the thanks
    when it is stored)."""
    page = browser.page
    page.check(f"input[name=rating][value='{rating}']")  # type: ignore[attr-defined]
    page.check(f"input[name=category][value='{category}']")  # type: ignore[attr-defined]
    page.fill("textarea[name=comment]", comment)  # type: ignore[attr-defined]
    with page.expect_response(lambda r: r.request.method == "POST") as answer:  # type: ignore[attr-defined]
        page.click("button:text('보내기 · Send')")  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    browser.snap(f"sent-{rating}-{category}")
    return int(answer.value.status)


def _rows(site: Site, pilot_id: str) -> list[tuple[object, ...]]:
    with psycopg.connect(site.database_url) as conn:
        return conn.execute("SELECT device_id, rating, category, comment, comment_status, octet_length(client_hash), f::text "
                            "FROM feedback f WHERE pilot_id = %s ORDER BY id", (pilot_id,)).fetchall()


def test_a_sticker_opens_the_form_and_a_rating_is_kept_without_the_residents_address(
        browser: Browser, site: Site, pilot: dict[str, str]) -> None:
    browser.sign_in(site.key("firm", firm_id=pilot["firm"]))
    browser.open(f"/ui/pilots/{pilot['pilot']}/feedback/stickers")
    assert browser.page.locator("figure.sticker").count() == 3  # type: ignore[attr-defined]  # the pilot and each device
    old = _qr_text(browser, pilot["sensor"])
    assert old.startswith(f"{site.url}/ui/feedback/") and old != _qr_text(browser, "pilot")
    # a new code for the sensor's sticker: its old link stops working at once
    browser.page.locator(f"figure[data-target='{pilot['sensor']}'] button:text('New code')").click()  # type: ignore[attr-defined]
    browser.page.wait_for_load_state()  # type: ignore[attr-defined]
    browser.snap("new-code")
    link = _qr_text(browser, pilot["sensor"])
    assert link != old and link.startswith(f"{site.url}/ui/feedback/")
    browser.page.context.clear_cookies()  # type: ignore[attr-defined]  # a resident now, signed in to nothing
    address = _resident(browser)
    assert browser.open(old.removeprefix(site.url)).status == 404  # type: ignore[attr-defined]
    assert "not in use" in browser.page.locator("[data-testid=problem]").inner_text()  # type: ignore[attr-defined]

    browser.open(link.removeprefix(site.url))
    assert browser.page.locator("html").get_attribute("lang") == "ko"  # type: ignore[attr-defined]
    assert pilot["sensor"] in browser.page.locator("[data-testid=target]").inner_text()  # type: ignore[attr-defined]
    assert _send(browser, 4, "placement", "  가로등 옆이라   잘 보여요 · easy to see ") == 303
    assert browser.page.url.endswith("?sent=1")  # type: ignore[attr-defined]
    assert "Thank you" in browser.page.locator("[data-testid=answer]").inner_text()  # type: ignore[attr-defined]
    # the same response again, after "send another": thanked, counted once
    browser.page.click("text=Send another response")  # type: ignore[attr-defined]
    assert _send(browser, 4, "placement", "가로등 옆이라 잘 보여요 · Easy to see") == 200
    assert "counts once" in browser.page.locator("[data-testid=answer]").inner_text()  # type: ignore[attr-defined]

    [row] = _rows(site, pilot["pilot"])
    assert row[:6] == (pilot["sensor"], 4, "placement", "가로등 옆이라 잘 보여요 · easy to see", "pending", 32)
    assert address not in str(row[6]) and "2001:db8" not in str(row[6])
    # a post from another site (no CSRF token and cookie of this form) is refused and stores nothing
    forged = httpx.post(link, data={"rating": "1", "category": "other"}, headers={"X-Forwarded-For": "192.0.2.1"})
    assert forged.status_code == 403 and len(_rows(site, pilot["pilot"])) == 1


def test_responses_over_a_limit_get_429_and_a_clear_message_and_keep_what_was_typed(
        browser: Browser, site: Site, pilot: dict[str, str]) -> None:
    with psycopg.connect(site.database_url) as conn:
        from store.feedback import pilot_codes
        codes = {c.device_id or "pilot": c.code for c in pilot_codes(conn, pilot["pilot"])}
    _resident(browser)
    for stars in range(1, 6):  # five responses an hour per client, through any code
        browser.open(f"/ui/feedback/{codes['pilot' if stars % 2 else pilot['sensor']]}")
        assert _send(browser, stars, "works_well") == 303
    browser.open(f"/ui/feedback/{codes['pilot']}")
    assert _send(browser, 2, "noise_light", "밤에 너무 밝아요") == 429
    assert "Too many responses came from your network" in browser.page.locator("[data-testid=problem]").inner_text()  # type: ignore[attr-defined]
    assert browser.page.input_value("textarea[name=comment]") == "밤에 너무 밝아요"  # type: ignore[attr-defined]
    assert browser.page.is_checked("input[name=category][value='noise_light']")  # type: ignore[attr-defined]

    _resident(browser)  # another household: its own allowance
    assert _send(browser, 2, "noise_light", "밤에 너무 밝아요") == 303
    # the switch's code took 30 responses in the last hour (from addresses no longer known)
    with psycopg.connect(site.database_url) as conn:
        conn.execute("INSERT INTO feedback (pilot_id, device_id, submitted_at, rating, category, content_sha256) "
                     "SELECT %s, %s, now() - interval '10 minutes', 3, 'other', sha256(i::text::bytea) "
                     "FROM generate_series(1, 30) AS i", (pilot["pilot"], pilot["switch"]))
    browser.open(f"/ui/feedback/{codes[pilot['switch']]}")
    assert _send(browser, 1, "not_working") == 429
    assert "This device has had too many responses" in browser.page.locator("[data-testid=problem]").inner_text()  # type: ignore[attr-defined]
    assert [r[1] for r in _rows(site, pilot["pilot"]) if r[0] != pilot["switch"]] == [1, 2, 3, 4, 5, 2]


def test_an_admin_approves_a_comment_in_the_queue_and_only_then_it_appears_while_ratings_count_at_once(
        browser: Browser, site: Site, pilot: dict[str, str]) -> None:
    with psycopg.connect(site.database_url) as conn:
        from store.feedback import pilot_codes
        code = next(c.code for c in pilot_codes(conn, pilot["pilot"]) if c.device_id == pilot["switch"])
    _resident(browser)
    browser.open(f"/ui/feedback/{code}")
    assert _send(browser, 5, "works_well", "스위치가 잘 작동해요 · works every time") == 303
    browser.page.click("text=Send another response")  # type: ignore[attr-defined]
    assert _send(browser, 2, "noise_light", "딸깍 소리가 커요, 연락 주세요 010-1234-5678") == 303

    browser.page.context.set_extra_http_headers({})  # type: ignore[attr-defined]
    browser.sign_in(site.key("admin"))
    browser.open(f"/ui/pilots/{pilot['pilot']}/feedback")
    page = browser.page
    assert page.locator("[data-testid=ratings]").inner_text() == "2"  # type: ignore[attr-defined]
    assert page.locator("[data-testid=mean]").inner_text() == "3.50"  # type: ignore[attr-defined]
    assert page.locator("[data-testid=comments]").count() == 0  # type: ignore[attr-defined]  # none approved yet

    browser.open("/ui/moderation")
    with psycopg.connect(site.database_url) as conn:
        works, noisy = (row[0] for row in conn.execute("SELECT id FROM feedback WHERE pilot_id = %s ORDER BY id",
                                                         (pilot["pilot"],)))
    assert "010-1234-5678" in page.locator(f"tr[data-id='{noisy}']").inner_text()  # type: ignore[attr-defined]
    page.locator(f"tr[data-id='{works}'] button:text('Approve')").click()  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    page.locator(f"tr[data-id='{noisy}'] button:text('Reject')").click()  # type: ignore[attr-defined]
    page.wait_for_load_state()  # type: ignore[attr-defined]
    browser.snap("moderated")
    assert page.locator(f"tr[data-id='{works}'], tr[data-id='{noisy}']").count() == 0  # type: ignore[attr-defined]

    browser.open(f"/ui/pilots/{pilot['pilot']}/feedback")
    assert page.locator("[data-testid=comments] tbody tr").count() == 1  # type: ignore[attr-defined]
    assert "works every time" in page.locator("[data-testid=comments]").inner_text()  # type: ignore[attr-defined]
    assert "1 approved, 0 waiting, 1 rejected" in page.locator("[data-testid=tally]").inner_text()  # type: ignore[attr-defined]
    assert page.locator("[data-testid=ratings]").inner_text() == "2"  # type: ignore[attr-defined]
    assert [(r[1], r[3], r[4]) for r in _rows(site, pilot["pilot"])] == [
        (5, "스위치가 잘 작동해요 · works every time", "approved"), (2, None, "rejected")]  # the rejected text is gone

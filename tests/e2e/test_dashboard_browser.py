"""The dashboard in a real browser: headless Chromium (Debian's) against a real ``serve`` on
loopback, over a ledger ingested from generated notifications.

Screenshots of every page are taken on each run; they land in ``DASHBOARD_SCREENSHOTS`` when
that is set (``DASHBOARD_SCREENSHOTS=docs/screenshots`` refreshes the committed ones), else in
the test's temporary directory.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.conftest import PostgresServer
from tests.e2e import dashboard_world
from tests.e2e.chromium import LAPTOP, PHONE, chromium, console_problems, screenshot, wait_for
from tests.e2e.dashboard_world import (
    ATTRIBUTE_NAME,
    ORG,
    SCRIPT_NAME,
    World,
    cli,
    iso_ms,
    rows_printed,
)
from tests.e2e.http_server import READ_TOKEN, Server, running_server

OPERATOR_TOKEN = "operator-test-5c1d9e"


@pytest.fixture(scope="module")
def world(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, World]]:
    work = tmp_path_factory.mktemp("dashboard")
    db_url = postgres.create()
    dashboard_world.generate(work / "stream.jsonl", count=1_500, seed=11)
    cli(db_url, "ingest", str(work / "stream.jsonl"), "--json")
    with running_server(db_url, work, PARTNER_LEDGER_OPERATOR_TOKEN=OPERATOR_TOKEN) as server:
        yield server, dashboard_world.build(server, db_url, work)
    postgres.drop(db_url)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    downloads = tmp_path_factory.mktemp("downloads")
    with chromium(profile, downloads) as driver:
        driver.downloads = downloads  # type: ignore[attr-defined]
        yield driver


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("DASHBOARD_SCREENSHOTS")
    return Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")


def by_id(driver: webdriver.Chrome, name: str) -> WebElement:
    return driver.find_element(By.ID, name)


def navigate(driver: webdriver.Chrome, action: Callable[[], None]) -> None:
    """Do what loads a new page (a click, a submit), and wait until the old page is gone:
    reading too early would read the old page."""
    old = driver.find_element(By.TAG_NAME, "html")
    action()
    WebDriverWait(driver, 30).until(staleness_of(old))


def signed_in(driver: webdriver.Chrome, server: Server) -> None:
    """Open the dashboard, signing in with the read token if the browser is not yet."""
    driver.get(f"{server.url}/dashboard")
    if driver.find_elements(By.ID, "token"):
        by_id(driver, "token").send_keys(READ_TOKEN)
        navigate(driver, lambda: by_id(driver, "token").submit())
    wait_for(lambda: driver.find_elements(By.ID, "chart-statuses"), what="the overview")


def assert_clean(driver: webdriver.Chrome, world: World) -> None:
    """No console problem, no script element, no event-handler attribute, no identifier."""
    assert console_problems(driver) == []
    assert driver.find_elements(By.TAG_NAME, "script") == []
    assert driver.find_elements(By.CSS_SELECTOR, "[onmouseover], [onerror], [onload]") == []
    source = driver.page_source
    shown = [
        value
        for value in world.identifiers
        if re.search(rf"(?<![\w.]){re.escape(value)}(?![\w.])", source)
    ]
    assert shown == []


def refusals_only(driver: webdriver.Chrome, path: str, status: int) -> bool:
    """The console holds the refusal just made (the browser logs 4xx answers), and nothing
    else."""
    problems = wait_for(lambda: console_problems(driver), timeout=10, what="the refusal logged")
    return all(path in p["message"] and f"status of {status}" in p["message"] for p in problems)


def counts(driver: webdriver.Chrome, chart: str) -> list[tuple[str, int]]:
    rects = driver.find_elements(By.CSS_SELECTOR, f"#{chart} rect.bar")
    return [
        (r.get_attribute("data-label") or "", int(r.get_attribute("data-count") or -1))
        for r in rects
    ]


def test_sign_in_then_the_overview_draws_its_charts_from_the_api_numbers(
    world: tuple[Server, World], browser: webdriver.Chrome, shots: Path
) -> None:
    server, ledger = world
    browser.delete_all_cookies()
    # Not signed in: the sign-in form, and a wrong token is refused on the page.
    browser.get(f"{server.url}/dashboard")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Sign in"
    screenshot(browser, shots / "sign-in.png", width=LAPTOP[0])
    by_id(browser, "token").send_keys("not-the-token")
    navigate(browser, lambda: by_id(browser, "token").submit())
    assert "not a read token" in by_id(browser, "sign-in-error").text
    assert browser.get_cookies() == []
    assert refusals_only(browser, "/dashboard/sign-in", 401)
    # The right token: a session cookie, HttpOnly and SameSite=Strict, and the overview.
    by_id(browser, "token").send_keys(READ_TOKEN)
    navigate(browser, lambda: by_id(browser, "token").submit())
    wait_for(lambda: browser.find_elements(By.ID, "chart-statuses"), what="the overview")
    (cookie,) = browser.get_cookies()
    assert (cookie["httpOnly"], cookie["sameSite"]) == (True, "Strict")
    assert READ_TOKEN not in browser.current_url and READ_TOKEN not in cookie["value"]

    api = server.get("/overview").json()
    assert sorted(counts(browser, "chart-statuses")) == sorted(
        (row["status"], row["memberships"]) for row in api["statuses"]
    )
    tiers = server.get("/tiers").json()
    assert [count for _, count in counts(browser, "chart-tiers")] == [
        row["memberships"] for row in tiers
    ]
    activity = server.get("/activity").json()
    assert len(activity) == 12
    expected = []
    for row in activity:
        expected += [
            (f"{row['month']} link", row["links"]),
            (f"{row['month']} delink", row["delinks"]),
        ]
    assert counts(browser, "chart-activity") == expected
    # The hand-made links and delink of the last weeks are among them.
    assert (
        sum(row["links"] for row in activity) >= 4 and sum(row["delinks"] for row in activity) >= 1
    )
    # Health: the events recorded, and the open quarantine, as the store holds them.
    (events,) = server.sql("SELECT COUNT(*) FROM ledger_inbox")[0]
    assert by_id(browser, "health-events").text == str(events)
    (open_entries,) = server.sql(
        "SELECT COUNT(*) FROM ledger_quarantine WHERE resolved_at_us IS NULL"
    )[0]
    assert by_id(browser, "health-quarantine").text == str(open_entries)
    assert [
        row.find_element(By.TAG_NAME, "th").text
        for row in browser.find_elements(By.CSS_SELECTOR, "#views-table tbody tr")
    ] == [
        "memberships",
        "expiry",
        "activity",
    ]
    assert_clean(browser, ledger)
    screenshot(browser, shots / "overview.png", width=LAPTOP[0])
    screenshot(browser, shots / "overview-phone.png", width=PHONE[0])


def test_hostile_program_names_show_as_text(
    world: tuple[Server, World], browser: webdriver.Chrome
) -> None:
    server, ledger = world
    signed_in(browser, server)
    # In the tiers chart's labels...
    labels = [label for label, _ in counts(browser, "chart-tiers")]
    assert any(SCRIPT_NAME in label for label in labels)
    assert any(ATTRIBUTE_NAME in label for label in labels)
    assert_clean(browser, ledger)
    # ...and in the customer's list of programs, as the visible text.
    browser.get(f"{server.url}/dashboard/membership?org={ORG}&customer=9001")
    table = by_id(browser, "customer-memberships")
    assert SCRIPT_NAME in table.text and ATTRIBUTE_NAME in table.text
    assert_clean(browser, ledger)
    # ...and on the membership's own page, heading included.
    browser.get(f"{server.url}/dashboard/membership?org={ORG}&customer=9001&program=501")
    assert SCRIPT_NAME in by_id(browser, "state-heading").text
    assert_clean(browser, ledger)


def test_look_a_membership_up_read_its_timeline_and_go_back_in_time(
    world: tuple[Server, World], browser: webdriver.Chrome, shots: Path
) -> None:
    server, ledger = world
    tiers = ledger.tiers
    signed_in(browser, server)
    navigate(browser, lambda: browser.find_element(By.LINK_TEXT, "Membership").click())
    by_id(browser, "org").send_keys(str(ORG))
    by_id(browser, "customer").send_keys(str(tiers.customer))
    by_id(browser, "program").send_keys(str(tiers.program))
    navigate(browser, lambda: by_id(browser, "program").submit())
    # Now: tier 3, and three events in the order they occurred, the second one late.
    assert by_id(browser, "state-tier").text == "3"
    events = browser.find_elements(By.CSS_SELECTOR, "#timeline > li")
    assert len(events) == 3
    assert ["late" in (e.get_attribute("class") or "") for e in events] == [False, True, False]
    assert "tier_number" in events[1].text and "Occurred" in events[1].text
    history = server.get(f"/memberships/{ORG}/{tiers.customer}/{tiers.program}/history").json()
    assert {e["recorded_at"] for e in history} <= {
        t for e in events for t in re.findall(r"\d{4}-\d\d-\d\dT[\d:.]+Z", e.text)
    }
    assert_clean(browser, ledger)
    screenshot(browser, shots / "membership.png", width=LAPTOP[0])
    screenshot(browser, shots / "membership-phone.png", width=PHONE[0])
    # As of a moment between the link and the first upgrade: the older tier.
    for moment, tier in ((tiers.second_ms + 3_600_000, "2"), (tiers.linked_ms + 3_600_000, "1")):
        field = by_id(browser, "as_of")
        field.clear()
        field.send_keys(iso_ms(moment))
        navigate(browser, field.submit)
        assert "as of" in by_id(browser, "state-when").text
        assert by_id(browser, "state-tier").text == tier
    assert_clean(browser, ledger)


def test_page_the_expiring_list_and_download_it_as_the_cli_prints_it(
    world: tuple[Server, World], browser: webdriver.Chrome, shots: Path
) -> None:
    server, ledger = world
    signed_in(browser, server)
    navigate(browser, lambda: browser.find_element(By.LINK_TEXT, "Expiring").click())
    # A wide window, 25 rows a page (date fields are set directly: their typing is locale's).
    browser.execute_script("arguments[0].value = '2023-01-01'", by_id(browser, "from"))
    browser.execute_script("arguments[0].value = '2030-12-31'", by_id(browser, "to"))
    Select(by_id(browser, "limit")).select_by_value("25")
    navigate(browser, lambda: by_id(browser, "limit").submit())
    wait_for(lambda: "2023-01-01" in by_id(browser, "window").text, what="the filtered page")

    def page_rows() -> list[list[str]]:
        rows = browser.find_elements(By.CSS_SELECTOR, "#expiring tbody tr")
        return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]

    first = page_rows()
    screenshot(browser, shots / "expiring.png", width=LAPTOP[0])
    navigate(browser, lambda: by_id(browser, "next-page").click())
    second = page_rows()
    assert len(first) == len(second) == 25
    printed = rows_printed(
        cli(
            ledger.db_url,
            "expiring",
            "--from",
            "2023-01-01",
            "--to",
            "2030-12-31",
            "--limit",
            "50",
            "--json",
        ).stdout
    )
    fields = ("date", "kind", "org_id", "customer_id", "partner_program_id")
    assert first + second == [[str(row[f]) for f in fields] for row in printed]
    assert_clean(browser, ledger)
    # The CSV: every row of the window, equal to what the CLI prints.
    by_id(browser, "csv").click()
    target = browser.downloads / "expiring.csv"  # type: ignore[attr-defined]
    wait_for(lambda: target.exists() and target.stat().st_size > 0, what="the CSV download")
    wait_for(lambda: not list(target.parent.glob("*.crdownload")), what="the download to end")
    downloaded = list(csv.DictReader(io.StringIO(target.read_text())))
    everything = rows_printed(
        cli(
            ledger.db_url,
            "expiring",
            "--from",
            "2023-01-01",
            "--to",
            "2030-12-31",
            "--limit",
            "1000000",
            "--json",
        ).stdout
    )
    assert len(everything) > 50
    assert downloaded == [
        {k: "" if v is None else str(v) for k, v in row.items()} for row in everything
    ]
    assert_clean(browser, ledger)


def test_replay_a_quarantine_entry_with_the_operator_token_and_not_without(
    world: tuple[Server, World], browser: webdriver.Chrome, shots: Path
) -> None:
    server, ledger = world
    entry = ledger.replayable
    org, customer, program = ledger.replayable_key
    signed_in(browser, server)
    navigate(browser, lambda: browser.find_element(By.LINK_TEXT, "Quarantine").click())
    Select(by_id(browser, "reason")).select_by_value("UNKNOWN_EVENT")
    navigate(browser, lambda: by_id(browser, "reason").submit())
    (card,) = wait_for(lambda: browser.find_elements(By.ID, f"entry-{entry[:12]}"))
    # The raw payloads are shown as text, identifiers masked, hostile text escaped.
    assert any(
        SCRIPT_NAME in (p.get_attribute("textContent") or "")
        for p in browser.find_elements(By.CSS_SELECTOR, "pre.payload")
    )
    assert_clean(browser, ledger)
    screenshot(browser, shots / "quarantine.png", width=LAPTOP[0])
    # Without the operator token: refused, and nothing recorded.
    navigate(browser, lambda: card.find_element(By.CSS_SELECTOR, "form.replay button").click())
    assert "operator token" in by_id(browser, "message").text
    assert refusals_only(browser, "/dashboard/quarantine/replay", 403)
    assert server.get(f"/memberships/{org}/{customer}/{program}").status_code == 404
    assert server.sql("SELECT resolved_at_us FROM ledger_quarantine WHERE id = %s", (entry,)) == [
        (None,)
    ]
    # With it: recorded, and the entry resolved.
    card = by_id(browser, f"entry-{entry[:12]}")
    card.find_element(By.CSS_SELECTOR, "input[name=operator_token]").send_keys(OPERATOR_TOKEN)
    navigate(browser, lambda: card.find_element(By.CSS_SELECTOR, "form.replay button").click())
    said = by_id(browser, "message").text
    recorded = re.search(r"recorded at position (\d+)", said)
    assert recorded, said
    (resolved,) = server.sql(
        "SELECT resolved_at_us FROM ledger_quarantine WHERE id = %s", (entry,)
    )[0]
    assert resolved is not None
    # Read your write: the view answers once it holds that position.
    answer = server.get(f"/memberships/{org}/{customer}/{program}", min_position=recorded[1])
    assert answer.status_code == 200 and answer.json()["status"] == "LINKED"
    assert_clean(browser, ledger)


def test_sign_out_ends_the_session_in_the_browser(
    world: tuple[Server, World], browser: webdriver.Chrome
) -> None:
    server, ledger = world
    signed_in(browser, server)
    navigate(browser, lambda: browser.find_element(By.CSS_SELECTOR, "form.sign-out button").click())
    assert wait_for(lambda: browser.find_elements(By.ID, "token"), what="the sign-in form")
    browser.get(f"{server.url}/dashboard/expiring")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Sign in"
    assert_clean(browser, ledger)
    assert httpx.get(f"{server.url}/dashboard/static/dashboard.css").status_code == 200

"""The first-party tag: the ``/tag.js`` route, and the tag's behaviour in a fake browser.

The behaviour tests run ``static/journeymap.js`` under node in ``tag_harness.mjs``, a minimal
fake browser whose localStorage, cookies and clock carry over from one page load to the next,
and assert on the requests that the tag sent.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import journeymap
from journeymap.collect import tag
from journeymap.collect.tag import etag_matches, tag_router

TAG_FILE = Path(tag.__file__).with_name("static") / "journeymap.js"
HARNESS = Path(__file__).with_name("tag_harness.mjs")
NODE = shutil.which("node")
KEY = "write-key-1"
SITE = "https://www.example.com"
COLLECTOR = "https://track.example.com"
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

needs_node = pytest.mark.skipif(
    NODE is None, reason="node is not on PATH; the tag's behaviour tests run the tag under node"
)

Scenario = dict[str, Any]


# The route.


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    app.include_router(tag_router())
    return TestClient(app)


def test_tag_route_serves_file_with_cache_headers(client: TestClient) -> None:
    response = client.get("/tag.js")

    assert response.status_code == 200
    assert response.content == TAG_FILE.read_bytes()
    assert response.headers["content-type"] == "application/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert re.fullmatch(r'"[0-9a-f]{32}"', response.headers["etag"])
    assert response.headers["x-content-type-options"] == "nosniff"


def test_tag_route_answers_304_on_matching_etag(client: TestClient) -> None:
    etag = client.get("/tag.js").headers["etag"]

    response = client.get("/tag.js", headers={"If-None-Match": etag})

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert response.headers["cache-control"] == "public, max-age=3600"


def test_tag_route_serves_body_on_stale_etag(client: TestClient) -> None:
    response = client.get("/tag.js", headers={"If-None-Match": '"an-older-version"'})

    assert response.status_code == 200
    assert response.content == TAG_FILE.read_bytes()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(None, False, id="no-header"),
        pytest.param('"abc"', True, id="same"),
        pytest.param('W/"abc"', True, id="weak"),
        pytest.param('"old", "abc"', True, id="in-list"),
        pytest.param("*", True, id="star"),
        pytest.param('"abcd"', False, id="other"),
        pytest.param("abc", False, id="unquoted"),
    ],
)
def test_etag_matches_if_none_match_forms(header: str | None, expected: bool) -> None:
    assert etag_matches(header, '"abc"') is expected


def test_tag_route_documented_in_openapi() -> None:
    app = FastAPI()
    app.include_router(tag_router())

    operation = app.openapi()["paths"]["/tag.js"]["get"]

    assert "data-write-key" in operation["description"]
    assert "application/javascript" in operation["responses"]["200"]["content"]
    assert "304" in operation["responses"]
    assert "422" not in operation["responses"]


def test_tag_version_matches_package() -> None:
    source = TAG_FILE.read_text(encoding="utf-8")

    assert f"const VERSION = '{journeymap.__version__}';" in source


@needs_node
def test_tag_parses_as_es2017() -> None:
    # Node bundles acorn but exposes it only with --expose-internals.
    check = (
        "let acorn;"
        "try { acorn = require('internal/deps/acorn/acorn/dist/acorn'); }"
        "catch (error) { process.exit(3); }"
        "const source = require('fs').readFileSync(process.argv[1], 'utf8');"
        "acorn.parse(source, { ecmaVersion: 2017, sourceType: 'script' });"
    )
    assert NODE is not None
    result = subprocess.run(
        [NODE, "--expose-internals", "-e", check, str(TAG_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode == 3:
        pytest.skip("this node does not bundle acorn, the parser that checks the ES2017 syntax")
    assert result.returncode == 0, result.stderr


# The tag in a fake browser.


def page_load(url: str, *, attributes: dict[str, Any] | None = None, **fields: Any) -> Scenario:
    """Describe one page load of the harness, with the write key on the script element."""
    script = {
        "src": f"{COLLECTOR}/tag.js",
        "attributes": {"data-write-key": KEY, **(attributes or {})},
    }
    return {"url": url, "script": script, **fields}


def run_tag(*loads: Scenario, **scenario: Any) -> Scenario:
    """Run the page loads in one fake browser and return the harness's output."""
    assert NODE is not None
    document = {"tag": str(TAG_FILE), "loads": list(loads), **scenario}
    result = subprocess.run(
        [NODE, str(HARNESS)],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output: Scenario = json.loads(result.stdout)
    for number, load in enumerate(output["loads"]):
        assert load["errors"] == [], f"load {number} let an error escape: {load['errors']}"
    return output


def bodies(load: Scenario) -> list[Scenario]:
    return [request["body"] for request in load["requests"]]


def kinds(load: Scenario) -> list[str]:
    return [body["type"] for body in bodies(load)]


LANDING = f"{SITE}/pricing?utm_source=google&utm_medium=cpc&gclid=X"


@needs_node
def test_tag_landing_page_carries_campaign_and_click_ids() -> None:
    output = run_tag(page_load(LANDING))

    (message,) = bodies(output["loads"][0])
    assert message["type"] == "page"
    assert message["context"]["campaign"] == {"source": "google", "medium": "cpc"}
    assert message["context"]["clickIds"] == {"gclid": "X"}
    assert message["context"]["touchCapturedAt"] == "2026-03-01T12:00:00.000Z"
    assert output["storage"]["jm_touch"]["campaign"] == {"source": "google", "medium": "cpc"}
    assert output["storage"]["jm_touch"]["clickIds"] == {"gclid": "X"}
    assert output["storage"]["jm_touch"]["capturedAt"] == "2026-03-01T12:00:00.000Z"


@needs_node
def test_tag_page_message_has_segment_fields() -> None:
    url = f"{SITE}/pricing?plan=team#access_token=secret"
    output = run_tag(page_load(url, title="Pricing", referrer="https://www.google.com/"))

    (request,) = output["loads"][0]["requests"]
    message = request["body"]
    expected_page = {
        "path": "/pricing",
        "referrer": "https://www.google.com/",
        "search": "?plan=team",
        "title": "Pricing",
        "url": f"{SITE}/pricing?plan=team",
    }
    assert request["url"] == f"{COLLECTOR}/v1/page"
    assert message["context"]["page"] == expected_page
    assert message["properties"] == expected_page
    assert message["context"]["userAgent"] == "tag-harness/1.0"
    assert message["context"]["library"] == {"name": "journeymap.js", "version": "0.1.0"}
    assert "campaign" not in message["context"]
    assert "clickIds" not in message["context"]
    assert UUID4.match(message["messageId"])
    assert UUID4.match(message["anonymousId"])
    assert "userId" not in message
    assert message["writeKey"] == KEY
    assert message["timestamp"] == "2026-03-01T12:00:00.000Z"
    assert datetime.fromisoformat(message["sentAt"]) >= datetime.fromisoformat(message["timestamp"])
    assert output["loads"][0]["cookieWrites"] == []


@needs_node
def test_tag_fetch_is_credentialed_text_plain() -> None:
    output = run_tag(page_load(LANDING))

    (request,) = output["loads"][0]["requests"]
    assert request["transport"] == "fetch"
    assert request["options"] == {
        "method": "POST",
        "keepalive": True,
        "credentials": "include",
        "headers": {"Content-Type": "text/plain"},
    }


@needs_node
def test_tag_later_page_keeps_landing_touch() -> None:
    output = run_tag(
        page_load(LANDING),
        page_load(
            f"{SITE}/docs",
            after=5 * 60_000,
            actions=[{"call": "track", "args": ["Docs Read", {"section": "api"}]}],
        ),
    )

    first, second = output["loads"]
    assert kinds(second) == ["page", "track"]
    for message in bodies(second):
        assert message["context"]["campaign"] == {"source": "google", "medium": "cpc"}
        assert message["context"]["clickIds"] == {"gclid": "X"}
        assert message["context"]["touchCapturedAt"] == "2026-03-01T12:00:00.000Z"
        assert message["anonymousId"] == bodies(first)[0]["anonymousId"]
    assert bodies(second)[1]["properties"] == {"section": "api"}


@needs_node
def test_tag_new_landing_replaces_touch() -> None:
    output = run_tag(
        page_load(LANDING),
        page_load(
            f"{SITE}/?utm_source=linkedin&utm_medium=paid_social&utm_campaign=q2&utm_id=7",
            after=60_000,
        ),
        page_load(f"{SITE}/docs", after=60_000),
    )

    for load in output["loads"][1:]:
        (message,) = bodies(load)
        assert message["context"]["campaign"] == {
            "source": "linkedin",
            "medium": "paid_social",
            "name": "q2",
            "id": "7",
        }
        assert "clickIds" not in message["context"]
        assert message["context"]["touchCapturedAt"] == "2026-03-01T12:01:00.000Z"


@needs_node
def test_tag_touch_expires_after_idle_visit() -> None:
    output = run_tag(
        page_load(LANDING),
        page_load(f"{SITE}/docs", after=29 * 60_000),
        page_load(f"{SITE}/blog", after=31 * 60_000),
    )

    assert "campaign" in bodies(output["loads"][1])[0]["context"]
    (late,) = bodies(output["loads"][2])
    assert "campaign" not in late["context"]
    assert "clickIds" not in late["context"]
    assert "jm_touch" not in output["storage"]


@needs_node
def test_tag_replays_queued_calls_in_order() -> None:
    queue = [
        ["identify", "user-7", {"plan": "team"}],
        ["track", "Pricing Viewed", {"tier": 2}],
        ["group", "acme", {"name": "Acme"}],
        ["unknown-method", 1],
        ["track", "Demo Requested"],
    ]
    output = run_tag(page_load(LANDING, queue=queue))

    load = output["loads"][0]
    messages = bodies(load)
    assert kinds(load) == ["identify", "track", "group", "track", "page"]
    assert messages[0]["traits"] == {"plan": "team"}
    assert messages[1]["event"] == "Pricing Viewed"
    assert messages[1]["properties"] == {"tier": 2}
    assert messages[2]["groupId"] == "acme"
    assert messages[3]["event"] == "Demo Requested"
    assert all(message["userId"] == "user-7" for message in messages)
    assert load["api"] == [
        "alias",
        "consent",
        "group",
        "identify",
        "page",
        "push",
        "reset",
        "track",
        "version",
    ]


@needs_node
def test_tag_push_after_load_runs_call() -> None:
    output = run_tag(page_load(LANDING, actions=[{"push": ["track", "Late Push"]}]))

    load = output["loads"][0]
    assert kinds(load) == ["page", "track"]
    assert bodies(load)[1]["event"] == "Late Push"


@needs_node
def test_tag_form_submit_identifies_email() -> None:
    form = {
        "attributes": {},
        "inputs": [
            {"type": "text", "name": "company", "value": "Acme"},
            {"type": "email", "name": "work", "value": "  ana@acme.example  "},
        ],
    }
    output = run_tag(page_load(LANDING, actions=[{"submit": form}]))

    load = output["loads"][0]
    assert kinds(load) == ["page", "identify"]
    request = load["requests"][1]
    assert request["transport"] == "beacon"
    assert request["url"] == f"{COLLECTOR}/v1/identify"
    assert request["body"]["traits"] == {"email": "ana@acme.example"}
    assert "userId" not in request["body"]
    assert request["body"]["anonymousId"] == bodies(load)[0]["anonymousId"]


@needs_node
def test_tag_form_field_named_email_identifies() -> None:
    form = {"inputs": [{"type": "text", "name": "user[Email]", "value": "bo@acme.example"}]}
    output = run_tag(page_load(LANDING, beacon=False, actions=[{"submit": form}]))

    load = output["loads"][0]
    assert kinds(load) == ["page", "identify"]
    assert load["requests"][1]["transport"] == "fetch"
    assert bodies(load)[1]["traits"] == {"email": "bo@acme.example"}


@needs_node
def test_tag_ignored_form_sends_nothing() -> None:
    form = {
        "attributes": {"data-jm-ignore": ""},
        "inputs": [{"type": "email", "name": "email", "value": "ana@acme.example"}],
    }
    output = run_tag(page_load(LANDING, actions=[{"submit": form}]))

    assert kinds(output["loads"][0]) == ["page"]


@needs_node
def test_tag_form_without_email_sends_nothing() -> None:
    form = {
        "inputs": [
            {"type": "checkbox", "name": "email_opt_in", "value": "on"},
            {"type": "text", "name": "email", "value": "not given"},
            {"type": "password", "name": "email_password", "value": "a@b.example"},
            {"type": "email", "name": "work", "value": ""},
        ]
    }
    output = run_tag(page_load(LANDING, actions=[{"submit": form}]))

    assert kinds(output["loads"][0]) == ["page"]


@needs_node
def test_tag_require_consent_waits_for_consent() -> None:
    waiting = page_load(
        LANDING,
        attributes={"data-require-consent": ""},
        actions=[
            {"call": "track", "args": ["Before Consent"]},
            {"call": "identify", "args": ["user-1"]},
            {"submit": {"inputs": [{"type": "email", "name": "e", "value": "a@b.example"}]}},
        ],
    )
    output = run_tag(waiting)

    assert output["loads"][0]["requests"] == []
    assert output["storage"] == {}
    assert output["cookies"] == {}

    waiting["actions"].append({"call": "consent", "args": [True]})
    waiting["actions"].append({"call": "track", "args": ["After Consent"]})
    output = run_tag(waiting)

    load = output["loads"][0]
    assert kinds(load) == ["page", "track"]
    assert bodies(load)[0]["context"]["clickIds"] == {"gclid": "X"}
    assert bodies(load)[1]["event"] == "After Consent"
    assert "userId" not in bodies(load)[1]
    assert output["storage"]["jm_touch"]["clickIds"] == {"gclid": "X"}


@needs_node
def test_tag_queued_consent_applies_at_load() -> None:
    load = page_load(
        LANDING,
        attributes={"data-require-consent": ""},
        queue=[["track", "Dropped"], ["consent", True], ["track", "Kept"]],
    )
    output = run_tag(load)

    messages = bodies(output["loads"][0])
    assert kinds(output["loads"][0]) == ["track", "page"]
    assert messages[0]["event"] == "Kept"


@needs_node
def test_tag_consent_false_stops_and_forgets() -> None:
    output = run_tag(
        page_load(LANDING, actions=[{"call": "identify", "args": ["user-1"]}]),
        page_load(
            f"{SITE}/docs",
            after=60_000,
            actions=[
                {"call": "consent", "args": [False]},
                {"call": "track", "args": ["After Withdrawal"]},
            ],
        ),
        cookies={"jm_aid": "from-server"},
    )

    assert kinds(output["loads"][1]) == ["page"]
    assert output["storage"] == {}
    assert output["cookies"] == {}


@needs_node
@pytest.mark.parametrize(
    "navigator",
    [
        pytest.param({"doNotTrack": "1"}, id="do-not-track"),
        pytest.param({"globalPrivacyControl": True}, id="global-privacy-control"),
    ],
)
def test_tag_respect_dnt_waits_for_consent(navigator: dict[str, Any]) -> None:
    respecting = page_load(LANDING, attributes={"data-respect-dnt": ""}, navigator=navigator)
    ignoring = page_load(LANDING, navigator=navigator)

    output = run_tag(respecting, ignoring)

    assert output["loads"][0]["requests"] == []
    assert kinds(output["loads"][1]) == ["page"]


@needs_node
@pytest.mark.parametrize(
    ("attributes", "cookie"),
    [
        pytest.param({}, "jm_aid", id="default-name"),
        pytest.param({"data-cookie": "aid"}, "aid", id="data-cookie"),
    ],
)
def test_tag_existing_cookie_is_anonymous_id(attributes: dict[str, Any], cookie: str) -> None:
    output = run_tag(
        page_load(LANDING, attributes=attributes),
        cookies={"other": "1", cookie: "aid%2Dfrom%2Dserver"},
        storage={"jm_aid": json.dumps("older-stored-id")},
    )

    (message,) = bodies(output["loads"][0])
    assert message["anonymousId"] == "aid-from-server"
    assert output["loads"][0]["cookieWrites"] == []


@needs_node
def test_tag_keeps_generated_id_until_cookie_arrives() -> None:
    output = run_tag(page_load(LANDING), page_load(f"{SITE}/docs", after=60_000))

    first, second = (bodies(load)[0]["anonymousId"] for load in output["loads"])
    assert second == first
    assert output["storage"]["jm_aid"] == first


@needs_node
def test_tag_uuid_fallback_is_version_4() -> None:
    output = run_tag(page_load(LANDING, randomUUID=False))

    (message,) = bodies(output["loads"][0])
    assert UUID4.match(message["messageId"])
    assert UUID4.match(message["anonymousId"])
    assert message["messageId"] != message["anonymousId"]


@needs_node
@pytest.mark.parametrize("fetch", ["throw", "reject"])
def test_tag_swallows_fetch_failures(fetch: str) -> None:
    actions = [
        {"call": "track", "args": ["Clicked"]},
        {"call": "identify", "args": ["user-1"]},
        {"call": "reset"},
    ]
    # run_tag fails the test when an error or an unhandled rejection escapes the tag.
    output = run_tag(page_load(LANDING, fetch=fetch, beacon=False, actions=actions))

    assert output["loads"][0]["api"] is not None


@needs_node
def test_tag_throwing_fetch_falls_back_to_beacon() -> None:
    output = run_tag(page_load(LANDING, fetch="throw"))

    (request,) = output["loads"][0]["requests"]
    assert request["transport"] == "beacon"
    assert request["body"]["type"] == "page"


@needs_node
def test_tag_without_fetch_or_beacon_stays_quiet() -> None:
    actions = [{"call": "track", "args": ["Clicked"]}]
    output = run_tag(page_load(LANDING, fetch="absent", beacon=False, actions=actions))

    assert output["loads"][0]["requests"] == []


@needs_node
def test_tag_hidden_page_sends_by_beacon() -> None:
    actions = [{"hide": True}, {"call": "track", "args": ["Tab Left"]}]
    output = run_tag(page_load(LANDING, actions=actions))

    requests = output["loads"][0]["requests"]
    assert [request["transport"] for request in requests] == ["fetch", "beacon"]
    assert requests[1]["url"] == f"{COLLECTOR}/v1/track"


@needs_node
@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        pytest.param({}, f"{COLLECTOR}/v1/page", id="script-origin"),
        pytest.param(
            {"data-endpoint": "https://collect.example.com/jm/"},
            "https://collect.example.com/jm/v1/page",
            id="data-endpoint",
        ),
    ],
)
def test_tag_endpoint_choice(attributes: dict[str, Any], expected: str) -> None:
    output = run_tag(page_load(LANDING, attributes=attributes))

    assert output["loads"][0]["requests"][0]["url"] == expected


@needs_node
def test_tag_without_current_script_finds_by_write_key() -> None:
    output = run_tag(page_load(LANDING, currentScript=False))

    (message,) = bodies(output["loads"][0])
    assert message["writeKey"] == KEY


@needs_node
def test_tag_identified_user_persists_across_loads() -> None:
    output = run_tag(
        page_load(LANDING, actions=[{"call": "identify", "args": ["user-9", {"plan": "pro"}]}]),
        page_load(f"{SITE}/docs", after=60_000),
    )

    identify = bodies(output["loads"][0])[1]
    assert identify["userId"] == "user-9"
    assert identify["traits"] == {"plan": "pro"}
    (later,) = bodies(output["loads"][1])
    assert later["userId"] == "user-9"


@needs_node
def test_tag_reset_forgets_identity() -> None:
    output = run_tag(
        page_load(
            LANDING,
            actions=[
                {"call": "identify", "args": ["user-9"]},
                {"call": "reset"},
                {"call": "track", "args": ["After Reset"]},
            ],
        ),
        cookies={"jm_aid": "before-reset"},
    )

    page, identify, after = bodies(output["loads"][0])
    assert page["anonymousId"] == "before-reset"
    assert identify["userId"] == "user-9"
    assert "userId" not in after
    assert after["anonymousId"] != "before-reset"
    assert UUID4.match(after["anonymousId"])
    assert "campaign" not in after["context"]
    assert output["cookies"] == {}
    assert "jm_aid=; Max-Age=0; Path=/; Domain=example.com" in output["loads"][0]["cookieWrites"]


@needs_node
def test_tag_reset_outlives_cookie_it_cannot_delete() -> None:
    reset = page_load(LANDING, actions=[{"call": "reset"}, {"call": "track", "args": ["Next"]}])
    output = run_tag(
        reset,
        page_load(f"{SITE}/docs", after=60_000),
        cookies={"jm_aid": "before-reset"},
        lockedCookies=["jm_aid"],
        serverSetsCookie=True,
    )

    (after,) = bodies(output["loads"][0])[1:]
    assert after["anonymousId"] != "before-reset"
    # The collector's response to "Next" replaced the cookie with the new anonymousId.
    (later,) = bodies(output["loads"][1])
    assert later["anonymousId"] == after["anonymousId"]


@needs_node
def test_tag_alias_and_group_messages() -> None:
    actions = [
        {"call": "alias", "args": ["user-2"]},
        {"call": "group", "args": ["acme", {"employees": 40}]},
        {"call": "group", "args": []},
        {"call": "track", "args": []},
    ]
    output = run_tag(page_load(LANDING, actions=actions), cookies={"jm_aid": "anon-1"})

    load = output["loads"][0]
    assert kinds(load) == ["page", "alias", "group"]
    alias, group = bodies(load)[1:]
    assert alias["userId"] == "user-2"
    assert alias["previousId"] == "anon-1"
    assert load["requests"][1]["url"] == f"{COLLECTOR}/v1/alias"
    assert group["groupId"] == "acme"
    assert group["traits"] == {"employees": 40}

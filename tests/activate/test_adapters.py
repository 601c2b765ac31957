"""What all adapters share: the registry, redaction, Retry-After, credentials and messages;
and the receiver's own checks, which the platform tests rely on."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from journeymap.activate.adapters import ADAPTERS, adapter_for, redact
from journeymap.activate.adapters.common import clean_message, retry_after_seconds
from journeymap.activate.base import Request
from journeymap.common.errors import ConfigError
from tests.activate.receiver import CREDENTIALS, Fault, Receiver, send
from tests.activate.samples import MIXED_CASE_EMAIL, NOW, US_PHONE, destination, row

PLATFORMS = sorted(ADAPTERS)


@pytest.fixture
def api(receiver: Receiver) -> Receiver:
    receiver.now = NOW
    return receiver


def test_adapter_for_each_platform() -> None:
    for platform in PLATFORMS:
        assert adapter_for(platform).platform == platform


def test_adapter_for_unknown_platform() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown platform 'tiktok'.*google, google_data_manager"
    ):
        adapter_for("tiktok")


@pytest.mark.parametrize("platform", PLATFORMS)
def test_adapter_missing_credential_names_destination(platform: str) -> None:
    adapter = adapter_for(platform)

    with pytest.raises(ConfigError) as caught:
        adapter.requests([row(platform)], destination(platform), {})

    message = str(caught.value)
    assert f"sync.destinations.{platform}-test.credentials_env" in message
    assert "access_token" in message


@pytest.mark.parametrize("platform", PLATFORMS)
def test_adapter_keeps_credentials_out_of_url(platform: str) -> None:
    [request] = adapter_for(platform).requests([row(platform)], destination(platform), CREDENTIALS)

    assert all(secret not in request.url for secret in CREDENTIALS.values())
    printed = repr(redact(request))
    assert CREDENTIALS["access_token"] not in printed
    assert CREDENTIALS["developer_token"] not in printed


def test_redact_masks_headers_query_and_body() -> None:
    request = Request(
        "POST",
        "https://graph.example/v1/events?access_token=secret&x=1",
        {
            "Authorization": "Bearer secret",
            "developer-token": "dev",
            "Content-Type": "application/json",
        },
        {"data": [], "access_token": "secret"},
        ("e1",),
    )

    masked = redact(request)

    assert masked.url == "https://graph.example/v1/events?access_token=***&x=1"
    assert masked.headers == {
        "Authorization": "Bearer ***",
        "developer-token": "***",
        "Content-Type": "application/json",
    }
    assert masked.json == {"data": [], "access_token": "***"}
    assert request.headers["Authorization"] == "Bearer secret"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "120"}, 120.0),
        ({"retry-after": "0"}, 0.0),
        (
            {
                "Retry-After": format_datetime(NOW + timedelta(seconds=90), usegmt=True),
                "Date": format_datetime(NOW, usegmt=True),
            },
            90.0,
        ),
        (
            {
                "Retry-After": format_datetime(NOW - timedelta(seconds=5), usegmt=True),
                "Date": format_datetime(NOW, usegmt=True),
            },
            0.0,
        ),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
    ids=["seconds", "zero", "http-date", "date-passed", "unreadable", "absent"],
)
def test_retry_after_seconds(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


@pytest.mark.parametrize("platform", PLATFORMS)
def test_adapter_429_with_http_date(api: Receiver, platform: str) -> None:
    adapter = adapter_for(platform)
    later = format_datetime(datetime.now(tz=UTC) + timedelta(seconds=60), usegmt=True)
    api.fail(platform, Fault(status=429, retry_after=later))
    [request] = adapter.requests([row(platform)], destination(platform, api), CREDENTIALS)

    [outcome] = send(adapter, request)

    assert outcome.status == "retry"
    assert outcome.retry_after is not None
    # HTTP dates have whole seconds, and the answer's own Date header may round the other way.
    assert 55 <= outcome.retry_after <= 61


def test_clean_message_masks_personal_data() -> None:
    text = "bad user  John.Doe@Example.COM\nwith phone +1 (415) 555-0132 in data[3]"

    assert clean_message(text) == "bad user [email] with phone [number] in data[3]"
    assert len(clean_message("x" * 2000)) == 500


@pytest.mark.parametrize("platform", PLATFORMS)
def test_adapter_outcomes_hold_no_personal_data(api: Receiver, platform: str) -> None:
    adapter = adapter_for(platform)
    keys = {**row(platform).keys, "email": MIXED_CASE_EMAIL, "phone": US_PHONE}
    sample = row(platform, keys=keys)
    target = destination(platform, api)
    faults = [Fault(), Fault(rows={0: "invalid"}), Fault(status=500), Fault(status=429)]
    messages = []
    for fault in faults:
        api.fail(platform, fault)
        [request] = adapter.requests([sample], target, CREDENTIALS)
        messages += [f"{o.code} {o.message}" for o in send(adapter, request)]
    api.credentials["access_token"] = "another"
    [request] = adapter.requests([sample], target, CREDENTIALS)
    messages += [f"{o.code} {o.message}" for o in send(adapter, request)]

    text = " ".join(messages).lower()
    assert api.problems() == []
    for secret in (*CREDENTIALS.values(), "john.doe", "555", "4155550132"):
        assert secret.lower() not in text
    assert "example.com" not in json.dumps([r.body for r in api.requests]).lower()


def test_receiver_reports_unhashed_email(api: Receiver) -> None:
    adapter = adapter_for("meta")
    [request] = adapter.requests([row("meta")], destination("meta", api), CREDENTIALS)
    body = json.loads(json.dumps(request.json))
    body["data"][0]["user_data"]["em"] = "john.doe@example.com"
    broken = replace(request, json=body)

    [outcome] = send(adapter, broken)

    assert outcome.status == "rejected"
    assert api.requests[-1].problems == [
        "data[0].user_data.em: 'john.doe@example.com' is not a lowercase SHA-256 hex digest"
    ]


def test_receiver_reports_time_without_offset(api: Receiver) -> None:
    adapter = adapter_for("google")
    [request] = adapter.requests([row("google")], destination("google", api), CREDENTIALS)
    body = json.loads(json.dumps(request.json))
    body["conversions"][0]["conversionDateTime"] = "2026-11-20 10:00:00"

    [outcome] = send(adapter, replace(request, json=body))

    assert outcome.status == "rejected"
    assert api.requests[-1].problems == [
        "conversions[0].conversionDateTime: '2026-11-20 10:00:00' is not yyyy-mm-dd hh:mm:ss+hh:mm"
    ]


def test_receiver_reports_amount_as_number(api: Receiver) -> None:
    adapter = adapter_for("linkedin")
    [request] = adapter.requests([row("linkedin")], destination("linkedin", api), CREDENTIALS)
    body = json.loads(json.dumps(request.json))
    body["elements"][0]["conversionValue"]["amount"] = 1250.0

    [outcome] = send(adapter, replace(request, json=body))

    assert outcome.status == "rejected"
    assert api.requests[-1].problems == [
        "elements[0].conversionValue.amount: 1250.0 is not a string with two decimals"
    ]


def test_receiver_reports_soap_elements_out_of_order(api: Receiver) -> None:
    adapter = adapter_for("microsoft")
    [request] = adapter.requests([row("microsoft")], destination("microsoft", api), CREDENTIALS)
    assert request.content is not None
    swapped = re.sub(
        rb"(<ConversionName>.*?</ConversionName>)(<ConversionTime>.*?</ConversionTime>)",
        rb"\2\1",
        request.content,
    )

    [outcome] = send(adapter, replace(request, content=swapped))

    assert outcome.status == "rejected"
    assert api.requests[-1].problems == [
        "OfflineConversion[0]: elements out of schema order: ['ConversionCurrencyCode', "
        "'ConversionTime', 'ConversionName', 'ConversionValue', 'MicrosoftClickId']"
    ]


def test_receiver_stall_keeps_events(api: Receiver) -> None:
    adapter = adapter_for("meta")
    api.fail("meta", Fault(stall=3.0))
    [request] = adapter.requests([row("meta")], destination("meta", api), CREDENTIALS)

    with pytest.raises(httpx.ReadTimeout):
        send(adapter, request, timeout=0.3)

    assert [event["event_id"] for event in api.events("meta")] == ["evt-1"]
    assert api.requests[-1].status == 200

"""Field-by-field checks of the four ad platforms' conversion requests, for the receiver.

Each ``check_*`` function takes a parsed request body and returns the problems it finds, as
sentences naming the field path (``data[2].user_data.em: ...``), and the events it carries,
each as ``(dedup key, event)``. An empty problem list means the platform would take the
request. The rules are those the adapters promise in their module docstrings.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from typing import Any

SHA256 = re.compile(r"^[0-9a-f]{64}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
GOOGLE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?[+-]\d{2}:\d{2}$")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
XS_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
FBC = re.compile(r"^fb\.\d\.\d{13}\.\S+$")
FBP = re.compile(r"^fb\.\d\.\d{13}\.\d+(\.\S+)?$")

META_ACTION_SOURCES = {
    "email",
    "website",
    "app",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
}
META_EVENT_KEYS = {
    "event_name",
    "event_time",
    "event_id",
    "action_source",
    "event_source_url",
    "user_data",
    "custom_data",
    "opt_out",
    "data_processing_options",
    "data_processing_options_country",
    "data_processing_options_state",
}
META_USER_KEYS = {
    "em",
    "ph",
    "fn",
    "ln",
    "ct",
    "st",
    "zp",
    "country",
    "ge",
    "db",
    "external_id",
    "client_ip_address",
    "client_user_agent",
    "fbc",
    "fbp",
    "lead_id",
    "subscription_id",
    "fb_login_id",
}
GOOGLE_CONVERSION_KEYS = {
    "conversionAction",
    "conversionDateTime",
    "conversionValue",
    "currencyCode",
    "orderId",
    "gclid",
    "gbraid",
    "wbraid",
    "userIdentifiers",
    "consent",
    "conversionEnvironment",
    "customVariables",
    "cartData",
    "externalAttributionData",
    "userIpAddress",
}
DM_EVENT_KEYS = {
    "transactionId",
    "eventTimestamp",
    "lastUpdatedTimestamp",
    "userData",
    "adIdentifiers",
    "conversionValue",
    "currency",
    "eventSource",
    "consent",
    "cartData",
    "customVariables",
    "userProperties",
    "destinationReferences",
}
DM_EVENT_SOURCES = {"WEB", "APP", "IN_STORE", "PHONE", "OTHER"}
LINKEDIN_ID_TYPES = {
    "SHA256_EMAIL",
    "LINKEDIN_FIRST_PARTY_ADS_TRACKING_UUID",
    "ACXIOM_ID",
    "ORACLE_MOAT_ID",
}
MICROSOFT_FIELDS = (
    "ConversionCurrencyCode",
    "ConversionName",
    "ConversionTime",
    "ConversionValue",
    "ExternalAttributionCredit",
    "ExternalAttributionModel",
    "HashedEmailAddress",
    "HashedPhoneNumber",
    "MicrosoftClickId",
)
"""``OfflineConversion`` elements in the order of the service's XML schema."""
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SERVICE_NS = "https://bingads.microsoft.com/CampaignManagement/v13"

Events = list[tuple[tuple[Any, ...], dict[str, Any]]]


def is_number(value: object) -> bool:
    """Return whether ``value`` is a JSON number (bool excluded)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _hash_problems(where: str, value: object) -> list[str]:
    values = value if isinstance(value, list) else [value]
    return [
        f"{where}: {item!r} is not a lowercase SHA-256 hex digest"
        for item in values
        if not (isinstance(item, str) and SHA256.match(item))
    ]


def _unknown(where: str, found: dict[str, Any], allowed: set[str]) -> list[str]:
    return [f"{where}.{key}: unknown field" for key in sorted(set(found) - allowed)]


def _age_problems(where: str, moment: datetime, now: datetime, days: int) -> list[str]:
    if moment > now + timedelta(minutes=5):
        return [f"{where}: {moment.isoformat()} is in the future"]
    if now - moment > timedelta(days=days):
        return [f"{where}: {moment.isoformat()} is more than {days} days old"]
    return []


def check_meta(body: Any, now: datetime, limit: int) -> tuple[list[str], Events]:
    """Check a Conversions API body ``{"data": [...], "test_event_code"?}``."""
    if not isinstance(body, dict):
        return ["body: not a JSON object"], []
    problems = _unknown("body", body, {"data", "test_event_code"})
    data = body.get("data")
    if not isinstance(data, list) or not data:
        return [*problems, "data: missing or empty"], []
    if len(data) > limit:
        problems.append(f"data: {len(data)} events, more than {limit}")
    if "test_event_code" in body and not isinstance(body["test_event_code"], str):
        problems.append("test_event_code: not a string")

    events: Events = []
    for index, event in enumerate(data):
        where = f"data[{index}]"
        if not isinstance(event, dict):
            problems.append(f"{where}: not an object")
            continue
        problems += _unknown(where, event, META_EVENT_KEYS)
        name, event_id = event.get("event_name"), event.get("event_id")
        if not isinstance(name, str) or not name:
            problems.append(f"{where}.event_name: missing")
        if not isinstance(event_id, str) or not event_id:
            problems.append(f"{where}.event_id: missing")
        seconds = event.get("event_time")
        if not isinstance(seconds, int) or isinstance(seconds, bool):
            problems.append(f"{where}.event_time: {seconds!r} is not whole Unix seconds")
        elif seconds > 10**11:
            problems.append(f"{where}.event_time: {seconds} looks like milliseconds")
        else:
            moment = datetime.fromtimestamp(seconds, tz=now.tzinfo)
            problems += _age_problems(f"{where}.event_time", moment, now, 7)
        source = event.get("action_source")
        if source not in META_ACTION_SOURCES:
            problems.append(f"{where}.action_source: {source!r} is not an action source")
        user = event.get("user_data")
        if not isinstance(user, dict) or not user:
            problems.append(f"{where}.user_data: missing or empty")
            user = {}
        problems += _unknown(f"{where}.user_data", user, META_USER_KEYS)
        if source == "website":
            if not isinstance(event.get("event_source_url"), str):
                problems.append(f"{where}.event_source_url: required for website events")
            if not isinstance(user.get("client_user_agent"), str):
                problems.append(f"{where}.user_data.client_user_agent: required for website")
        for key in ("em", "ph"):
            if key in user:
                problems += _hash_problems(f"{where}.user_data.{key}", user[key])
        if "fbc" in user and not (isinstance(user["fbc"], str) and FBC.match(user["fbc"])):
            problems.append(f"{where}.user_data.fbc: {user['fbc']!r} is not fb.N.<ms>.<fbclid>")
        if "fbp" in user and not (isinstance(user["fbp"], str) and FBP.match(user["fbp"])):
            problems.append(f"{where}.user_data.fbp: {user['fbp']!r} is not fb.N.<ms>.<random>")
        if "lead_id" in user and not (
            isinstance(user["lead_id"], int) and 10**14 <= user["lead_id"] < 10**17
        ):
            problems.append(f"{where}.user_data.lead_id: {user['lead_id']!r} is not a lead id")
        custom = event.get("custom_data", {})
        if not isinstance(custom, dict):
            problems.append(f"{where}.custom_data: not an object")
            custom = {}
        if "value" in custom and not is_number(custom["value"]):
            problems.append(f"{where}.custom_data.value: {custom['value']!r} is not a number")
        if "currency" in custom and not (
            isinstance(custom["currency"], str) and CURRENCY.match(custom["currency"])
        ):
            problems.append(f"{where}.custom_data.currency: not an ISO 4217 code")
        events.append(((name, event_id), event))
    return problems, events


def check_google_click(
    body: Any, customer: str, now: datetime, limit: int
) -> tuple[list[str], Events]:
    """Check an ``uploadClickConversions`` body for customer ``customer``."""
    if not isinstance(body, dict):
        return ["body: not a JSON object"], []
    allowed = {"conversions", "partialFailure", "validateOnly", "jobId", "debugEnabled"}
    problems = _unknown("body", body, allowed)
    if body.get("partialFailure") is not True:
        problems.append("partialFailure: must be true")
    conversions = body.get("conversions")
    if not isinstance(conversions, list) or not conversions:
        return [*problems, "conversions: missing or empty"], []
    if len(conversions) > limit:
        problems.append(f"conversions: {len(conversions)}, more than {limit}")

    action_name = re.compile(rf"^customers/{re.escape(customer)}/conversionActions/\d+$")
    events: Events = []
    for index, conversion in enumerate(conversions):
        where = f"conversions[{index}]"
        if not isinstance(conversion, dict):
            problems.append(f"{where}: not an object")
            continue
        problems += _unknown(where, conversion, GOOGLE_CONVERSION_KEYS)
        action = conversion.get("conversionAction")
        if not (isinstance(action, str) and action_name.match(action)):
            problems.append(f"{where}.conversionAction: {action!r} is not a resource name")
        when = conversion.get("conversionDateTime")
        if not (isinstance(when, str) and GOOGLE_TIME.match(when)):
            problems.append(
                f"{where}.conversionDateTime: {when!r} is not yyyy-mm-dd hh:mm:ss+hh:mm"
            )
        else:
            moment = datetime.fromisoformat(when)
            if moment > now + timedelta(minutes=5):
                problems.append(f"{where}.conversionDateTime: {when} is in the future")
        clicks = [key for key in ("gclid", "gbraid", "wbraid") if key in conversion]
        if "gbraid" in clicks and "wbraid" in clicks:
            problems.append(f"{where}: GBRAID_WBRAID_BOTH_SET")
        identifiers = conversion.get("userIdentifiers")
        if not clicks and not identifiers:
            problems.append(f"{where}: neither a click id nor userIdentifiers")
        if identifiers is not None:
            if not isinstance(identifiers, list) or not 1 <= len(identifiers) <= 5:
                problems.append(f"{where}.userIdentifiers: not a list of 1 to 5 identifiers")
                identifiers = []
            for position, identifier in enumerate(identifiers):
                spot = f"{where}.userIdentifiers[{position}]"
                kinds = set(identifier) if isinstance(identifier, dict) else set()
                if len(kinds) != 1 or not kinds <= {"hashedEmail", "hashedPhoneNumber"}:
                    problems.append(f"{spot}: not one hashedEmail or hashedPhoneNumber")
                    continue
                problems += _hash_problems(spot, next(iter(identifier.values())))
        if "conversionValue" in conversion and not is_number(conversion["conversionValue"]):
            problems.append(f"{where}.conversionValue: not a number")
        currency = conversion.get("currencyCode")
        if currency is not None and not (isinstance(currency, str) and CURRENCY.match(currency)):
            problems.append(f"{where}.currencyCode: {currency!r} is not an ISO 4217 code")
        order = conversion.get("orderId")
        if not isinstance(order, str) or not order:
            problems.append(f"{where}.orderId: missing")
        events.append(((action, order), conversion))
    return problems, events


def check_data_manager(body: Any, now: datetime, limit: int) -> tuple[list[str], Events]:
    """Check an ``events:ingest`` body."""
    if not isinstance(body, dict):
        return ["body: not a JSON object"], []
    allowed = {"destinations", "events", "consent", "validateOnly", "encoding", "encryptionInfo"}
    problems = _unknown("body", body, allowed)
    destinations = body.get("destinations")
    product = None
    if not isinstance(destinations, list) or len(destinations) != 1:
        problems.append("destinations: not a list of one destination")
    else:
        target = destinations[0]
        account = target.get("operatingAccount") if isinstance(target, dict) else None
        if not isinstance(account, dict) or account.get("accountType") != "GOOGLE_ADS":
            problems.append("destinations[0].operatingAccount: not a GOOGLE_ADS account")
        elif not str(account.get("accountId", "")).isdigit():
            problems.append("destinations[0].operatingAccount.accountId: not digits")
        product = target.get("productDestinationId") if isinstance(target, dict) else None
        if not (isinstance(product, str) and product.isdigit()):
            problems.append(f"destinations[0].productDestinationId: {product!r} is not an id")
        login = target.get("loginAccount") if isinstance(target, dict) else None
        if login is not None and not (
            isinstance(login, dict)
            and login.get("accountType") == "GOOGLE_ADS"
            and str(login.get("accountId", "")).isdigit()
        ):
            problems.append("destinations[0].loginAccount: not a GOOGLE_ADS account id")
    if body.get("encoding") not in {"HEX", "BASE64"}:
        problems.append(f"encoding: {body.get('encoding')!r} is not HEX or BASE64")
    events_in = body.get("events")
    if not isinstance(events_in, list) or not events_in:
        return [*problems, "events: missing or empty"], []
    if len(events_in) > limit:
        problems.append(f"events: {len(events_in)}, more than {limit}")

    events: Events = []
    for index, event in enumerate(events_in):
        where = f"events[{index}]"
        if not isinstance(event, dict):
            problems.append(f"{where}: not an object")
            continue
        problems += _row_problems_data_manager(where, event, now)
        events.append(((product, event.get("transactionId")), event))
    return problems, events


def _row_problems_data_manager(where: str, event: dict[str, Any], now: datetime) -> list[str]:
    problems = _unknown(where, event, DM_EVENT_KEYS)
    if not isinstance(event.get("transactionId"), str) or not event["transactionId"]:
        problems.append(f"{where}.transactionId: missing")
    stamp = event.get("eventTimestamp")
    if not (isinstance(stamp, str) and RFC3339.match(stamp)):
        problems.append(f"{where}.eventTimestamp: {stamp!r} is not RFC 3339 with an offset")
    elif datetime.fromisoformat(stamp) > now + timedelta(minutes=5):
        problems.append(f"{where}.eventTimestamp: {stamp} is in the future")
    if event.get("eventSource") not in DM_EVENT_SOURCES:
        problems.append(f"{where}.eventSource: {event.get('eventSource')!r} is not a source")
    user = event.get("userData")
    ads = event.get("adIdentifiers")
    if not user and not ads:
        problems.append(f"{where}: neither userData nor adIdentifiers")
    if user is not None:
        identifiers = user.get("userIdentifiers") if isinstance(user, dict) else None
        if not isinstance(identifiers, list) or not 1 <= len(identifiers) <= 10:
            problems.append(f"{where}.userData.userIdentifiers: not 1 to 10 identifiers")
            identifiers = []
        for position, identifier in enumerate(identifiers):
            spot = f"{where}.userData.userIdentifiers[{position}]"
            kinds = set(identifier) if isinstance(identifier, dict) else set()
            if len(kinds) != 1 or not kinds <= {"emailAddress", "phoneNumber"}:
                problems.append(f"{spot}: not one emailAddress or phoneNumber")
                continue
            problems += _hash_problems(spot, next(iter(identifier.values())))
    if ads is not None:
        if not isinstance(ads, dict) or not set(ads) <= {"gclid", "gbraid", "wbraid"}:
            problems.append(f"{where}.adIdentifiers: unknown click ids")
        elif "gbraid" in ads and "wbraid" in ads:
            problems.append(f"{where}.adIdentifiers: both gbraid and wbraid")
    if "conversionValue" in event and not is_number(event["conversionValue"]):
        problems.append(f"{where}.conversionValue: not a number")
    currency = event.get("currency")
    if currency is not None and not (isinstance(currency, str) and CURRENCY.match(currency)):
        problems.append(f"{where}.currency: {currency!r} is not an ISO 4217 code")
    return problems


def check_linkedin(body: Any, now: datetime, limit: int) -> tuple[list[str], Events]:
    """Check a ``BATCH_CREATE`` body ``{"elements": [...]}`` of conversion events."""
    if not isinstance(body, dict):
        return ["body: not a JSON object"], []
    problems = _unknown("body", body, {"elements"})
    elements = body.get("elements")
    if not isinstance(elements, list) or not elements:
        return [*problems, "elements: missing or empty"], []
    if len(elements) > limit:
        problems.append(f"elements: {len(elements)}, more than {limit}")

    allowed = {"conversion", "conversionHappenedAt", "conversionValue", "eventId", "user"}
    events: Events = []
    for index, event in enumerate(elements):
        where = f"elements[{index}]"
        if not isinstance(event, dict):
            problems.append(f"{where}: not an object")
            continue
        problems += _unknown(where, event, allowed)
        rule = event.get("conversion")
        if not (isinstance(rule, str) and re.match(r"^urn:lla:llaPartnerConversion:\d+$", rule)):
            problems.append(f"{where}.conversion: {rule!r} is not a conversion rule URN")
        millis = event.get("conversionHappenedAt")
        if not isinstance(millis, int) or isinstance(millis, bool) or millis < 10**12:
            problems.append(f"{where}.conversionHappenedAt: {millis!r} is not epoch milliseconds")
        else:
            moment = datetime.fromtimestamp(millis / 1000, tz=now.tzinfo)
            problems += _age_problems(f"{where}.conversionHappenedAt", moment, now, 90)
        value = event.get("conversionValue")
        if value is not None:
            if not isinstance(value, dict) or set(value) != {"currencyCode", "amount"}:
                problems.append(f"{where}.conversionValue: not {{currencyCode, amount}}")
            else:
                if not (
                    isinstance(value["currencyCode"], str) and CURRENCY.match(value["currencyCode"])
                ):
                    problems.append(f"{where}.conversionValue.currencyCode: not ISO 4217")
                amount = value["amount"]
                if not (isinstance(amount, str) and re.match(r"^\d+\.\d{2}$", amount)):
                    problems.append(
                        f"{where}.conversionValue.amount: {amount!r} is not a string "
                        "with two decimals"
                    )
        if "eventId" in event and not isinstance(event["eventId"], str):
            problems.append(f"{where}.eventId: not a string")
        problems += _linkedin_user_problems(where, event.get("user"))
        events.append(((rule, event.get("eventId")), event))
    return problems, events


def _linkedin_user_problems(where: str, user: object) -> list[str]:
    if not isinstance(user, dict):
        return [f"{where}.user: missing"]
    ids = user.get("userIds", [])
    info = user.get("userInfo", {})
    problems: list[str] = []
    if not ids and not (isinstance(info, dict) and info.get("firstName") and info.get("lastName")):
        problems.append(f"{where}.user: no userIds and no firstName with lastName")
    for position, entry in enumerate(ids if isinstance(ids, list) else []):
        spot = f"{where}.user.userIds[{position}]"
        if not isinstance(entry, dict) or entry.get("idType") not in LINKEDIN_ID_TYPES:
            problems.append(f"{spot}.idType: not an id type")
            continue
        value = entry.get("idValue")
        if not isinstance(value, str) or not value:
            problems.append(f"{spot}.idValue: missing")
        elif entry["idType"] == "SHA256_EMAIL":
            problems += _hash_problems(f"{spot}.idValue", value)
    return problems


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def check_microsoft(
    root: ET.Element, now: datetime, limit: int
) -> tuple[list[str], dict[str, str], Events]:
    """Check an ``ApplyOfflineConversions`` SOAP envelope; also return its SOAP headers."""
    problems: list[str] = []
    if root.tag != f"{{{SOAP_NS}}}Envelope":
        return [f"Envelope: root element is {root.tag}"], {}, []
    header = root.find(f"{{{SOAP_NS}}}Header")
    body = root.find(f"{{{SOAP_NS}}}Body")
    if header is None or body is None:
        return ["Envelope: no Header or no Body"], {}, []

    soap_headers = {}
    for child in header:
        if not child.tag.startswith(f"{{{SERVICE_NS}}}"):
            problems.append(f"Header.{child.tag}: not in the service namespace")
        soap_headers[_local(child.tag)] = (child.text or "").strip()
    if soap_headers.get("Action") != "ApplyOfflineConversions":
        problems.append(f"Header.Action: {soap_headers.get('Action')!r}")
    for name in ("CustomerAccountId", "CustomerId"):
        if not soap_headers.get(name, "").isdigit():
            problems.append(f"Header.{name}: {soap_headers.get(name)!r} is not digits")

    operation = body.find(f"{{{SERVICE_NS}}}ApplyOfflineConversionsRequest")
    holder = (
        operation.find(f"{{{SERVICE_NS}}}OfflineConversions") if operation is not None else None
    )
    if holder is None:
        return (
            [*problems, "Body: no ApplyOfflineConversionsRequest/OfflineConversions"],
            soap_headers,
            [],
        )
    conversions = list(holder)
    if not conversions:
        problems.append("OfflineConversions: empty")
    if len(conversions) > limit:
        problems.append(f"OfflineConversions: {len(conversions)}, more than {limit}")

    events: Events = []
    for index, conversion in enumerate(conversions):
        where = f"OfflineConversion[{index}]"
        fields = {_local(child.tag): (child.text or "").strip() for child in conversion}
        names = [_local(child.tag) for child in conversion]
        unknown = [name for name in names if name not in MICROSOFT_FIELDS]
        if unknown:
            problems.append(f"{where}: unknown elements {unknown}")
        elif names != sorted(names, key=MICROSOFT_FIELDS.index):
            problems.append(f"{where}: elements out of schema order: {names}")
        for name in ("ConversionName", "ConversionTime", "MicrosoftClickId"):
            if not fields.get(name):
                problems.append(f"{where}.{name}: missing")
        stamp = fields.get("ConversionTime", "")
        if stamp and not XS_UTC.match(stamp):
            problems.append(f"{where}.ConversionTime: {stamp!r} is not a UTC xs:dateTime")
        elif stamp:
            moment = datetime.fromisoformat(stamp)
            problems += _age_problems(f"{where}.ConversionTime", moment, now, 90)
        if "ConversionValue" in fields:
            try:
                float(fields["ConversionValue"])
            except ValueError:
                problems.append(f"{where}.ConversionValue: not an xs:double")
        if "ConversionCurrencyCode" in fields and not CURRENCY.match(
            fields["ConversionCurrencyCode"]
        ):
            problems.append(f"{where}.ConversionCurrencyCode: not ISO 4217")
        for name in ("HashedEmailAddress", "HashedPhoneNumber"):
            if name in fields:
                problems += _hash_problems(f"{where}.{name}", fields[name])
        key = (fields.get("ConversionName"), fields.get("MicrosoftClickId"), stamp)
        events.append((key, fields))
    return problems, soap_headers, events

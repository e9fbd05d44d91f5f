"""Test data for the schemathesis run in scripts/conformance.

The spec states every rule a JSON schema can hold (patterns, bounds,
enums). Two rules depend on the server's state and the clock, so no schema
can state them, and random input almost never meets them:

- an endpoint subscribes to exact event types the tenant has registered
  (`*` and `prefix.*` need nothing), and the run may delete any type it
  finds, so exact names become the family `conformance.*`;
- an endpoint's host may not be a private, loopback or otherwise
  restricted address (HOOKFLEET_ALLOW_CIDRS can open ranges, so the spec
  cannot list them), so IP and numeric hosts become `hooks.example.com`;
- a replay's window lies within the last seven days.

This hook puts such values in place of what was drawn, and only where the
drawn value was itself valid: a value drawn to break the schema stays
broken, so the negative checks still see it refused.
"""

import datetime
import re

import schemathesis

FAMILY = "conformance.*"
PUBLIC_HOST = "hooks.example.com"
# scheme, userinfo, host, the rest; the URL already matches the spec's pattern.
URL_PARTS = re.compile(r"^([A-Za-z]+://)([^/?@]*@)?(\[[^\]]*\]|[^/?:]*)(.*)$", re.S)
NUMERIC_LABEL = re.compile(r"^(0[xX][0-9A-Fa-f]*|[0-9]+)$")
EXACT_NAME = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
SUBSCRIBING = {("POST", "/api/v1/webhooks"), ("PATCH", "/api/v1/webhooks/{id}")}
REPLAY = ("POST", "/api/v1/webhooks/{id}/replay")


# The spec's own pattern for `url`, read from the spec the run loaded.
URL_PATTERN = re.compile(r"(?!)")


@schemathesis.hook
def before_load_schema(ctx, raw_schema):
    global URL_PATTERN
    pattern = raw_schema["components"]["schemas"]["CreateWebhook"]["properties"]["url"]["pattern"]
    URL_PATTERN = re.compile(pattern)


def _public_url(url):
    """The URL with a host the destination policy accepts."""
    parts = URL_PARTS.match(url)
    if not parts:
        return url
    scheme, userinfo, host, rest = parts.groups()
    name = host.rstrip(".").lower()
    labels = name.split(".")
    restricted = (
        host.startswith("[")
        or NUMERIC_LABEL.match(labels[-1]) is not None
        or name == "localhost"
        or name.endswith(".localhost")
    )
    return f"{scheme}{userinfo or ''}{PUBLIC_HOST}{rest}" if restricted else url


def _is_time(value):
    if not isinstance(value, str):
        return False
    try:
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    # Every phase sends through here; map_body would miss the coverage
    # phase's cases.
    body = case.body
    if not isinstance(body, dict):
        return
    operation = (case.method.upper(), case.operation.path)
    if operation in SUBSCRIBING:
        if isinstance(body.get("events"), list):
            body["events"] = [
                FAMILY if isinstance(e, str) and len(e) <= 128 and EXACT_NAME.match(e) else e
                for e in body["events"]
            ]
        url = body.get("url")
        if isinstance(url, str) and len(url) <= 2048 and URL_PATTERN.match(url):
            body["url"] = _public_url(url)
    elif operation == REPLAY:
        now = datetime.datetime.now(datetime.timezone.utc)
        if _is_time(body.get("since")):
            body["since"] = (now - datetime.timedelta(hours=1)).isoformat()
        if _is_time(body.get("until")):
            body["until"] = now.isoformat()

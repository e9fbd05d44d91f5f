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
- a replay's window lies within the last seven days;
- a portal link names the key's own tenant and endpoints that exist, and a
  portal session needs the token of a live link: these come from the API
  itself (HOOKFLEET_CONFORMANCE_BASE and HOOKFLEET_CONFORMANCE_KEY name it
  and the tenant key of the run).

This hook puts such values in place of what was drawn, and only where the
drawn value was itself valid: a value drawn to break the schema stays
broken, so the negative checks still see it refused.
"""

import datetime
import json
import os
import re
import urllib.error
import urllib.request

import schemathesis

FAMILY = "conformance.*"
PUBLIC_HOST = "hooks.example.com"
# scheme, userinfo, host, the rest; the URL already matches the spec's pattern.
URL_PARTS = re.compile(r"^([A-Za-z]+://)([^/?@]*@)?(\[[^\]]*\]|[^/?:]*)(.*)$", re.S)
NUMERIC_LABEL = re.compile(r"^(0[xX][0-9A-Fa-f]*|[0-9]+)$")
EXACT_NAME = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
SUBSCRIBING = {("POST", "/api/v1/webhooks"), ("PATCH", "/api/v1/webhooks/{id}")}
REPLAY = ("POST", "/api/v1/webhooks/{id}/replay")
PORTAL_LINK = ("POST", "/api/v1/portal-links")
PORTAL_SESSION = ("POST", "/api/v1/portal-sessions")
TENANT_ID = re.compile(r"^ten_[0-9a-hjkmnp-tv-z]+$")
ENDPOINT_ID = re.compile(r"^ep_[0-9a-hjkmnp-tv-z]+$")


def _api(method, path, body=None):
    """(status, JSON answer) of a request with the run's tenant key."""
    base = os.environ.get("HOOKFLEET_CONFORMANCE_BASE")
    key = os.environ.get("HOOKFLEET_CONFORMANCE_KEY")
    if not base or not key:
        return 0, None
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {key}")
    request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, None
    except (urllib.error.URLError, OSError, ValueError):
        return 0, None


_TENANT = []
_ENDPOINT = []


def _tenant_id():
    if not _TENANT:
        status, me = _api("GET", "/api/v1/me")
        if status == 200 and isinstance(me, dict) and me.get("tenant_id"):
            _TENANT.append(me["tenant_id"])
    return _TENANT[0] if _TENANT else None


def _endpoint_id():
    """An endpoint of the run's tenant that exists now (the run may have
    deleted the last one)."""
    if _ENDPOINT:
        status, _ = _api("GET", f"/api/v1/webhooks/{_ENDPOINT[0]}")
        if status == 200:
            return _ENDPOINT[0]
        _ENDPOINT.clear()
    status, created = _api(
        "POST", "/api/v1/webhooks", {"url": f"https://{PUBLIC_HOST}/portal", "events": ["*"]}
    )
    if status == 201 and isinstance(created, dict):
        _ENDPOINT.append(created["id"])
        return created["id"]
    return None


def _portal_link():
    """(token, id) of a new live portal link of the run's tenant."""
    status, link = _api("POST", "/api/v1/portal-links", {})
    if status == 201 and isinstance(link, dict):
        return link["url"].split("#", 1)[1], link["id"]
    return None


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
    elif operation == PORTAL_LINK:
        tenant = body.get("tenant_id")
        if isinstance(tenant, str) and TENANT_ID.match(tenant):
            body["tenant_id"] = _tenant_id() or tenant
        endpoints = body.get("endpoint_ids")
        if isinstance(endpoints, list) and endpoints:
            real = _endpoint_id()
            body["endpoint_ids"] = [
                real if real and isinstance(e, str) and ENDPOINT_ID.match(e) else e
                for e in endpoints
            ]
    elif operation == PORTAL_SESSION:
        token = body.get("token")
        if isinstance(token, str) and 1 <= len(token) <= 128:
            live = _portal_link()
            if live:
                body["token"] = live[0]
                if isinstance(body.get("link_id"), str) and len(body["link_id"]) <= 64:
                    body["link_id"] = live[1]
    elif operation == REPLAY:
        now = datetime.datetime.now(datetime.timezone.utc)
        if _is_time(body.get("since")):
            body["since"] = (now - datetime.timedelta(hours=1)).isoformat()
        if _is_time(body.get("until")):
            body["until"] = now.isoformat()

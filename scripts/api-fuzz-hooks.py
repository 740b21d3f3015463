# Schemathesis hooks for scripts/api-fuzz: the places where what openapi.yaml can say (the shape
# of a value) is less than what the server checks (whose value it is), each as narrow as the
# documented rule, and signatures for webhook deliveries so that their bodies are fuzzed past the
# signature check. Everything else is fuzzed and checked as the spec says.
import base64
import hashlib
import hmac
import json
import os
import re
import time
import urllib.request

import jwt
import schemathesis
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# openapi.yaml's StartProveRequest.phone_number pattern.
PHONE = re.compile(r"^(\+1[0-9]{10}|\+[2-9][0-9]{7,14}|[0-9]{10})$")
# Prove's sandbox test users (local/src/sandbox/prove.rs): the simulator answers any other number
# with "no test user", which the gateway documents as 400 `unknown_test_user` on phone_number.
SANDBOX_NA = "2001004011"
SANDBOX_EU = "+447968900002"


# openapi.yaml's X-PAYLOAD-DIGEST and X-Prove-Authorization patterns.
DIGEST = re.compile(r"^([0-9A-Fa-f]{64}|[A-Za-z0-9+/_-]{43}=?)$")
PROVE_BEARER = re.compile(r"^Bearer [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
# openapi.yaml's Stripe-Signature pattern.
STRIPE_SIGNATURE = re.compile(r"^t=[0-9]{1,12}(,v[01]=[0-9a-f]{64}){1,4}$")


def wire_bytes(body):
    """The bytes the requests transport sends for a JSON body (`json=`: json.dumps, no NaN)."""
    if isinstance(body, bytes):
        return body
    if body is None:
        return b"null"
    return json.dumps(body, allow_nan=False).encode("utf-8")


def header_name(headers, name):
    return next((k for k in headers if k.lower() == name.lower()), None)


def sign_webhook(case):
    """A well-formed signature header becomes a valid one (the secrets come from scripts/api-fuzz),
    so the body behind it meets the parser, the store and the provider read; a malformed or
    missing header is left as generated and must still be refused with 401."""
    op = (case.operation.method.upper(), case.operation.path)
    headers = case.headers or {}
    if op == ("POST", "/v1/webhooks/authento"):
        name = header_name(headers, "X-PAYLOAD-DIGEST")
        secret = os.environ.get("IDV_FUZZ_AUTHENTO_WEBHOOK_SECRET")
        if name and secret and isinstance(headers[name], str) and DIGEST.match(headers[name]):
            try:
                raw = wire_bytes(case.body)
            except (TypeError, ValueError):
                return
            headers[name] = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    elif op == ("POST", "/v1/webhooks/prove"):
        name = header_name(headers, "X-Prove-Authorization")
        secret = os.environ.get("IDV_FUZZ_PROVE_WEBHOOK_SECRET")
        if name and secret and isinstance(headers[name], str) and PROVE_BEARER.match(headers[name]):
            now = int(time.time())
            token = jwt.encode({"iss": "Prove Identity", "iat": now, "exp": now + 300}, secret, "HS256")
            headers[name] = f"Bearer {token}"
    elif op == ("POST", "/v1/webhooks/stripe"):
        # Stripe signs "{t}.{raw body}" (HMAC-SHA256, hex, keyed with the whole whsec_ string);
        # signed now, so the timestamp is fresh.
        name = header_name(headers, "Stripe-Signature")
        secret = os.environ.get("IDV_FUZZ_STRIPE_WEBHOOK_SECRET")
        if name and secret and isinstance(headers[name], str) and STRIPE_SIGNATURE.match(headers[name]):
            try:
                raw = wire_bytes(case.body)
            except (TypeError, ValueError):
                return
            t = str(int(time.time()))
            v1 = hmac.new(secret.encode(), t.encode() + b"." + raw, hashlib.sha256).hexdigest()
            headers[name] = f"t={t},v1={v1}"
    elif op == ("POST", "/v1/webhooks/passbase"):
        # Passbase encrypts its JSON event: base64(IV + AES-256-CBC(secret, event)), as text/plain.
        # A generated JSON event is encrypted the same way, so the decrypted event (well-formed or
        # not) meets the parser, the store and the identity read; junk text stays junk (401).
        secret = os.environ.get("IDV_FUZZ_PASSBASE_WEBHOOK_SECRET")
        if secret and case.media_type == "application/json":
            try:
                raw = wire_bytes(case.body)
            except (TypeError, ValueError):
                return
            iv = os.urandom(16)
            padder = padding.PKCS7(128).padder()
            enc = Cipher(algorithms.AES(secret.encode()), modes.CBC(iv)).encryptor()
            ct = enc.update(padder.update(raw) + padder.finalize()) + enc.finalize()
            case.body = base64.b64encode(iv + ct).decode()
            case.media_type = "text/plain"


# openapi.yaml's Idempotency-Key pattern.
IDEMPOTENCY_KEY = re.compile(r"^[!-~]{1,255}$")


def distinct_idempotency_keys(case):
    """The fuzzer draws the same few keys ("0", "00", ...) for unrelated requests, and a key reused
    with another request is rightly 409, so most schema-valid creates would stop there. A
    well-formed key becomes a digest of itself, the operation and the body: the same request
    with the same key still replays (and is checked as such), another request gets its own key.
    The 409 for a reused key stays covered by the integration tests. Positive cases only: an
    edited header makes schemathesis revalidate the case, which would turn a negative one (say,
    without its Authorization header) into a positive one and send it with the header after all."""
    if case.meta is None or case.meta.generation.mode != "positive":
        return
    headers = case.headers or {}
    name = header_name(headers, "Idempotency-Key")
    if not name or not isinstance(headers[name], str) or not IDEMPOTENCY_KEY.match(headers[name]):
        return
    try:
        raw = wire_bytes(case.body)
    except (TypeError, ValueError):
        return
    h = hashlib.sha256(f"{headers[name]}\0{case.operation.method} {case.operation.path}\0".encode())
    h.update(raw)
    headers[name] = "fuzz-" + h.hexdigest()[:32]


# openapi.yaml's EndpointUrl pattern: `https://`, the host, then a path and query.
ENDPOINT_URL = re.compile(
    r"^https://([A-Za-z0-9]+(-[A-Za-z0-9]+)*\.)*[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*"
    r"(/([A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-Fa-f]{2})*)?(\?([A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?$"
)
ENDPOINT_HOST = re.compile(r"^https://[^/?]*")


def endpoint_on_loopback(case):
    """The local server sends every event to the endpoints registered, within a second: an endpoint
    URL the fuzzer made up (`https://a.example/...`) would be resolved and dialled, reaching hosts
    on the network. A well-formed URL keeps its path and query but its host becomes `localhost`
    (still well-formed, so the case stays what it was; /etc/hosts answers it, and nothing listens
    on its port 443, so deliveries fail at once and are retried). A malformed URL is left as
    generated and must be refused."""
    op = (case.operation.method.upper(), case.operation.path)
    body = case.body
    if (
        op in (("POST", "/v1/endpoints"), ("PATCH", "/v1/endpoints/{id}"))
        and isinstance(body, dict)
        and isinstance(body.get("url"), str)
        and ENDPOINT_URL.match(body["url"])
    ):
        body["url"] = ENDPOINT_HOST.sub("https://localhost", body["url"], count=1)


# The most endpoints a tenant may have (shared/src/events/endpoints.rs MAX_ENDPOINTS).
MAX_ENDPOINTS = 10


def api(method, path):
    """A call to the server under test, outside the fuzzer's cases (scripts/api-fuzz sets both)."""
    req = urllib.request.Request(
        os.environ["IDV_FUZZ_BASE_URL"] + path,
        method=method,
        headers={"Authorization": "Bearer " + os.environ["IDV_FUZZ_API_KEY"]},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def room_for_an_endpoint(case):
    """A tenant has at most 10 endpoints, and the fuzzer creates far more: past the tenth, every
    create would be a (correct, documented) 409, and neither the create's answer nor the
    stateful phase's chains from it (read, change, rotate, delete) would be exercised again.
    Before a schema-valid create, the oldest endpoint goes when there are 10 already. The 409
    itself stays covered by tests/integration/openapi.rs."""
    if (case.operation.method.upper(), case.operation.path) != ("POST", "/v1/endpoints"):
        return
    if case.meta is None or case.meta.generation.mode != "positive":
        return
    endpoints = (api("GET", "/v1/endpoints") or {}).get("data") or []
    if len(endpoints) >= MAX_ENDPOINTS:
        api("DELETE", "/v1/endpoints/" + endpoints[0]["id"])  # oldest first


@schemathesis.hook
def before_call(context, case, kwargs):
    prove_sandbox_number(case)
    endpoint_on_loopback(case)
    room_for_an_endpoint(case)
    distinct_idempotency_keys(case)
    sign_webhook(case)


def prove_sandbox_number(case):
    """A well-formed Prove number becomes the sandbox test user of its region (NA for +1 and
    10-digit numbers, EU for the rest), so schema-valid Prove starts reach Prove's flow instead of
    stopping at the sandbox's unknown number. A malformed number is left as generated. (Before the
    call rather than at generation: the coverage and stateful phases build cases of their own.)"""
    body = case.body
    if (
        (case.operation.method.upper(), case.operation.path) == ("POST", "/v1/sessions")
        and isinstance(body, dict)
        and body.get("provider") == "prove"
        and isinstance(body.get("phone_number"), str)
        and PHONE.match(body["phone_number"])
    ):
        na = body["phone_number"].startswith("+1") or not body["phone_number"].startswith("+")
        body["phone_number"] = SANDBOX_NA if na else SANDBOX_EU


# Schema-valid values the server must refuse because of whose they are, as openapi.yaml documents:
# a cursor the listing did not hand out, an endpoint id of no endpoint of the tenant's.
REFUSED_FOR_WHOSE = {
    ("GET", "/v1/users/{user_id}/sessions"): "cursor",
    ("GET", "/v1/sessions"): "cursor",
    ("POST", "/v1/events/{id}/resend"): "endpoint_id",
}


# A retry's start fields are those of the retried session's provider (docs/api.md#retry), which
# openapi.yaml cannot name for a session id: RetrySessionRequest allows any, and the server
# refuses another provider's field, or a missing one that provider requires.
RETRY = ("POST", "/v1/sessions/{id}/retry")


def errors_of(response):
    try:
        return response.json().get("errors") or []
    except ValueError:
        return None


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Cursors are opaque and bound to the listing that handed them out: a schema-valid cursor the
    fuzzer made up is refused with 400 naming `cursor`; a resend to an `endpoint_id` the tenant does
    not have is refused with 400 naming `endpoint_id`. A retry's start fields are refused with 400
    when the retried session's provider does not take them or requires others (never `metadata`,
    which openapi.yaml states whole). Only those refusals are dropped; any other 400 of a
    schema-valid request still fails the run."""
    op = (case.operation.method.upper(), case.operation.path)
    if failure.code != "ST202" or response.status_code != 400:
        return True
    errors = errors_of(response)
    if errors is None:
        return True
    field = REFUSED_FOR_WHOSE.get(op)
    if field:
        return not (errors and all(e.get("field") == field for e in errors))
    if op == RETRY:
        fields = [str(e.get("field", "")) for e in errors]
        return not (fields and not any(f == "metadata" or f.startswith("metadata.") for f in fields))
    return True

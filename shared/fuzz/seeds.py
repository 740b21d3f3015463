#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into DIR/<target>/, made from events/*.json (the
sample API Gateway requests and webhooks) plus the payloads the unit tests use as fixtures.

Generated on each scripts/fuzz run rather than committed: the seeds follow events/ as it changes,
and the inputs libFuzzer finds (the growing corpus) stay outside the clone.

Input layouts are the targets' own (see their doc comments): header fields end in a NUL byte.
    python3 fuzz/seeds.py EVENTS_DIR DIR
"""
import base64
import glob
import hashlib
import json
import os
import sys

events_dir, out = sys.argv[1], sys.argv[2]
seeds = {}


def add(target, data):
    if isinstance(data, str):
        data = data.encode()
    seeds.setdefault(target, []).append(data)


def nul(*parts):
    return b"\0".join(p.encode() if isinstance(p, str) else p for p in parts)


for path in sorted(glob.glob(os.path.join(events_dir, "*.json"))):
    event = json.load(open(path))
    if "rawPath" not in event:  # the scheduled event: not HTTP
        continue
    body = (event.get("body") or "").encode()
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body)
    headers = event.get("headers") or {}
    method = event["requestContext"]["http"]["method"]
    query = event.get("rawQueryString") or ""
    # The function each events/ file is for: its binary name, which handle.rs takes as it is.
    function = os.path.basename(path).split(".")[0]

    add("routes", nul(method, query, event["rawPath"]))
    add("handle", nul(function, method, event["rawPath"], query,
                      "\n".join(f"{k}: {v}" for k, v in headers.items()), body))
    try:
        if isinstance(json.loads(body), dict):
            add("bodies_json", body)
            add("bodies_json", nul("key-1", body))
    except ValueError:
        pass
    if "x-payload-digest" in headers:
        add("authento_webhook", body)
        add("authento_webhook", nul(headers["x-payload-digest"], headers.get("x-payload-digest-alg", ""), body))
    if "x-prove-authorization" in headers:
        add("prove_webhook", body)
        add("prove_webhook", nul(headers["x-prove-authorization"], "", body))
    if event["rawPath"] == "/v1/webhooks/passbase":
        add("passbase_webhook", body)
    if "stripe-signature" in headers:
        add("stripe_webhook", body)
        add("stripe_webhook", nul(headers["stripe-signature"], body))

# Fixtures of the unit tests (shared/src/providers/*/webhook.rs, secrets.rs, events/README.md).
add("authento_webhook", '{"event":"REVIEWED","userIdentifier":"user-42","status":{"basic":"VERIFIED"}}')
add("prove_webhook", '[{"eventId":"e1","eventType":"DISCONNECT","identityId":"i1","eventTimestamp":'
    '"2026-11-21T22:00:00Z","description":"x"},{"eventId":"e2","eventType":"NEW_KIND","proveId":"i1"}]')
add("passbase_webhook", '{"event":"VERIFICATION_COMPLETED","key":"5a3c1b2e-0d4f-4e6a-9b8c-7d6e5f4a3b2c",'
    '"status":"approved","created":1795000000,"updated":1795000090,"processed":1795000090}')
add("passbase_webhook", '{"event":"VERIFICATION_REVIEWED","key":"B76E244E-26A3-49EF-9C72-3E599BF0B5F2",'
    '"status":"approved","created":1582628711}')
fk = "0123456789abcdef0123456789abcdef"
add("secret_doc", json.dumps({"fingerprint_key": fk, "api_keys": [{"tenant": "my-app", "sha256": "ab" * 32}]}))
add("secret_doc", json.dumps({
    "fingerprint_key": fk, "api_keys": [{"tenant": "a", "sha256": "abc"}],
    "authento": {"api_key": "k", "api_secret": "very-secret", "jwt_secret": "j", "webhook_secret": "new",
                 "webhook_secret_previous": "old"},
    "prove": {"client_id": "c", "client_secret": "s", "webhook_secret": "whsec_x"},
    "nevis": {"access_key": "n"}, "passbase": {"api_key": "k", "webhook_secret": "too-short"}}))
add("secret_doc", '{"fingerprint_key":"short-secret"}')

# Cursors as store/cursor.rs encodes them, for two listings.
for tenant, user, ns in [("t", "u", 1_800_000_000_123_456_789), ("my-app", "user-42", 0)]:
    tag = hashlib.sha256(tenant.encode() + b"\0" + user.encode()).hexdigest()[:16]
    raw = f"v1|{ns}|ses_abcdefghijklmnopqrstuvwxyz|{tag}".encode()
    add("cursor", nul(tenant, user, base64.urlsafe_b64encode(raw).rstrip(b"=")))

# Endpoint URLs: good ones, and each kind the guard refuses.
for u in ["https://hooks.example.com/idv", "http://127.0.0.1:9000/events", "https://10.0.0.1/x",
          "https://[::ffff:10.0.0.1]/x", "http://169.254.169.254/latest", "https://user:pw@example.com/",
          "https://2130706433/", "https://localhost./x", "https://[fe80::1%25eth0]/"]:
    add("endpoint_url", u)

# Stream images: those of the notify sample event.
stream = json.load(open(os.path.join(events_dir, "notify.stream.json")))
for record in stream["Records"]:
    add("stream_record", json.dumps(record["dynamodb"]["NewImage"]))

for target, items in seeds.items():
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    for data in items:
        name = hashlib.sha1(data).hexdigest()  # libFuzzer's own naming: re-runs overwrite, not add
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
print(" ".join(f"{t}:{len(v)}" for t, v in sorted(seeds.items())))

# Schemathesis hooks for scripts/api-fuzz: the two places where what openapi.yaml can say (the
# shape of a value) is less than what the server checks (whose value it is), each as narrow as the
# documented rule. Everything else is fuzzed and checked as the spec says.
import re

import schemathesis

# openapi.yaml's StartProveRequest.phone_number pattern.
PHONE = re.compile(r"^(\+1[0-9]{10}|\+[2-9][0-9]{7,14}|[0-9]{10})$")
# Prove's sandbox test users (local/src/sandbox/prove.rs): the simulator answers any other number
# with "no test user", which the gateway documents as 400 `unknown_test_user` on phone_number.
SANDBOX_NA = "2001004011"
SANDBOX_EU = "+447968900002"


@schemathesis.hook
def before_call(context, case, kwargs):
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


@schemathesis.hook
def filter_failure(context, failure, case, response):
    """Cursors are opaque and bound to the listing that handed them out: a schema-valid cursor the
    fuzzer made up is refused with 400 naming `cursor`, as openapi.yaml documents. Only that
    refusal is dropped; any other 400 of a schema-valid listing request still fails the run."""
    if (
        failure.code == "ST202"
        and (case.operation.method.upper(), case.operation.path)
        == ("GET", "/v1/users/{user_id}/sessions")
        and response.status_code == 400
    ):
        try:
            errors = response.json().get("errors") or []
        except ValueError:
            return True
        return not (errors and all(e.get("field") == "cursor" for e in errors))
    return True

"""Schemathesis hooks for .ci/schemathesis.

- Generated `POST /webhook` bodies are signed. Without a valid `X-Signature` every generated
  delivery would be refused with 401 before its body is read, and nothing past the signature
  check would be tested. The signature is made over the exact bytes sent (as a `requests` auth
  hook, after the body is serialized), with the running server's `WEBHOOK_SECRET`. A generated
  `X-Signature` that is not 64 hex digits is left alone: it is a deliberately invalid header,
  and the server must refuse it.
- Generated `cursor` values are dropped. A cursor is an HMAC-sealed token that only a previous
  page's `next_cursor` can provide; a string made up to fit the schema is forged by
  construction, and the server rightly refuses it (422), which the positive-data check would
  count as a valid request rejected. Cursors reached through `next_cursor` are still used.
- A valid `wait` above one second on `GET /messages/feed` is sent as `wait=1`. A held request
  that finds nothing new is answered when the wait ends (up to 60 s), longer than the
  tool's request timeout; one second still exercises holding. Out-of-range and malformed
  values are sent as generated, and must be refused.
"""

import hashlib
import hmac
import os
import re

import schemathesis

SECRET = os.environ["WEBHOOK_SECRET"].encode()
WELL_FORMED = re.compile(r"^[0-9a-fA-F]{64}$")
# The documented range of the feed's `wait`, in seconds.
WAIT_RANGE = range(0, 61)


class SignBody:
    """Sets `X-Signature` to the HMAC-SHA256 of the request body as it is sent."""

    def __call__(self, request):
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        request.headers["X-Signature"] = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        return request


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.operation.method.upper() == "GET" and case.operation.path == "/messages/feed":
        hold_briefly(case)
    if case.operation.method.upper() != "POST" or case.operation.path != "/webhook":
        return
    generated = (case.headers or {}).get("X-Signature")
    if generated is None or WELL_FORMED.match(str(generated)):
        kwargs["auth"] = SignBody()


def hold_briefly(case):
    """Sends a valid `wait` above one second as `wait=1`."""
    wait = (case.query or {}).get("wait")
    if isinstance(wait, bool) or not isinstance(wait, (int, str)):
        return
    if str(wait).isdigit() and str(int(wait)) == str(wait) and int(wait) in WAIT_RANGE:
        if int(wait) > 1:
            case.query["wait"] = 1


@schemathesis.hook
def map_query(context, query):
    if query and "cursor" in query:
        query = {name: value for name, value in query.items() if name != "cursor"}
    return query

"""Prints the signatures tests/api/standard_webhooks.rs replays, made by the official libraries.

    pip install standardwebhooks==1.1.0 svix==2.9.1
    python3 tests/api/standard_webhooks_vectors.py > tests/api/standard_webhooks_vectors.json

Each signature is made by the library's own signing code and checked by its own verifier (with
the headers named as that library's senders name them) before it is printed, so a fixture the
service accepts is one these libraries produce and accept.
"""

import json
from datetime import datetime, timezone
from unittest import mock

import standardwebhooks
import svix

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TIMESTAMP = 1736935200  # 2025-01-15T10:00:00Z


def body(message_id):
    return json.dumps(
        {
            "message_id": message_id,
            "from": "+919876543210",
            "to": "+14155550100",
            "ts": "2025-01-15T10:00:00Z",
            "text": "signed by a library",
        },
        separators=(",", ":"),
    )


def verified(verifier, data, headers):
    # The libraries allow five minutes around now: verify as of the signing time.
    at = datetime.fromtimestamp(TIMESTAMP, tz=timezone.utc)
    with mock.patch("standardwebhooks.webhooks.datetime") as clock:
        clock.now.return_value = at
        clock.fromtimestamp = datetime.fromtimestamp
        verifier.verify(data, headers)


def vector(library, name, prefix):
    msg_id = f"msg_{name}"
    data = body(f"{name}-1")
    signature = library.Webhook(SECRET).sign(
        msg_id, datetime.fromtimestamp(TIMESTAMP, tz=timezone.utc), data
    )
    headers = {
        f"{prefix}-id": msg_id,
        f"{prefix}-timestamp": str(TIMESTAMP),
        f"{prefix}-signature": signature,
    }
    verified(library.Webhook(SECRET), data, headers)
    return {"library": name, "body": data, "headers": headers}


print(
    json.dumps(
        [
            vector(standardwebhooks, "standardwebhooks", "webhook"),
            vector(svix, "svix", "svix"),
        ],
        indent=2,
    )
)

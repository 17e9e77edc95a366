#!/usr/bin/env python3
"""Generates realistic, distinct webhook messages and signs them the way a provider would.

Output: one request per line, `signature<TAB>body`, where `body` is the exact JSON text that is
sent and `signature` is the lowercase hex HMAC-SHA256 of its UTF-8 bytes under the secret. JSON
escapes tabs and newlines inside strings, so neither ever appears raw in a body.

The data looks like real traffic: about 10,000 senders with a skewed (Zipf-like) share each, a
few business numbers as recipients, provider-style message ids, timestamps that never go back
and sometimes carry a sub-second fraction, and texts of 20-200 characters, some of them not
ASCII. The same seed always gives the same file, so runs are reproducible.

Stdlib only; also imported by `run` for the pre-filled database rows.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import hmac
import itertools
import json
import random
import sys
from datetime import datetime, timedelta, timezone

SENDER_COUNT = 10_000
RECIPIENTS = (
    "+14155550100",
    "+14155550101",
    "+442071838750",
    "+919810012345",
    "+5511955550123",
    "+4930901820",
)
# (country code, digits after it): mobile numbers of a few countries.
SENDER_PLANS = (("91", 10), ("1", 10), ("44", 10), ("49", 11), ("55", 11), ("234", 10), ("62", 11))
WORDS = (
    "hi hello thanks please order delivery tomorrow today payment received refund status "
    "where is my package tracking number confirm cancel appointment reschedule at pm am "
    "ok yes no can you call me back price invoice account password reset help issue "
    "still waiting great service address changed new store open hours weekend offer"
).split()
EXTRAS = ("🙂", "👍", "¿", "é", "ß", "ñ", "€", "₹", "数据", "привет", "🚚", "✅")

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def sender_pool(rng: random.Random) -> list[str]:
    """SENDER_COUNT distinct E.164 numbers."""
    pool: set[str] = set()
    while len(pool) < SENDER_COUNT:
        country, digits = rng.choice(SENDER_PLANS)
        first = rng.choice("6789") if country == "91" else str(rng.randint(2, 9))
        rest = "".join(rng.choice("0123456789") for _ in range(digits - 1))
        pool.add(f"+{country}{first}{rest}")
    return sorted(pool)


def message_ids(rng: random.Random):
    """Endless distinct provider-style ids: mostly `SM` + 32 hex, some `wamid.` + base64url."""
    seen: set[str] = set()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    while True:
        if rng.random() < 0.7:
            candidate = f"SM{rng.getrandbits(128):032x}"
        else:
            candidate = "wamid.HBgM" + "".join(rng.choice(alphabet) for _ in range(40))
        if candidate not in seen:
            seen.add(candidate)
            yield candidate


def timestamps(rng: random.Random, base: datetime):
    """Endless non-decreasing RFC 3339 UTC texts; about a third carry a fraction."""
    now_us = (base - EPOCH) // timedelta(microseconds=1)
    shown_us = now_us
    while True:
        now_us += int(rng.expovariate(1 / 900_000))  # ~0.9 s apart on average
        roll = rng.random()
        unit = 1_000 if roll < 0.15 else 1 if roll < 0.25 else 1_000_000
        if now_us // unit * unit < shown_us:
            unit = 1  # the shorter text would go back in time: show every digit
        shown_us = now_us // unit * unit
        text = (EPOCH + timedelta(microseconds=shown_us)).strftime("%Y-%m-%dT%H:%M:%S")
        if unit == 1_000:
            text += f".{shown_us % 1_000_000 // 1_000:03d}"
        elif unit == 1:
            text += f".{shown_us % 1_000_000:06d}"
        yield text + "Z"


def text_of(rng: random.Random) -> str:
    """20-200 characters of chat-like words, sometimes with non-ASCII characters."""
    target = rng.randint(20, 200)
    words: list[str] = []
    length = -1
    while length < target:
        word = rng.choice(EXTRAS) if rng.random() < 0.03 else rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
    text = " ".join(words)[:target].rstrip()
    return text.ljust(20, ".")


def ts_micros(ts: str) -> int:
    """Microseconds since the epoch for a `...Z` timestamp (what the service stores as ts_us)."""
    moment = datetime.fromisoformat(ts[:-1] + "+00:00")
    return (moment - EPOCH) // timedelta(microseconds=1)


def messages(seed: int, base: datetime):
    """Endless (message_id, from, to, ts, text) tuples, the same for the same seed."""
    rng = random.Random(seed)
    senders = sender_pool(random.Random(f"senders-{seed}"))
    # Zipf-like shares: the k-th sender writes about 1/k^0.8 as often as the first.
    weights = list(itertools.accumulate(1 / (rank**0.8) for rank in range(1, len(senders) + 1)))
    total = weights[-1]
    ids = message_ids(rng)
    stamps = timestamps(rng, base)
    while True:
        sender = senders[bisect.bisect_left(weights, rng.random() * total)]
        recipient = RECIPIENTS[rng.randrange(len(RECIPIENTS))]
        yield next(ids), sender, recipient, next(stamps), text_of(rng)


def senders_of(seed: int) -> list[str]:
    """The sender numbers `messages(seed, ...)` draws from."""
    return sender_pool(random.Random(f"senders-{seed}"))


def body_of(message_id: str, sender: str, recipient: str, ts: str, text: str) -> str:
    return json.dumps(
        {"message_id": message_id, "from": sender, "to": recipient, "ts": ts, "text": text},
        ensure_ascii=False,
        separators=(", ", ": "),
    )


def sign(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def write_bodies(path: str, count: int, secret: str, seed: int, base: datetime) -> None:
    """Writes `count` signed bodies to `path`, one `signature<TAB>body` line each."""
    key = secret.encode()
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for fields in itertools.islice(messages(seed, base), count):
            body = body_of(*fields)
            out.write(f"{sign(key, body.encode())}\t{body}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="file to write (signature<TAB>body per line)")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--base", default="2025-01-15T10:00:00Z", help="timestamp of the first message"
    )
    args = parser.parse_args()
    base = datetime.fromisoformat(args.base.replace("Z", "+00:00"))
    write_bodies(args.output, args.count, args.secret, args.seed, base)
    return 0


if __name__ == "__main__":
    sys.exit(main())

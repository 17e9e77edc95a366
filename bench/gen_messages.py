#!/usr/bin/env python3
"""Writes N realistic messages as NDJSON (one /webhook body per line) to stdout, for building
large databases with `webhook-processor import`.

The data has the shape the query benchmark needs: 10,000 senders with skewed traffic (a few
send a lot, most a little), 50 recipient numbers, timestamps increasing over about a year
(some with fractional seconds), and texts of 3 to 40 words from a vocabulary with common and
rare words, some of them not ASCII. Every 50,000th message carries the word `zebracorn`
(rare) and about one in four the word `order` (common), so searches of both kinds have known
answers. The same seed gives the same file.
"""

import argparse
import json
import random
import sys
import time

COMMON = (
    "order shipped payment received thanks call tomorrow invoice code verify account balance "
    "delivery confirm cancel booking ticket flight hotel reminder appointment doctor pharmacy "
    "package tracking update weather alert traffic school pickup dinner lunch coffee sale "
    "discount offer promo coupon bank card meeting please your the and for you with"
).split()
UNCOMMON = ("Köln Grüße café naïve résumé Ärger straße Ωmega München Zürich ñandú").split()
RARE_WORD = "zebracorn"
BASE_SECONDS = 1_704_067_200  # 2024-01-01T00:00:00Z


def senders(rng: random.Random, count: int = 10_000) -> list[str]:
    return [f"+1{rng.randrange(2_000_000_000, 9_999_999_999)}" for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--span-days", type=int, default=365)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    from_numbers = senders(rng)
    # Zipf-like weights: sender k sends about 1/(k+10) of the traffic.
    weights = [1.0 / (k + 10) for k in range(len(from_numbers))]
    to_numbers = [f"+44{rng.randrange(7_000_000_000, 7_999_999_999)}" for _ in range(50)]
    step_us = args.span_days * 86_400 * 1_000_000 // max(args.count, 1)
    out = sys.stdout
    chosen = rng.choices(range(len(from_numbers)), weights=weights, k=min(args.count, 1_000_000))
    for i in range(args.count):
        micros = BASE_SECONDS * 1_000_000 + i * step_us + rng.randrange(max(step_us, 1))
        seconds, fraction = divmod(micros, 1_000_000)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        ts = f"{stamp}.{fraction // 1000:03d}Z" if i % 3 else f"{stamp}Z"
        words = [rng.choice(COMMON) for _ in range(rng.randrange(3, 40))]
        if i % 7 == 0:
            words.append(rng.choice(UNCOMMON))
        if i % 4 == 0:
            words.append("order")
        if i % 50_000 == 25_000:
            words.append(RARE_WORD)
        message = {
            "message_id": f"SM{rng.getrandbits(64):016x}{i:x}",
            "from": from_numbers[chosen[i % len(chosen)]],
            "to": to_numbers[rng.randrange(len(to_numbers))],
            "ts": ts,
            "text": " ".join(words),
        }
        out.write(json.dumps(message, ensure_ascii=False))
        out.write("\n")


if __name__ == "__main__":
    main()

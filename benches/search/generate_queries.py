#!/usr/bin/env python3
"""The search benchmark's query set, derived from a catalog (JSON lines).

Both sides of the benchmark read the file this writes: `mercato bench
search` sends each line to GET /api/v1/search (or /search/suggest) and
benches/postgres/search.sh loads it into a table its SQL reads, so the two
systems answer exactly the same queries.

Types (COUNT of each, default 200):

  one_word   one word that product names use (at least 20 products; not a
             word of the product's brand), chosen
             with probability proportional to the square root of how many
             products use it: broad words ("headphones") and narrow ones.
  typo       two neighbouring words of one product's name, at least one of
             five or more letters, with one wrong letter (substituted,
             missing or doubled; never the first letter) in one such word.
             expect_id is that product: typo tolerance should find it.
  prefix     2 to 5 letters of a word (as typed into a search box with
             search-as-you-type), a word of at least 4 letters used by at
             least 20 products.
  facet      a category browse: empty q, the category filter, facets.
  filtered   a word of one product's name, plus its brand (40%), a price
             range around its price (40%) or both (20%), in_stock=true and
             sort=price_asc. expect_id is that product when it is in stock.
  suggest    what the suggest box gets: 2 to 5 letters of a word, after a
             full word of the same product name in 30% of them.

Each line: {"id", "type", "q", "category", "brand", "min_price",
"max_price", "in_stock", "sort", "limit", "expect_id"}; absent filters are
null, in_stock is true or false (false: no filter), limit is 20 for searches
and 8 for suggest. Deterministic for a given catalog, --seed and --count.

    python3 benches/search/generate_queries.py --catalog /tmp/catalog-100k.jsonl \\
        --out /tmp/search-queries.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
from collections import Counter
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path

SEED = 10
TYPES = ["one_word", "typo", "prefix", "facet", "filtered", "suggest"]
STOP = {"and", "the", "for", "with", "of", "in", "a", "an", "to", "on", "by", "at", "from",
        "set", "pack", "gen", "model", "edition"}
WORD_RE = re.compile(r"[a-z]+")
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def words_of(text: str) -> list[str]:
    """Lower-case ASCII words of a name (accented letters split words)."""
    return WORD_RE.findall(text.lower())


def typo(rng: random.Random, word: str) -> str:
    """One wrong letter, never the first: substituted, missing or doubled."""
    pos = rng.randrange(1, len(word))
    kind = rng.randrange(3)
    if kind == 0:
        other = rng.choice([c for c in LETTERS if c != word[pos]])
        return word[:pos] + other + word[pos + 1:]
    if kind == 1:
        return word[:pos] + word[pos + 1:]
    return word[:pos] + word[pos] + word[pos:]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, required=True, help="catalog JSONL")
    parser.add_argument("--out", type=Path, required=True, help="query set JSONL to write")
    parser.add_argument("--count", type=int, default=200, help="queries of each type (default 200)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"random seed (default {SEED})")
    args = parser.parse_args(argv)
    if not 1 <= args.count <= 100_000:
        parser.error("--count must be between 1 and 100000")

    products = []
    with args.catalog.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                products.append(json.loads(line))
    if not products:
        parser.error("the catalog is empty")
    rng = random.Random(args.seed)

    # Document frequency of name words, leaving out the brand's words: the
    # sample's brands are few, the scaled-up catalog's invented ones many,
    # and shoppers type product words far more often than brand names.
    df: Counter[str] = Counter()
    for p in products:
        df.update(set(words_of(p["name"])) - set(words_of(p["brand"])))
    vocab = sorted(w for w, n in df.items() if n >= 20 and len(w) >= 3 and w not in STOP)
    if not vocab:
        vocab = sorted(w for w in df if len(w) >= 3 and w not in STOP)
    weights = [math.sqrt(df[w]) for w in vocab]
    long_vocab = [w for w in vocab if len(w) >= 4]
    long_weights = [math.sqrt(df[w]) for w in long_vocab]
    categories = Counter(p["category"] for p in products)
    cat_names = sorted(categories)

    def base(kind: str) -> dict:
        return {"id": 0, "type": kind, "q": "", "category": None, "brand": None,
                "min_price": None, "max_price": None, "in_stock": False, "sort": "relevance",
                "limit": 8 if kind == "suggest" else 20, "expect_id": None}

    def prefix_of(word: str) -> str:
        return word[: rng.randint(2, min(5, len(word) - 1))]

    queries: list[dict] = []
    for kind in TYPES:
        made = 0
        attempts = 0
        while made < args.count:
            attempts += 1
            if attempts > args.count * 1000:
                raise SystemExit(f"could not make {args.count} {kind} queries from this catalog")
            q = base(kind)
            if kind == "one_word":
                q["q"] = rng.choices(vocab, weights)[0]
            elif kind == "typo":
                p = rng.choice(products)
                ws = [w for w in words_of(p["name"]) if len(w) >= 3 and w not in STOP]
                pairs = [(a, b) for a, b in zip(ws, ws[1:]) if max(len(a), len(b)) >= 5]
                if not pairs:
                    continue
                a, b = rng.choice(pairs)
                targets = [i for i, w in enumerate((a, b)) if len(w) >= 5]
                pair = [a, b]
                i = rng.choice(targets)
                pair[i] = typo(rng, pair[i])
                q["q"] = " ".join(pair)
                q["expect_id"] = p["id"]
            elif kind == "prefix":
                q["q"] = prefix_of(rng.choices(long_vocab, long_weights)[0])
            elif kind == "facet":
                q["category"] = rng.choices(cat_names, [categories[c] for c in cat_names])[0]
            elif kind == "filtered":
                p = rng.choice(products)
                ws = [w for w in words_of(p["name"]) if len(w) >= 4 and w not in STOP]
                if not ws:
                    continue
                q["q"] = rng.choice(ws)
                roll = rng.random()
                if roll < 0.6:
                    q["brand"] = p["brand"]
                if roll >= 0.4:
                    price = Decimal(p["price"])
                    q["min_price"] = str((price * Decimal("0.7")).quantize(Decimal(1), ROUND_FLOOR))
                    q["max_price"] = str((price * Decimal("1.3")).quantize(Decimal(1), ROUND_CEILING))
                q["in_stock"] = True
                q["sort"] = "price_asc"
                if p["on_hand"] > 0:
                    q["expect_id"] = p["id"]
            elif kind == "suggest":
                if rng.random() < 0.3:
                    p = rng.choice(products)
                    ws = [w for w in words_of(p["name"]) if len(w) >= 3 and w not in STOP]
                    if len(ws) < 2:
                        continue
                    i = rng.randrange(len(ws) - 1)
                    if len(ws[i + 1]) < 3:
                        continue
                    q["q"] = f"{ws[i]} {prefix_of(ws[i + 1])}"
                    q["expect_id"] = p["id"]
                else:
                    q["q"] = prefix_of(rng.choices(long_vocab, long_weights)[0])
            made += 1
            q["id"] = len(queries) + 1
            queries.append(q)

    with args.out.open("w", encoding="utf-8", newline="\n") as fh:
        for q in queries:
            fh.write(json.dumps(q, separators=(",", ":"), ensure_ascii=False))
            fh.write("\n")
    print(f"wrote {len(queries)} queries ({args.count} of each of {', '.join(TYPES)}) "
          f"from {len(products)} products to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

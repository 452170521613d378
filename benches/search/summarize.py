#!/usr/bin/env python3
"""Tabulates one run of the search benchmark: Mercato (`mercato bench search
--json`) beside PostgreSQL (`benches/postgres/search.sh --json`), with the
ratios and the issue's targets (Markdown on stdout).

    python3 benches/search/summarize.py RESULTS_DIR      # reads mercato.json, postgresql.json

Targets (issue 10): p99 below PostgreSQL's on every query type (compared at
each open-loop rate both ran), queries/s at least 5x PostgreSQL's (best
closed-loop point of each), update-to-visible p99 under 1 s while
reservations run at full speed, and reservations/s with the indexer at least
0.9x the baseline's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TYPES = ["one_word", "typo", "prefix", "facet", "filtered", "suggest"]
NAMES = {
    "one_word": "one word",
    "typo": "two words, one typo",
    "prefix": "prefix as typed",
    "facet": "facet-only browse",
    "filtered": "filtered and sorted",
    "suggest": "suggest",
}


def load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def ms(value) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def qps(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


def met(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "**missed**")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    mercato = load(out / "mercato.json")
    pg = load(out / "postgresql.json")
    if mercato is None and pg is None:
        print(f"no mercato.json or postgresql.json in {out}", file=sys.stderr)
        return 1
    m_types = {t["type"]: t for t in (mercato or {}).get("types", [])}
    p_types = {t["type"]: t for t in (pg or {}).get("types", [])}
    lines: list[str] = []
    say = lines.append

    say(f"# Search benchmark: {out.name}")
    say("")
    if mercato:
        say(f"- Mercato: {mercato.get('products')} products, durability {mercato.get('durability')}, "
            f"load average before {mercato.get('loadavg_before')}, after {mercato.get('loadavg_after')}")
    if pg:
        say(f"- PostgreSQL {pg.get('version')}: {pg.get('products')} products, "
            f"load average before {pg.get('loadavg_before')}, CPUs {pg.get('cpu_busy_before_pct')}% busy before")
    say("")

    say("## Index build")
    say("")
    say("| system | how | seconds | products/s |")
    say("|---|---|---:|---:|")
    build = (mercato or {}).get("build")
    if build:
        parts = [f"ready {build['ready_s']:.1f} s", f"searchable {build['searchable_s']:.1f} s"]
        if build.get("import_s") is not None:
            parts.insert(0, f"import {build['import_s']:.1f} s")
        if build.get("reindex_s") is not None:
            parts.insert(1, f"reindex {build['reindex_s']:.1f} s")
        if build.get("api_load_s") is not None:
            parts.insert(0, f"API load {build['api_load_s']:.1f} s")
        seconds = build.get("reindex_s") or build["searchable_s"]
        say(f"| Mercato | {build['method']}: {', '.join(parts)} ({build['rate_basis']}) | "
            f"{seconds:.1f} | {build['products_per_s']:,.0f} |")
    if pg:
        b = pg["build"]
        say(f"| PostgreSQL | rows with both tsvectors {b['insert_s']:.1f} s, indexes {b['index_s']:.1f} s, "
            f"analyze {b['analyze_s']:.1f} s (table {b['table_size']}, indexes {b['indexes_size']}; "
            f"COPY of the JSON {b['copy_s']:.1f} s not counted) | {b['build_s']:.1f} | {b['products_per_s']:,.0f} |")
    say("")

    rates = sorted({r["target_rate"] for t in m_types.values() for r in t.get("open", [])}
                   | {r["target_rate"] for t in p_types.values() for r in t.get("open", [])})
    say("## Queries")
    say("")
    say("Latency in ms at a fixed open-loop rate (from each query's scheduled time), "
        "and the highest queries/s of the closed-loop client counts.")
    say("")
    header = "| type | system |"
    rule = "|---|---|"
    for rate in rates:
        header += f" {rate:g}/s p50 | {rate:g}/s p99 | {rate:g}/s max |"
        rule += "---:|---:|---:|"
    header += " max q/s (clients) | mean total | found |"
    rule += "---:|---:|---:|"
    say(header)
    say(rule)
    verdicts = []
    for kind in TYPES:
        mt, pt = m_types.get(kind), p_types.get(kind)
        if not mt and not pt:
            continue
        for system, t in (("Mercato", mt), ("PostgreSQL", pt)):
            if not t:
                continue
            row = f"| {NAMES[kind]} | {system} |"
            by_rate = {r["target_rate"]: r for r in t.get("open", [])}
            for rate in rates:
                r = by_rate.get(rate)
                lat = (r or {}).get("latency_ms", {})
                achieved = (r or {}).get("achieved_rate", (r or {}).get("qps"))
                # Poisson arrivals (pgbench -R) miss a low rate by a few % by chance.
                short = r is not None and achieved is not None and achieved < 0.8 * rate
                row += f" {ms(lat.get('p50'))} | {ms(lat.get('p99'))}{' (behind: ' + qps(achieved) + '/s)' if short else ''} | {ms(lat.get('max'))} |"
            best = t.get("best") or {}
            best_qps = best.get("qps")
            errors = t.get("answer_errors", 0) + sum(
                r.get("errors", 0) for r in t.get("open", []) + t.get("closed", []))
            row += f" {qps(best_qps)} ({best.get('clients', '-')}) | {t.get('mean_total')} | "
            row += f"{t.get('expect_found')}/{t.get('expect_queries')}"
            row += f" (**{errors} errors**) |" if errors else " |"
            say(row)
        if mt and pt:
            m_open = {r["target_rate"]: r for r in mt.get("open", [])}
            p_open = {r["target_rate"]: r for r in pt.get("open", [])}
            p99_ok = None
            p99_text = []
            for rate in rates:
                if rate in m_open and rate in p_open:
                    a = m_open[rate]["latency_ms"]["p99"]
                    b = p_open[rate]["latency_ms"]["p99"]
                    if a is None or b is None:
                        continue
                    ok = a < b
                    p99_ok = ok if p99_ok is None else (p99_ok and ok)
                    p99_text.append(f"{ms(a)} vs {ms(b)} at {rate:g}/s")
            mq = (mt.get("best") or {}).get("qps")
            pq = (pt.get("best") or {}).get("qps")
            ratio = mq / pq if mq and pq else None
            verdicts.append((kind, p99_ok, "; ".join(p99_text), ratio))
    say("")
    if verdicts:
        say("| type | p99 below PostgreSQL's | | queries/s ratio | >= 5x |")
        say("|---|---|---|---:|---|")
        for kind, p99_ok, text, ratio in verdicts:
            say(f"| {NAMES[kind]} | {met(p99_ok)} | {text} | "
                f"{'-' if ratio is None else f'{ratio:.1f}x'} | {met(None if ratio is None else ratio >= 5)} |")
        say("")

    vis = (mercato or {}).get("visibility")
    if vis:
        say("## Update-to-visible")
        say("")
        w = vis["from_write_ms"]
        res = vis.get("reservations") or {}
        say(f"{vis['seen']} of {vis['changes']} stock changes seen ({vis['timeouts']} timeouts), "
            f"from the write: p50 {ms(w['p50'])} ms, p99 {ms(w['p99'])} ms, max {ms(w['max'])} ms "
            f"(sold out p99 {ms(vis['sold_out_ms']['p99'])}, back in stock p99 "
            f"{ms(vis['back_in_stock_ms']['p99'])}); meanwhile {res.get('throughput_rps', 0):,.0f} "
            f"reservations/s at {res.get('connections')} connections"
            f"{'' if vis.get('load_outlasted_probes', True) else ' (the load ended before the last change was seen)'}. "
            f"Target p99 < 1 s: {met(vis['timeouts'] == 0 and w['p99'] < 1000)}. "
            "PostgreSQL: visible to every query that starts after the COMMIT.")
        say("")
    res = (mercato or {}).get("reserve")
    if res:
        say("## Reservations with the indexer")
        say("")
        pairs = ", ".join(f"{a:,.0f} / {b:,.0f}" for a, b in zip(res["with_index_rps"], res["baseline_rps"]))
        median = res.get("median_ratio")
        say(f"With the indexer ({res.get('with_index', 'the measured server')}) / baseline "
            f"({res['baseline']}), fresh stores with the same catalog, {res['connections']} connections, "
            f"{res['duration_s']:g} s per run: {pairs}; ratios {res['ratios']}, median "
            f"{'-' if median is None else f'{median:.3f}'}. Target >= 0.9: "
            f"{met(None if median is None else median >= 0.9)}. Checks passed: {res['checks_passed']}.")
        say("")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

# Summary tables (markdown) of a checkout series: python3 summarize.py RESULTS_DIR
import json, sys, glob, os, statistics as st
D = sys.argv[1]
def load(pat):
    return [json.load(open(f)) for f in sorted(glob.glob(os.path.join(D, pat)))]
for w in ('uniform', 'hot'):
    runs = load(f'postgresql-checkout-{w}-l1-3-r*.json')
    if not runs: continue
    print(f'\n### {w}, 1-3 lines ({len(runs)} runs)\n')
    clients = [r['clients'] for r in runs[0]['results']]
    print('| clients | ' + ' | '.join(f'run {i+1} orders/s' for i in range(len(runs))) + ' | median orders/s | p50 ms (median) | p99 ms (median; range) |')
    print('|---|' + '---|' * len(runs) + '---|---|---|')
    for c in clients:
        pts = [next(x for x in r['results'] if x['clients'] == c) for r in runs]
        tps = [p['confirmed_tps'] for p in pts]
        p50 = [p['latency_ms']['p50'] for p in pts]; p99 = [p['latency_ms']['p99'] for p in pts]
        print(f'| {c} | ' + ' | '.join(f'{t:,.0f}' for t in tps) + f' | {st.median(tps):,.0f} | {st.median(p50):.2f} | {st.median(p99):.2f} ({min(p99):.2f}-{max(p99):.2f}) |')
    for i, r in enumerate(runs):
        b = max(r['results'], key=lambda x: x['confirmed_tps'])
        print(f"run {i+1}: best {b['confirmed_tps']:,.1f}/s at {b['clients']} clients, p50 {b['latency_ms']['p50']} p99 {b['latency_ms']['p99']}; checks {r['checks_passed']}, oversell {r['oversell']}, seq_scans {[x['seq_scans'] for x in r['results']]}, cpu_busy_before {r['cpu_busy_before_pct']}")
runs = load('postgresql-checkout-flash-r*.json')
if runs:
    print(f'\n### flash sale ({len(runs)} runs)\n')
    print('| clients | run | orders | confirmed | cancelled insufficient_stock | sold / left | orders/s | stock lasted ms | p50 ms | p99 ms | checks |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    for c in [x['clients'] for x in runs[0]['results']]:
        for i, r in enumerate(runs):
            x = next(y for y in r['results'] if y['clients'] == c)
            print(f"| {c} | {i+1} | {x['orders']} | {x['confirmed']} | {x['cancelled_insufficient_stock']} | {x['units']['sold']} / {x['units']['left']} | {x['tps']:,.0f} | {x['sold_out_ms']} | {x['latency_ms']['p50']} | {x['latency_ms']['p99']} | {x['checks_passed']} |")

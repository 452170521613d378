# Every 2 s: CPU in user+nice+system (cores, %), the part used by postgres and
# pgbench processes, and the rest ("other"), only judged in intervals wholly
# inside a pgbench run (a pgbench process alive at both ends; between runs the
# script's own short-lived psql/awk processes would count as other). Also the
# processes forked in the interval and the visible other processes >= 5%.
# Stops when the file named by its second argument exists.
import os, time, sys
HZ = os.sysconf('SC_CLK_TCK')
BENCH = ('postgres', 'pgbench')
def procs():
    out = {}
    for p in os.listdir('/proc'):
        if not p.isdigit(): continue
        try:
            s = open(f'/proc/{p}/stat').read()
            comm = s[s.index('(')+1:s.rindex(')')]
            f = s[s.rindex(')')+2:].split()
            out[int(p)] = (comm, int(f[11]) + int(f[12]))
        except Exception: pass
    return out
def stat():
    forks = 0
    for l in open('/proc/stat'):
        if l.startswith('cpu '): v = list(map(int, l.split()[1:9]))
        if l.startswith('processes'): forks = int(l.split()[1])
    return v, forks
log = open(sys.argv[1], 'a')
a, (c0, f0), w0 = procs(), stat(), time.time()
while not os.path.exists(sys.argv[2]):
    time.sleep(2)
    b, (c1, f1), w1 = procs(), stat(), time.time()
    dt = w1 - w0
    d = [(y - x) / HZ / dt for x, y in zip(c0, c1)]
    used = d[0] + d[1] + d[2]
    pgb = [p for p, (comm, _) in b.items() if comm == 'pgbench' and p in a]
    # inside a run: no bench process born or ended in the interval (their
    # CPU would be missing or counted in full)
    ba = {p for p, (comm, _) in a.items() if comm in BENCH}
    bb = {p for p, (comm, _) in b.items() if comm in BENCH}
    if ba != bb: pgb = []
    bench = 0.0; others = []
    for pid, (comm, t) in b.items():
        cores = (t - (a[pid][1] if pid in a else 0)) / HZ / dt
        if comm in BENCH: bench += cores
        elif cores >= 0.05: others.append(f'{comm}:{100*cores:.0f}%')
    if pgb:
        verdict = f"other={100*max(0.0, used - bench):.0f}%"
    else:
        verdict = "between-runs"
    log.write(f"{time.strftime('%H:%M:%S')} used={100*used:.0f}% bench={100*bench:.0f}% {verdict} forks={f1-f0} top={' '.join(others) or '-'}\n"); log.flush()
    a, c0, f0, w0 = b, c1, f1, w1

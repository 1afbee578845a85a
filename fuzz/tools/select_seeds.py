"""Picks at most MAX seeds from a libFuzzer merge control file.

Greedy set cover: first the inputs that add the most not-yet-covered
coverage edges (ties: the smaller input), then, if room is left, the most
new features. Inputs whose path starts with FORCED_PREFIX (the seeds already
committed) are always kept. Copies the picked inputs (other than the forced
ones) to OUT_DIR.

usage: select_seeds.py CONTROL_FILE MAX OUT_DIR FORCED_PREFIX
(see fuzz/README.md, "Seeds and the regression test")
"""
import sys, os, shutil
cf, mx, out, forced = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
lines = open(cf).read().split('\n')
n = int(lines[0]); files = lines[2:2+n]
cov = {}; ft = {}; size = {}
for l in lines[2+n:]:
    p = l.split()
    if not p: continue
    if p[0] == 'STARTED': size[int(p[1])] = int(p[2])
    elif p[0] == 'COV': cov[int(p[1])] = set(p[2:])
    elif p[0] == 'FT': ft[int(p[1])] = set(p[2:])
chosen = [i for i, f in enumerate(files) if f.startswith(forced)]
have_c = set().union(*(cov.get(i, set()) for i in chosen)) if chosen else set()
have_f = set().union(*(ft.get(i, set()) for i in chosen)) if chosen else set()
all_c = set().union(*cov.values()); all_f = set().union(*ft.values())
def pick(key, have):
    best = None
    for i in range(n):
        if i in chosen: continue
        g = len(key.get(i, set()) - have)
        if g == 0: continue
        k = (g, -size.get(i, 1 << 30))
        if best is None or k > best[0]: best = (k, i)
    return best
while len(chosen) < mx:
    b = pick(cov, have_c)
    if b is None: break
    chosen.append(b[1]); have_c |= cov.get(b[1], set()); have_f |= ft.get(b[1], set())
n_cov_phase = len(chosen)
while len(chosen) < mx:
    b = pick(ft, have_f)
    if b is None: break
    chosen.append(b[1]); have_f |= ft.get(b[1], set())
print(f"chosen {len(chosen)} (cov phase {n_cov_phase}); edges {len(have_c)}/{len(all_c)}; features {len(have_f)}/{len(all_f)}")
os.makedirs(out, exist_ok=True)
for i in chosen:
    f = files[i]
    if f.startswith(forced): continue
    shutil.copy(f, os.path.join(out, os.path.basename(f)))

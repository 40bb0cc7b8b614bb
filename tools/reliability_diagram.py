#!/usr/bin/env python3
"""Chooses and checks frameseek's confidence calibration (issue 19).

Reads the clip files `frameseek eval QUERIES --calibration-json FILE` writes (every clip of a
k = 50 search per labelled query: its cosine, the daemon's confidence, whether it is a hit),
fits the candidate methods on two footage renders (two seeds), each judged by the fit of the
other (held out):

  global   logistic on the clip's cosine, one curve per model: sigmoid(a * cos + b)
  relative logistic on the cosine minus the median cosine of the query's own 50 clips
           (the query's score distribution as background): sigmoid(a * (cos - med) + b)
  daemon   the confidence the daemon reported (what the model's calibration.json gives)

For each: expected calibration error (10 equal-width bins), Brier score, log loss. Writes
the fit of `global` on both files as calibration.json (--write-calibration) and the
reliability diagram of the held-out predictions (predicted confidence against observed precision) as a PNG.

Tool-time only (matplotlib from pip or apt); not needed by the tests.
Usage: python3 tools/reliability_diagram.py --fit A.json --check B.json \
         [--write-calibration MODEL/calibration.json] [--png docs/reliability.png]
"""

import argparse
import json
import math
import statistics
import sys


def load(path):
    with open(path) as f:
        doc = json.load(f)
    clips = doc["clips"]
    medians = {}
    for q in {c["query"] for c in clips}:
        medians[q] = statistics.median(c["score"] for c in clips if c["query"] == q)
    return [(c["score"], c["score"] - medians[c["query"]], c["confidence"], 1.0 if c["hit"] else 0.0) for c in clips]


def sigmoid(z):
    if z < -60:
        return 0.0
    if z > 60:
        return 1.0
    return 1.0 / (1.0 + math.exp(-z))


def fit_logistic(xs, ys, l2=0.0):
    """(a, b) of sigmoid(a x + b) by Newton's method on standardised x, with an L2 penalty
    `l2 * a^2` on the standardised slope (labelled footage a model separates perfectly
    would otherwise push the slope to infinity: a step, not a confidence)."""
    mean = statistics.fmean(xs)
    sd = statistics.pstdev(xs) or 1.0
    zs = [(x - mean) / sd for x in xs]
    a, b = 1.0, 0.0
    for _ in range(100):
        ga = gb = haa = hab = hbb = 0.0
        for z, y in zip(zs, ys):
            p = sigmoid(a * z + b)
            ga += (p - y) * z
            gb += p - y
            w = p * (1 - p) + 1e-9
            haa += w * z * z
            hab += w * z
            hbb += w
        ga += 2 * l2 * a
        haa += 2 * l2
        det = haa * hbb - hab * hab
        if abs(det) < 1e-12:
            break
        da = (hbb * ga - hab * gb) / det
        db = (haa * gb - hab * ga) / det
        a, b = a - da, b - db
        if abs(da) + abs(db) < 1e-10:
            break
    # Back to the raw x: a z + b = (a / sd) x + (b - a mean / sd).
    return a / sd, b - a * mean / sd


def metrics(ps, ys, bins=10):
    n = len(ps)
    ece = 0.0
    table = []
    for i in range(bins):
        lo, hi = i / bins, (i + 1) / bins
        idx = [j for j, p in enumerate(ps) if lo <= p < hi or (i == bins - 1 and p == 1.0)]
        if not idx:
            continue
        conf = statistics.fmean(ps[j] for j in idx)
        prec = statistics.fmean(ys[j] for j in idx)
        ece += len(idx) / n * abs(conf - prec)
        table.append((conf, prec, len(idx)))
    brier = statistics.fmean((p - y) ** 2 for p, y in zip(ps, ys))
    eps = 1e-6
    logloss = -statistics.fmean(y * math.log(max(p, eps)) + (1 - y) * math.log(max(1 - p, eps)) for p, y in zip(ps, ys))
    return ece, brier, logloss, table


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fit", required=True, help="calibration clips to fit on")
    ap.add_argument("--check", required=True, help="held-out calibration clips to judge on")
    ap.add_argument("--write-calibration", help="write the global fit here (calibration.json)")
    ap.add_argument("--png", help="write the reliability diagram of the held-out clips here")
    args = ap.parse_args()
    train, test = load(args.fit), load(args.check)
    ys_train = [c[3] for c in train]
    ys_test = [c[3] for c in test]
    xs_train = [c[0] for c in train]
    xs_test = [c[0] for c in test]
    # Two-fold across renders: each file is predicted by the other's fit. The penalty is the
    # smallest whose two fits agree (slopes within 10 %): a curve the footage determines.
    print("penalty  slope(fit)  slope(check)  two-fold logloss")
    l2 = None
    for penalty in (0.0, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1):
        a = fit_logistic(xs_train, ys_train, penalty)
        b = fit_logistic(xs_test, ys_test, penalty)
        ll = (metrics([sigmoid(a[0] * x + a[1]) for x in xs_test], ys_test)[2]
              + metrics([sigmoid(b[0] * x + b[1]) for x in xs_train], ys_train)[2]) / 2
        agree = max(a[0], b[0]) <= 1.1 * min(a[0], b[0])
        print(f"{penalty:7.4f}  {a[0]:10.2f}  {b[0]:12.2f}  {ll:.4f}{'  agree' if agree else ''}")
        if l2 is None and agree:
            l2 = penalty
    l2 = 0.1 if l2 is None else l2
    print(f"chosen penalty {l2}")
    g = fit_logistic(xs_train, ys_train, l2)
    g_other = fit_logistic(xs_test, ys_test, l2)
    r = fit_logistic([c[1] for c in train], ys_train, l2)
    r_other = fit_logistic([c[1] for c in test], ys_test, l2)
    pooled = fit_logistic(xs_train + xs_test, ys_train + ys_test, l2)
    both = test + train
    ys = ys_test + ys_train
    candidates = {
        "global": [sigmoid(g[0] * c[0] + g[1]) for c in test] + [sigmoid(g_other[0] * c[0] + g_other[1]) for c in train],
        "relative": [sigmoid(r[0] * c[1] + r[1]) for c in test] + [sigmoid(r_other[0] * c[1] + r_other[1]) for c in train],
        "daemon": [c[2] for c in both],
    }
    print(f"{len(train)} + {len(test)} clips ({int(sum(ys))} hits), each file judged by the other's fit")
    print(f"global fit (pooled): slope {pooled[0]:.3f} intercept {pooled[1]:.3f}, confidence 0.5 at cosine {-pooled[1] / pooled[0]:.4f}")
    print(f"{'method':10} {'ECE':>7} {'Brier':>7} {'logloss':>8}")
    results = {}
    for name, ps in candidates.items():
        ece, brier, ll, table = metrics(ps, ys)
        results[name] = table
        print(f"{name:10} {ece:7.4f} {brier:7.4f} {ll:8.4f}")
    for name in ("global", "daemon"):
        print(f"{name} reliability (mean confidence, observed precision, clips):")
        for conf, prec, n in results[name]:
            print(f"  {conf:.3f} {prec:.3f} {n}")
    g = pooled
    if args.write_calibration:
        with open(args.write_calibration, "w") as f:
            json.dump({"slope": round(g[0], 4), "intercept": round(g[1], 4)}, f)
            f.write("\n")
        print(f"wrote {args.write_calibration}")
    if args.png:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            sys.exit("matplotlib is needed for --png (pip install matplotlib, or apt-get install python3-matplotlib)")
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
        for name, style in (("daemon", "o-"), ("relative", "s:"), ("global", "^--")):
            table = results[name]
            ax.plot([t[0] for t in table], [t[1] for t in table], style, label=name)
        ax.set_xlabel("predicted confidence (bin mean)")
        ax.set_ylabel("observed precision (share of hits)")
        ax.set_title("frameseek-tiny, world footage, two-fold held out")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(loc="upper left")
        fig.tight_layout()
        fig.savefig(args.png, dpi=100)
        print(f"wrote {args.png}")


if __name__ == "__main__":
    main()

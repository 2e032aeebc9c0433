#!/usr/bin/env python3
"""ratios.py FILE: per case and target, the median over passes of IOPS and of the per-pass ratio to nbdkit."""
import collections
import statistics
import sys

runs = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    f = line.split()
    case, vals = f[1], {}
    for i in range(2, len(f) - 2, 3):
        try:
            vals[f[i]] = float(f[i + 1])
        except ValueError:
            pass
    ref = vals.get("nbdkit")
    for name, iops in vals.items():
        runs[case][name].append((iops, iops / ref if ref else float("nan")))
for case, targets in runs.items():
    cells = []
    for name, v in targets.items():
        ratios = [r for _, r in v]
        cells.append(f"{name} {statistics.median(i for i, _ in v) / 1000:.1f}k x{statistics.median(ratios):.2f}"
                     f" [{min(ratios):.2f}-{max(ratios):.2f}]")
    print(case, "  ".join(cells))

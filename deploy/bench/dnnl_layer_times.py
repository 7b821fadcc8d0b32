#!/usr/bin/env python3
"""Per-primitive oneDNN times from `ONEDNN_VERBOSE=1 octet bench ...` output.

For every distinct primitive (kind, implementation, problem, layouts) it takes the minimum and the
median exec time over the runs and multiplies by how many times one run executes it; prints the
sums by kind/implementation, and with --layers one line per primitive. Minimum times are the
figure to compare on a shared machine (a run preempted mid-primitive only raises the median).
Counterpart for ONNX Runtime: deploy/bench/ort_prof.mjs.

  ONEDNN_VERBOSE=1 build/release/core/octet bench --model M --threads 2 --seconds 4 --warmup 1 \\
      > log.txt
  deploy/bench/dnnl_layer_times.py log.txt [--layers]
"""
import collections
import re
import sys


def main():
    path = sys.argv[1]
    layers = '--layers' in sys.argv[2:]
    text = open(path).read()
    runs = re.search(r'^runs: (\d+)', text, re.M)
    warmup = re.search(r'warm-up (\d+) runs', text)
    if not runs or not warmup:
        sys.exit('no "runs:" / "warm-up" lines: is this the output of octet bench?')
    total_runs = int(runs.group(1)) + int(warmup.group(1))
    times = collections.defaultdict(list)
    for line in text.splitlines():
        if not line.startswith('onednn_verbose,exec,'):
            continue
        f = line.split(',')
        times[(f[3], f[4], f[-2], f[6])].append(float(f[-1]))
    kinds = collections.defaultdict(lambda: [0, 0.0, 0.0])
    rows = []
    for key, v in times.items():
        per_run = round(len(v) / total_runs)
        if per_run == 0:
            continue  # weight reorders done once while building the plan
        v.sort()
        lo, med = v[0] * per_run, v[len(v) // 2] * per_run
        k = kinds[f'{key[0]} {key[1]}']
        k[0] += per_run
        k[1] += lo
        k[2] += med
        rows.append((lo, per_run, key))
    print(f'{total_runs} runs; ms per run, summed over primitives')
    for name, (n, lo, med) in sorted(kinds.items(), key=lambda x: -x[1][1]):
        print(f'{name:42s} x{n:<3d} min {lo:8.3f}  median {med:8.3f}')
    print(f'{"total":42s} {"":4s} min {sum(k[1] for k in kinds.values()):8.3f}  '
          f'median {sum(k[2] for k in kinds.values()):8.3f}')
    if layers:
        for lo, n, key in sorted(rows, reverse=True):
            print(f'{lo:8.3f} x{n} {key[0]} {key[1]} {key[2]}  {key[3]}')


if __name__ == '__main__':
    main()

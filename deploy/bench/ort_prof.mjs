// Per-node ONNX Runtime kernel times (its built-in profiler): for each node, the minimum and the
// median duration over the runs, summed by op type. Minimum times are robust on a shared machine.
//   node deploy/bench/ort_prof.mjs --model M.onnx --shape input=1x3x224x224 --threads 2 --runs 50
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);
const ort = require('onnxruntime-node');
const a = { threads: 2, runs: 50, shape: {} };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, ''), v = process.argv[i + 1];
  if (k === 'shape') {
    const [name, dims] = v.split('=');
    a.shape[name] = dims.split('x').map(Number);
  } else if (k === 'model') a.model = v;
  else a[k] = Number(v);
}
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ort_prof_'));
const session = await ort.InferenceSession.create(a.model, {
  intraOpNumThreads: a.threads, interOpNumThreads: 1, executionMode: 'sequential',
  graphOptimizationLevel: 'all', enableProfiling: true, profileFilePrefix: path.join(dir, 'p'),
});
const feeds = {};
for (const name of session.inputNames) {
  const dims = a.shape[name];
  if (!dims) throw new Error(`give --shape ${name}=...`);
  const data = new Float32Array(dims.reduce((x, y) => x * y, 1)).map(() => Math.random() * 2 - 1);
  feeds[name] = new ort.Tensor('float32', data, dims);
}
for (let i = 0; i < a.runs + 2; ++i) await session.run(feeds);
session.endProfiling();
const file = fs.readdirSync(dir).map((f) => path.join(dir, f))[0];
const events = JSON.parse(fs.readFileSync(file, 'utf8'));
const byNode = new Map();
for (const e of events) {
  if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
  const key = e.name;
  if (!byNode.has(key)) byNode.set(key, { op: e.args.op_name, d: [] });
  byNode.get(key).d.push(e.dur / 1000);
}
const byOp = new Map();
let tmin = 0, tmed = 0;
const rows = [];
for (const [name, { op, d }] of byNode) {
  d.sort((x, y) => x - y);
  const mn = d[0], med = d[Math.floor(d.length / 2)];
  const o = byOp.get(op) || { n: 0, mn: 0, med: 0 };
  o.n++; o.mn += mn; o.med += med;
  byOp.set(op, o);
  tmin += mn; tmed += med;
  rows.push([mn, name, op]);
}
for (const [op, o] of [...byOp].sort((x, y) => y[1].mn - x[1].mn)) {
  console.log(`${op.padEnd(30)} n=${String(o.n).padStart(3)} min-sum ${o.mn.toFixed(3)} ms  median-sum ${o.med.toFixed(3)} ms`);
}
console.log(`TOTAL min-sum ${tmin.toFixed(3)} ms  median-sum ${tmed.toFixed(3)} ms`);
if (a.verbose) for (const r of rows.sort((x, y) => y[0] - x[0])) console.log(r[0].toFixed(3), r[2], r[1]);
fs.rmSync(dir, { recursive: true });

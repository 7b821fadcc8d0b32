// Engine-only throughput and latency of ONNX Runtime (CPU) on an ONNX file, measured the same way
// as `octet bench`: random inputs, warm-up excluded, fixed thread budget.
//
//   node deploy/bench/ort_bench.mjs --model M.onnx --batch 8 --threads 2 --seconds 10 \
//        [--shape input=8x3x224x224] [--warmup 2] [--spin 0|1]
// --spin sets ORT's session.intra_op.allow_spinning (ORT's default is 1: idle intra-op threads
// spin, like libgomp with GOMP_SPINCOUNT; Octet's default is OMP_WAIT_POLICY=PASSIVE).
// Prints one JSON line.
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

const require = createRequire(import.meta.url);
const ort = require('onnxruntime-node');

function parseArgs(argv) {
  const a = { batch: 1, threads: 2, seconds: 10, warmup: 2, spin: 1, shape: {} };
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, ''), v = argv[i + 1];
    if (k === 'shape') {
      const [name, dims] = v.split('=');
      a.shape[name] = dims.split('x').map(Number);
    } else if (k === 'model') a.model = v;
    else a[k] = Number(v);
  }
  if (!a.model) throw new Error('--model is required');
  return a;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const args = parseArgs(process.argv);
const session = await ort.InferenceSession.create(args.model, {
  intraOpNumThreads: args.threads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  extra: { session: { intra_op: { allow_spinning: String(args.spin) } } },
});
const feeds = {};
for (const name of session.inputNames) {
  let dims = args.shape[name];
  if (!dims) {
    const meta = session.inputMetadata?.find?.((m) => m.name === name);
    if (!meta || !meta.shape) throw new Error(`give --shape ${name}=...`);
    dims = meta.shape.map((d, i) => (typeof d === 'number' && d > 0 ? d : i === 0 ? args.batch : NaN));
    if (dims.some(Number.isNaN)) throw new Error(`input ${name} has symbolic dims; give --shape`);
  }
  const n = dims.reduce((x, y) => x * y, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; ++i) data[i] = Math.random() * 2 - 1;
  feeds[name] = new ort.Tensor('float32', data, dims);
}
const warmEnd = performance.now() + args.warmup * 1000;
while (performance.now() < warmEnd) await session.run(feeds);
const lat = [];
const cpu0 = process.cpuUsage();
const start = performance.now();
while (performance.now() - start < args.seconds * 1000) {
  const t0 = performance.now();
  await session.run(feeds);
  lat.push(performance.now() - t0);
}
const elapsed = (performance.now() - start) / 1000;
const cpu = process.cpuUsage(cpu0);
lat.sort((x, y) => x - y);
console.log(JSON.stringify({
  runtime: 'onnxruntime', model: args.model, batch: args.batch, threads: args.threads,
  runs: lat.length, images_per_s: (lat.length * args.batch) / elapsed,
  p50_ms: percentile(lat, 50), p90_ms: percentile(lat, 90), p99_ms: percentile(lat, 99),
  // Process CPU time (all threads) per run: less sensitive to other jobs than wall time.
  cpu_ms_per_run: (cpu.user + cpu.system) / 1000 / lat.length,
}));

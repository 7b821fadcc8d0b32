// Runs an ONNX model with ONNX Runtime (CPU, onnxruntime-node from deploy/bench) on a float32
// .npy input in batches and writes the first output as a float32 .npy: the peer side of the
// Octet vs ONNX Runtime agreement test (tests/ort/ort_agreement.sh).
//   node tests/ort/ort_run.mjs MODEL.onnx INPUT_NAME IN.npy OUT.npy [BATCH]
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', '..', 'deploy', 'bench', 'package.json'));
const ort = require('onnxruntime-node');

// A C-order float32 .npy (little endian), version 1.x or 2.x.
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  if (!/'descr':\s*'<f4'/.test(header) || /'fortran_order':\s*True/.test(header)) {
    throw new Error(`${file}: want a C-order float32 array, header ${header}`);
  }
  const shape = header.match(/'shape':\s*\(([^)]*)\)/)[1].split(',').filter((s) => s.trim())
      .map(Number);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + start + hlen,
                                                 buf.byteOffset + buf.length));
  return { shape, data };
}

function writeNpy(file, shape, data) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${
    shape.length === 1 ? ',' : ''}), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'),
                                        Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

const [model, inputName, inFile, outFile, batchArg] = process.argv.slice(2);
if (!outFile) throw new Error('usage: ort_run.mjs MODEL.onnx INPUT_NAME IN.npy OUT.npy [BATCH]');
const batch = Number(batchArg || 1000);
const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: 2, interOpNumThreads: 1, graphOptimizationLevel: 'all',
});
const x = readNpy(inFile);
const n = x.shape[0];
const per = x.data.length / n;
const outName = session.outputNames[0];
let out = null;
let outShape = null;
for (let i = 0; i < n; i += batch) {
  const b = Math.min(batch, n - i);
  const t = new ort.Tensor('float32', x.data.subarray(i * per, (i + b) * per), [b, ...x.shape.slice(1)]);
  const r = (await session.run({ [inputName]: t }))[outName];
  if (out === null) {
    outShape = [n, ...r.dims.slice(1)];
    out = new Float32Array(n * (r.data.length / b));
  }
  out.set(r.data, i * (r.data.length / b));
}
writeNpy(outFile, outShape, out);
console.log(`onnxruntime ${ort.env.versions?.common ?? ''}: ${n} samples -> ${outFile}`);

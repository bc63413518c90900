// A model of 64 MiB or more reaches onnxruntime through a temporary file (less
// resident memory than handing it the bytes): it computes the same products as
// a JS loop, and the file is gone once the session exists.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import { Graph } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { CompiledGraph } from '../src/runtime/session.ts';

test('a 64 MiB weight: the session loads from a temporary file, computes x·W, and leaves no file behind', async () => {
  const K = 4096, N = 4100; // 4·K·N bytes > 64 MiB
  const w = new Float32Array(K * N);
  for (let i = 0; i < w.length; i++) w[i] = ((i * 7919) % 13) - 6;
  const x = Float32Array.from({ length: 2 * K }, (_, i) => ((i * 31) % 5) - 2);
  const g = new Graph('large');
  g.output('y', op.matmul(g.input('x', 'float32', [2, K]), g.weight('w', w, [K, N])));
  const before = new Set(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('lorakit-onnx-')));
  const made: string[] = [];
  const mkdtemp = fs.mkdtempSync;
  (fs as any).mkdtempSync = (prefix: string, ...rest: any[]) => {
    const dir = (mkdtemp as any)(prefix, ...rest);
    made.push(dir);
    return dir;
  };
  let cg: CompiledGraph;
  try {
    cg = await CompiledGraph.compile(g, { threads: 1 });
  } finally {
    (fs as any).mkdtempSync = mkdtemp;
  }
  assert.equal(made.filter((d) => d.includes('lorakit-onnx-')).length, 1, 'the model went through one temporary folder');
  assert.ok(made.every((d) => !fs.existsSync(d)), 'and it is removed');
  const left = fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('lorakit-onnx-') && !before.has(f));
  assert.deepEqual(left, []);
  const y = (await cg.run({ x: { data: x, dims: [2, K] } })).y.data as Float32Array;
  await cg.release();
  for (const [r, c] of [[0, 0], [1, 4099], [0, 2048], [1, 17]]) {
    let s = 0;
    for (let k = 0; k < K; k++) s += x[r * K + k] * w[k * N + c];
    assert.equal(y[r * N + c], s, `y[${r},${c}]`); // small integers: exact in float32
  }
});

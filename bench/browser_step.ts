// One training step in the browser vs in Node, on the same graph, in one run:
//
//   npm run bench:browser [-- --steps 10 --warmup 3 --webgpu --smoke]
//
// The step (bench/browser/step_graph.ts): the bundled USE lite + LoRA r=8 on
// qkv/output/conv1/conv2 + a 2-class head, batch 32 × 64 tokens, forward +
// cross-entropy + every adapter and head gradient in one run, then AdamW in
// TypeScript. Node: onnxruntime-node with 1 and 2 intra-op threads. Browser:
// Debian's Chromium (headless, playwright-core) on onnxruntime-web's
// WebAssembly backend (SIMD), with 1 and 2 threads (the page is served
// cross-origin isolated; without isolation it can only have 1), and with
// --webgpu also the WebGPU backend (headless Chromium has no GPU here: it is
// SwiftShader, software; the figure checks the result, not the speed).
// Node runs before and after the browser (the load on a shared machine
// moves). Median ms per step; ratio = browser / Node at the same thread count
// (the mean of Node's before and after). Every
// side must reach the same first loss (the same graph and batch), else the
// ratio would compare different work. A JSON line is appended to
// bench/results/browser_step.jsonl. --smoke: batch 4 × 16, 1 warmup + 1 step,
// nothing appended (test/browser_bench.test.ts runs the same code).

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchBrowserStep, benchTable, DEFAULT_BROWSER_RUNS, WEBGPU_RUN } from './browser/run_bench.ts';
import { STEP_SHAPE } from './browser/step_graph.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const num = (name: string, d: number) => {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(argv[i + 1]) : d;
  if (!(Number.isInteger(v) && v >= 1)) throw new Error(`--${name} takes an integer ≥ 1, got ${argv[i + 1]}`);
  return v;
};
const smoke = flag('smoke');
const shape = smoke ? { batch: 4, seqLen: 16, seed: 0 } : STEP_SHAPE;
const r = await benchBrowserStep({
  shape, warmup: num('warmup', smoke ? 1 : 3), steps: num('steps', smoke ? 1 : 10),
  browser: flag('webgpu') ? [...DEFAULT_BROWSER_RUNS, WEBGPU_RUN] : DEFAULT_BROWSER_RUNS,
});

console.log(`\nOne training step: USE lite + LoRA r=8 + head, batch ${shape.batch} × ${shape.seqLen} tokens (median of ${r.steps} after ${r.warmup} warmup), load ${r.load1.toFixed(1)} on ${(await import('node:os')).cpus().length} cores\n`);
console.log(benchTable(r.rows));
for (const f of r.failed) console.log(`\nnot measured: ${f}`);
const loss0 = r.rows[0].firstLoss;
const off = r.rows.filter((x) => Math.abs(x.firstLoss - loss0) > 1e-5 * Math.abs(loss0));
if (off.length) console.log(`\nWARNING: first losses differ (${off.map((x) => x.label).join(', ')}): not the same work`);
if (!smoke) {
  const out = path.join(here, 'results');
  fs.mkdirSync(out, { recursive: true });
  fs.appendFileSync(path.join(out, 'browser_step.jsonl'), JSON.stringify({ time: new Date().toISOString(), ...r }) + '\n');
}

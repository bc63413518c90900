// The browser side of bench/browser_step.ts: the training step of
// step_graph.ts on onnxruntime-web. URL parameters: threads, device (wasm |
// webgpu), warmup, steps, batch, seqLen, seed. The result is JSON in #result.

import { fetchUseModel } from '../../src/models/use_fetch.ts';
import { configureWebRuntime } from '../../src/runtime/ort.browser.ts';
import { CompiledGraph } from '../../src/runtime/session.ts';
import { STEP_SHAPE, timeSteps, trainingStep } from './step_graph.ts';

async function main() {
  const q = new URLSearchParams(location.search);
  const num = (k: string, d: number) => (q.has(k) ? Number(q.get(k)) : d);
  // onnxruntime-web falls back to wasm when WebGPU has no adapter: say which one the page had.
  const gpu = (navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
  const webgpuAdapter = q.get('device') === 'webgpu' ? !!(await gpu?.requestAdapter()) : undefined;
  const runtime = configureWebRuntime({ wasmPaths: new URL('ort/', location.href).href, threads: q.has('threads') ? num('threads', 1) : undefined, device: q.get('device') === 'webgpu' ? 'webgpu' : 'wasm' });
  const { model } = await fetchUseModel(new URL('model/', location.href));
  const { graph, step } = trainingStep(model, { batch: num('batch', STEP_SHAPE.batch), seqLen: num('seqLen', STEP_SHAPE.seqLen), seed: num('seed', STEP_SHAPE.seed) });
  const t0 = performance.now();
  const cg = await CompiledGraph.compile(graph);
  const compileMs = performance.now() - t0;
  const r = await timeSteps(cg, step, { warmup: num('warmup', 3), steps: num('steps', 10) });
  await cg.release();
  return { runtime, webgpuAdapter, compileMs, ...r };
}

const out = document.getElementById('result')!;
main().then(
  (r) => (out.textContent = JSON.stringify(r)),
  (e) => (out.textContent = JSON.stringify({ error: (e as Error).message })),
);

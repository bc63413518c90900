// LoRA causal-LM training step on the ~100M Llama-shaped decoder: lorakit vs
// the PyTorch peer (bench/peer_llama_torch.py, same shapes: hidden 768, 12
// layers, 12 heads / 4 KV heads, SwiGLU 2048, vocab 32000, tied embeddings;
// LoRA r=8, alpha 16 on q_proj, v_proj; labels −100 on the first quarter).
// One lorakit step = one onnxruntime run (loss + every LoRA gradient) + AdamW
// in TypeScript. Prints both medians and torch_ms / lorakit_ms (> 1: lorakit
// is faster), the roofline (fraction of the GEMM limit, bench/roofline.ts) and
// memory (peak RSS, activations kept for backward) of both sides, and appends
// a JSON line to bench/results/.
//
//   npm run bench:causal-lm -- [--threads 2] [--batch 4] [--seq 128] [--steps 3] [--warmup 1] [--layers 12] [--no-peer] [--grad-checkpoint] [--no-prepack]
//   npm run bench:causal-lm -- --smoke   (a 1-layer width-64 model, batch 2×16: seconds; the test suite runs it)

import { openblasCore, peerEnv } from './peer_env.ts';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { loraConfigSchema } from '../src/adapters/lora/config.ts';
import { AdamW } from '../src/optim/adamw.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { buildCausalLmGraph, causalLmFeeds } from '../src/train/tasks/causal_lm.ts';
import { LLAMA_100M, LLAMA_SMOKE, llama100m, syntheticLmBatch } from './llama_like.ts';
import { savedActivations } from '../src/graph/cost.ts';
import { GemmLimitProbe, rooflineLines } from './roofline.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: v } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' }, batch: { type: 'string', default: '4' }, seq: { type: 'string', default: '128' },
    steps: { type: 'string', default: '3' }, warmup: { type: 'string', default: '1' }, layers: { type: 'string', default: '12' },
    'no-peer': { type: 'boolean', default: false }, smoke: { type: 'boolean', default: false },
    // The memory savers of `lorakit train --grad-checkpoint` / `--low-memory` (bench/memory_options.ts).
    'grad-checkpoint': { type: 'boolean', default: false }, 'no-prepack': { type: 'boolean', default: false },
  },
});
if (v.smoke) Object.assign(v, { batch: '2', seq: '16', steps: '2', warmup: '1', layers: String(LLAMA_SMOKE.layers) });
const dims = v.smoke ? LLAMA_SMOKE : LLAMA_100M;
const threads = Number(v.threads), B = Number(v.batch), T = Number(v.seq), steps = Number(v.steps), warmup = Number(v.warmup), layers = Number(v.layers);
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const model = llama100m({ layers, embedScale: 0.02, dims });
let frozen = 0;
for (const w of model.weights.values()) frozen += w.data.length;
const adapters = new AdapterSet(lora, loraConfigSchema.parse({ r: 8, lora_alpha: 16 }), model.sites, model.weights, { targetModules: ['q_proj', 'v_proj'], headNames: model.headNames, seed: 0 });
for (const [k, p] of adapters.params) if (k.endsWith('lora_B.weight')) p.fill(0);
console.log(`causal-LM LoRA step: ${(frozen / 1e6).toFixed(1)}M frozen, ${adapters.trainableCount()} trainable, batch ${B}×${T}, ${threads} threads, load average ${os.loadavg()[0].toFixed(2)}`);

const batch = syntheticLmBatch(model.config.vocabSize, B, T);
const rssBuilt = process.memoryUsage().rss;
const t0 = performance.now();
const { graph } = buildCausalLmGraph(model, adapters, 'train', { gradCheckpoint: v['grad-checkpoint'] });
const cg = await CompiledGraph.compile(graph, { threads, prepackWeights: !v['no-prepack'] });
console.log(`compiled in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
const rssCompiled = process.memoryUsage().rss;
const opt = new AdamW(adapters.params, { lr: 1e-4 });
const times: number[] = [];
let loss = NaN, peakRss = 0, probe: GemmLimitProbe | null = null;
for (let i = 0; i < warmup + steps; i++) {
  const t = performance.now();
  const out = await cg.run(causalLmFeeds(batch, adapters));
  const grads = new Map([...adapters.params.keys()].map((k) => [k, out[`grad.${k}`].data as Float32Array]));
  opt.step(grads);
  loss = Number(out.loss.data[0]);
  if (i < warmup) continue;
  times.push(performance.now() - t);
  // Peak RSS once a step has run, before the GEMM probe adds its own; the probe runs between steps (same load).
  if (!probe) {
    peakRss = process.resourceUsage().maxRSS * 1024;
    probe = await GemmLimitProbe.create(graph, { B, T }, { threads });
  }
  await probe.measure();
}
const gemm = await probe!.result();
await cg.release();
const ours = median(times);
console.log(`lorakit: ${ours.toFixed(1)} ms/step (median of ${steps}; ${times.map((x) => x.toFixed(0)).join(', ')}), loss ${loss.toFixed(3)}`);
const saved = savedActivations(graph, { B, T });

let peer: any = null;
const noTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' });
if (v['no-peer']) console.log('PyTorch peer skipped (--no-peer)');
else if (noTorch.status !== 0) console.log('PyTorch peer skipped: /usr/bin/python3 cannot import torch; to add it: apt-get install python3-torch libopenblas0-pthread (Debian), then rerun');
else {
  const r = spawnSync('/usr/bin/python3', [path.join(here, 'peer_llama_torch.py'), '--threads', String(threads), '--batch', String(B), '--seq', String(T), '--steps', String(steps), '--warmup', String(warmup), '--layers', String(layers),
    '--hidden', String(dims.hidden), '--heads', String(dims.heads), '--kv-heads', String(dims.kvHeads), '--ffn', String(dims.ffn), '--vocab', String(dims.vocab)], {
    encoding: 'utf8', env: peerEnv(threads), maxBuffer: 1 << 24,
  });
  if (r.status !== 0) throw new Error(`peer_llama_torch.py failed (exit ${r.status}):\n${r.stderr}`);
  else {
    peer = JSON.parse(r.stdout.trim().split('\n').pop()!);
    console.log(`torch ${peer.torch} (OpenBLAS kernel ${openblasCore(r.stderr)}): ${peer.ms_per_step.toFixed(0)} ms/step (median), loss ${peer.loss.toFixed(3)}`);
    console.log(`ratio torch_ms / lorakit_ms = ${(peer.ms_per_step / ours).toFixed(2)} (> 1: lorakit faster)`);
  }
}
for (const l of rooflineLines(gemm, ours, peer?.ms_per_step ?? null, threads)) console.log(l);
console.log(`memory: lorakit peak RSS ${mib(peakRss)} MiB (resident ${mib(rssBuilt)} MiB with the model built, ${mib(rssCompiled)} MiB compiled), activations kept for backward (planned, from the graph) ${mib(saved.bytes)} MiB in ${saved.count} tensors` +
  (peer ? `; torch peak RSS ${mib(peer.peak_rss_bytes)} MiB, saved for backward by autograd ${mib(peer.saved_bytes)} MiB` : ''));
if (!v.smoke) mkdirSync(path.join(here, 'results'), { recursive: true });
if (!v.smoke) appendFileSync(
  path.join(here, 'results', `causal_lm_step-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`),
  JSON.stringify({
    threads, batch: B, seq: T, layers, dims, frozen, trainable: adapters.trainableCount(), lorakit_ms: ours, torch_ms: peer?.ms_per_step ?? null, ratio: peer ? peer.ms_per_step / ours : null,
    step_gflop: gemm.flops / 1e9, gemm_limit_ms: gemm.ms, gemm_gflops: gemm.gflops, gemm_fraction: gemm.ms / ours, torch_gemm_fraction: peer ? gemm.ms / peer.ms_per_step : null,
    lorakit_peak_rss_bytes: peakRss, lorakit_rss_built_bytes: rssBuilt, lorakit_rss_compiled_bytes: rssCompiled, lorakit_activation_bytes: saved.bytes, torch_peak_rss_bytes: peer?.peak_rss_bytes ?? null, torch_saved_bytes: peer?.saved_bytes ?? null, loadavg: os.loadavg()[0],
  }) + '\n',
);

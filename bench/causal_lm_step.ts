// LoRA causal-LM training step on the ~100M Llama-shaped decoder: lorakit vs
// the PyTorch peer (bench/peer_llama_torch.py, same shapes: hidden 768, 12
// layers, 12 heads / 4 KV heads, SwiGLU 2048, vocab 32000, tied embeddings;
// LoRA r=8, alpha 16 on q_proj, v_proj; labels −100 on the first quarter).
// One lorakit step = one onnxruntime run (loss + every LoRA gradient) + AdamW
// in TypeScript. Prints both medians and torch_ms / lorakit_ms (> 1: lorakit
// is faster), and appends a JSON line to bench/results/.
//
//   npm run bench:causal-lm -- [--threads 2] [--batch 4] [--seq 128] [--steps 3] [--warmup 1] [--layers 12] [--no-peer]

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
import { buildCausalLmGraph, causalLmFeeds, CausalLmBatch } from '../src/train/tasks/causal_lm.ts';
import { IGNORE_INDEX } from '../src/models/types.ts';
import { llama100m } from './llama_like.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: v } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' }, batch: { type: 'string', default: '4' }, seq: { type: 'string', default: '128' },
    steps: { type: 'string', default: '3' }, warmup: { type: 'string', default: '1' }, layers: { type: 'string', default: '12' },
    'no-peer': { type: 'boolean', default: false },
  },
});
const threads = Number(v.threads), B = Number(v.batch), T = Number(v.seq), steps = Number(v.steps), warmup = Number(v.warmup), layers = Number(v.layers);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const model = llama100m({ layers, embedScale: 0.02 });
let frozen = 0;
for (const w of model.weights.values()) frozen += w.data.length;
const adapters = new AdapterSet(lora, loraConfigSchema.parse({ r: 8, lora_alpha: 16 }), model.sites, model.weights, { targetModules: ['q_proj', 'v_proj'], headNames: model.headNames, seed: 0 });
for (const [k, p] of adapters.params) if (k.endsWith('lora_B.weight')) p.fill(0);
console.log(`causal-LM LoRA step: ${(frozen / 1e6).toFixed(1)}M frozen, ${adapters.trainableCount()} trainable, batch ${B}×${T}, ${threads} threads, load average ${os.loadavg()[0].toFixed(2)}`);

const ids = new BigInt64Array(B * T), labels = new BigInt64Array(B * T);
let s = 12345;
for (let i = 0; i < B * T; i++) {
  s = (s * 1103515245 + 12345) % 2147483648;
  ids[i] = BigInt(3 + (s % (model.config.vocabSize - 3)));
  labels[i] = i % T < T / 4 ? BigInt(IGNORE_INDEX) : ids[i];
}
const batch: CausalLmBatch = { B, T, ids, mask: new Float32Array(B * T).fill(1), labels };
const t0 = performance.now();
const cg = await CompiledGraph.compile(buildCausalLmGraph(model, adapters, 'train').graph, { threads });
console.log(`compiled in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
const opt = new AdamW(adapters.params, { lr: 1e-4 });
const times: number[] = [];
let loss = NaN;
for (let i = 0; i < warmup + steps; i++) {
  const t = performance.now();
  const out = await cg.run(causalLmFeeds(batch, adapters));
  const grads = new Map([...adapters.params.keys()].map((k) => [k, out[`grad.${k}`].data as Float32Array]));
  opt.step(grads);
  loss = Number(out.loss.data[0]);
  if (i >= warmup) times.push(performance.now() - t);
}
await cg.release();
const ours = median(times);
console.log(`lorakit: ${ours.toFixed(0)} ms/step (median of ${steps}; ${times.map((x) => x.toFixed(0)).join(', ')}), loss ${loss.toFixed(3)}`);

let peer: any = null;
if (!v['no-peer']) {
  const r = spawnSync('/usr/bin/python3', [path.join(here, 'peer_llama_torch.py'), '--threads', String(threads), '--batch', String(B), '--seq', String(T), '--steps', String(steps), '--warmup', String(warmup), '--layers', String(layers)], {
    encoding: 'utf8', env: peerEnv(threads), maxBuffer: 1 << 24,
  });
  if (r.status !== 0) console.log(`PyTorch peer failed or missing (exit ${r.status}): ${r.stderr.trim().split('\n').pop()}`);
  else {
    peer = JSON.parse(r.stdout.trim().split('\n').pop()!);
    console.log(`torch ${peer.torch} (OpenBLAS kernel ${openblasCore(r.stderr)}): ${peer.ms_per_step.toFixed(0)} ms/step (median), loss ${peer.loss.toFixed(3)}`);
    console.log(`ratio torch_ms / lorakit_ms = ${(peer.ms_per_step / ours).toFixed(2)} (> 1: lorakit faster)`);
  }
}
mkdirSync(path.join(here, 'results'), { recursive: true });
appendFileSync(
  path.join(here, 'results', `causal_lm_step-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`),
  JSON.stringify({ threads, batch: B, seq: T, layers, frozen, trainable: adapters.trainableCount(), lorakit_ms: ours, torch_ms: peer?.ms_per_step ?? null, ratio: peer ? peer.ms_per_step / ours : null, loadavg: os.loadavg()[0] }) + '\n',
);

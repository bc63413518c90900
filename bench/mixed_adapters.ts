// Multi-tenant serving benchmark: one base model (bundled USE lite, or a
// Hugging Face decoder folder with --model: LM logits per row), 8 LoRA
// adapters, a stream of requests each naming its adapter.
//
//   npx tsx bench/mixed_adapters.ts [--model DIR] [--requests 64] [--batch 32] [--len 48] [--adapters 8] [--rank 8] [--threads 2] [--reps 3]
//   npx tsx bench/mixed_adapters.ts --smoke   (8 requests, 2 adapters, 1 rep: seconds; the test suite runs it)
//
// Strategies, tokens/s over the same requests (median of --reps):
//   mixed     one graph per batch; each row gathers its adapter's A/B from the
//             stacked tensors by an adapter-index input (src/serve/peft_model.ts)
//   switch    per request: setAdapter(its adapter) and run it alone (batch 1,
//             unmerged LoRA session per adapter, compiled once)
//   grouped   requests grouped by adapter, one merged-weights session per
//             adapter (8 sessions, 8 runs per batch)
//   base      the base model alone, batch as in 'mixed' (the ceiling)
// Requests are sorted by length before batching (--sort 0: arrival order).
// Results are printed and appended as a JSON line to bench/results/.

import { appendFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import { loadDecoder } from '../src/models/load_decoder.ts';
import type { TargetModules } from '../src/adapters/targets.ts';
import { padBatch, PeftModel, type ServableModel } from '../src/serve/peft_model.ts';
import { Rng } from '../src/util/rng.ts';

const argv = process.argv.slice(2);
const modelDir = argv.includes('--model') ? argv[argv.indexOf('--model') + 1] : undefined;
const smoke = argv.includes('--smoke');
const args = Object.fromEntries(argv.reduce<[string, number][]>((acc, a, i, xs) => (a.startsWith('--') && a !== '--model' && a !== '--smoke' ? [...acc, [a.slice(2), Number(xs[i + 1])]] : acc), []));
if (smoke) Object.assign(args, { requests: 8, batch: 4, len: 12, adapters: 2, reps: 1, ...args });
const N = args.requests ?? 64, BATCH = args.batch ?? 32, LEN = args.len ?? 48, K = args.adapters ?? 8, R = args.rank ?? 8, THREADS = args.threads ?? 2, REPS = args.reps ?? 3;

const model: ServableModel = modelDir ? await loadDecoder(modelDir) : await loadUseEncoder();
const vocab = 'config' in model && 'vocabSize' in model.config ? model.config.vocabSize : 7993;
// USE: its ten projections; a decoder: every linear layer but the output head (PEFT's all-linear).
const targets: TargetModules = modelDir ? 'all-linear' : ['qkv', 'output', 'conv1', 'conv2'];
const headNames = 'headNames' in model ? model.headNames : undefined;
const rng = new Rng(7);
const requests = Array.from({ length: N }, (_, i) => ({
  ids: Array.from({ length: 8 + Math.floor(rng.uniform() * (LEN - 8)) }, () => 3 + Math.floor(rng.uniform() * (vocab - 3))),
  adapter: `tenant${i % K}`,
}));
// A server batches requests of similar length (less padding); --sort 0 keeps arrival order.
if ((args.sort ?? 1) !== 0) requests.sort((a, b) => a.ids.length - b.ids.length);
const tokens = requests.reduce((s, r) => s + r.ids.length, 0);
const sets = Array.from({ length: K }, (_, k) => new AdapterSet(lora, lora.schema.parse({ r: R, lora_alpha: 2 * R, init_lora_weights: false }), model.sites, model.weights, { targetModules: targets, headNames, seed: k }));

const pm = new PeftModel(model, { threads: THREADS });
sets.forEach((s, k) => pm.addAdapter(`tenant${k}`, s));
const merged = sets.map((s) => new PeftModel(model.withWeights(s.mergeInto(model.weights)), { threads: THREADS }));
const basePm = new PeftModel(model, { threads: THREADS });

const batches = (xs: typeof requests) => Array.from({ length: Math.ceil(xs.length / BATCH) }, (_, i) => xs.slice(i * BATCH, (i + 1) * BATCH));

const strategies: Record<string, () => Promise<void>> = {
  async mixed() {
    for (const b of batches(requests)) await pm.runMixed(padBatch(b.map((r) => r.ids)), b.map((r) => r.adapter));
  },
  async switch() {
    for (const r of requests) {
      pm.setAdapter(r.adapter);
      await pm.run(padBatch([r.ids]));
    }
  },
  async grouped() {
    for (const b of batches(requests)) {
      for (let k = 0; k < K; k++) {
        const rows = b.filter((r) => r.adapter === `tenant${k}`);
        if (rows.length) await merged[k].run(padBatch(rows.map((r) => r.ids)));
      }
    }
  },
  async base() {
    for (const b of batches(requests)) await basePm.run(padBatch(b.map((r) => r.ids)));
  },
};

// Strategies are interleaved rep by rep, so drifting machine load hits all of them alike.
for (const fn of Object.values(strategies)) await fn(); // compile + warm up
const times: Record<string, number[]> = Object.fromEntries(Object.keys(strategies).map((k) => [k, []]));
for (let i = 0; i < REPS; i++) {
  for (const [name, fn] of Object.entries(strategies)) {
    const t0 = performance.now();
    await fn();
    times[name].push(performance.now() - t0);
  }
}
const results: Record<string, { ms: number; tokensPerSec: number }> = {};
for (const [name, ts] of Object.entries(times)) {
  ts.sort((a, b) => a - b);
  const ms = ts[Math.floor(ts.length / 2)];
  results[name] = { ms: +ms.toFixed(1), tokensPerSec: Math.round((tokens / ms) * 1000) };
}
console.log(`${N} requests (${tokens} tokens, lengths 8..${LEN}${(args.sort ?? 1) !== 0 ? ', batched by length' : ''}) over ${K} LoRA adapters (r=${R}, ${modelDir ? `${model.name}, all-linear` : 'USE, qkv/output/conv1/conv2'}), batch ${BATCH}, ${THREADS} threads, median of ${REPS}`);
console.table(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { 'ms': v.ms, 'tokens/s': v.tokensPerSec, 'vs switch': +(v.tokensPerSec / results.switch.tokensPerSec).toFixed(2) }])));
const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
if (!smoke) mkdirSync(dir, { recursive: true });
if (!smoke) appendFileSync(path.join(dir, `mixed_adapters-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`), JSON.stringify({ bench: 'mixed_adapters', model: model.name, sorted: (args.sort ?? 1) !== 0, requests: N, tokens, adapters: K, rank: R, batch: BATCH, threads: THREADS, cpus: os.cpus().length, load: os.loadavg()[0], results }) + '\n');
await pm.release();
await basePm.release();
for (const m of merged) await m.release();

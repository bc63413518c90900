// LoRAM's cost side: LoRA training on the full ~100M Llama-shaped decoder of
// the benches (bench/llama_like.ts, random weights) against LoRA training on
// its structurally pruned version (lorakit's LoRAM prune: FFN neurons and
// KV-head groups removed in every layer, random-structured plan; the cost does
// not depend on which groups go). Each configuration runs in its own process,
// so its peak resident memory is its own. LoRA r = 8, α = 16 on every linear
// layer but the head; one fused onnxruntime run per step + AdamW.
//
//   npx tsx bench/loram_cost.ts [--ratio 0.5] [--batch 4] [--seq 256] [--steps 5] [--threads 2] [--layers 12] [--smoke]
// --smoke: 1 layer, batch 1×16, 1 step, nothing appended: checks the bench runs.
//
// Prints a Markdown table and appends a JSON line to bench/results/loram_cost.jsonl.

import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { createLlama, llamaConfigFromHf } from '../src/models/llama.ts';
import { AdamW } from '../src/optim/adamw.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { buildCausalLmGraph, causalLmFeeds } from '../src/train/tasks/causal_lm.ts';
import { loramShape, planLayers, prunedConfig, pruneWeights } from '../src/workflows/loram/prune.ts';
import { PLAN_FORMAT } from '../src/workflows/loram/plan.ts';
import { llama100m, syntheticLmBatch } from './llama_like.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: v } = parseArgs({
  options: {
    ratio: { type: 'string', default: '0.5' }, batch: { type: 'string', default: '4' }, seq: { type: 'string', default: '256' }, steps: { type: 'string', default: '5' },
    threads: { type: 'string', default: '2' }, layers: { type: 'string', default: '12' }, child: { type: 'string' }, smoke: { type: 'boolean', default: false },
  },
});
if (v.smoke) Object.assign(v, { layers: '1', batch: '1', seq: '16', steps: '1' });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rssMiB = () => process.resourceUsage().maxRSS / 1024;

async function child(which: 'full' | 'pruned') {
  const ratio = Number(v.ratio), B = Number(v.batch), T = Number(v.seq), steps = Number(v.steps), threads = Number(v.threads);
  let model = llama100m({ layers: Number(v.layers), embedScale: 0.02 });
  if (which === 'pruned') {
    const hf = { model_type: 'llama', vocab_size: 32000, hidden_size: 768, intermediate_size: 2048, num_hidden_layers: Number(v.layers), num_attention_heads: 12, num_key_value_heads: 4, max_position_embeddings: 1024, rms_norm_eps: 1e-6, rope_theta: 10000, tie_word_embeddings: true, eos_token_id: 2 };
    const shape = loramShape(llamaConfigFromHf(hf), 'llama-100m');
    const layers = Array.from({ length: shape.numLayers }, (_, i) => i);
    const plan = { format: PLAN_FORMAT, original: { model: 'llama-100m-random', shape }, layers: planLayers(shape, { importance: 'random', ffnRatio: ratio, attnRatio: ratio, layers, seed: 0 }) } as const;
    const weights = pruneWeights(model.weights, plan);
    model = createLlama(llamaConfigFromHf(prunedConfig(hf, plan)), weights, 'llama-100m-pruned');
  }
  let frozen = 0;
  for (const w of model.weights.values()) frozen += w.data.length;
  const loaded = rssMiB();
  const adapters = new AdapterSet(lora, lora.schema.parse({ r: 8, lora_alpha: 16 }), model.sites, model.weights, { targetModules: 'all-linear', headNames: model.headNames, seed: 0 });
  const batch = syntheticLmBatch(model.config.vocabSize, B, T);
  const cg = await CompiledGraph.compile(buildCausalLmGraph(model, adapters, 'train').graph, { threads });
  const opt = new AdamW(adapters.params, { lr: 1e-4 });
  const times: number[] = [];
  for (let i = 0; i < steps + 1; i++) {
    const t = performance.now();
    const out = await cg.run(causalLmFeeds(batch, adapters));
    opt.step(new Map([...adapters.params.keys()].map((k) => [k, out[`grad.${k}`].data as Float32Array])));
    if (i > 0) times.push(performance.now() - t);
  }
  await cg.release();
  console.log(JSON.stringify({ which, frozenParams: frozen, trainableParams: adapters.trainableCount(), rssAfterLoadMiB: loaded, peakRssMiB: rssMiB(), stepMs: median(times), steps: times.length }));
}

if (v.child) await child(v.child as 'full' | 'pruned');
else {
  const rows: any[] = [];
  for (const which of ['full', 'pruned']) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...process.argv.slice(2), '--child', which], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`${which}: ${r.stderr}`);
    rows.push(JSON.parse(r.stdout.trim().split('\n').pop()!));
  }
  const [full, pruned] = rows;
  console.log(`LoRA r=8 on all linear layers, batch ${v.batch}×${v.seq}, ${v.threads} threads, pruning ratio ${v.ratio} (load average ${os.loadavg()[0].toFixed(2)})\n`);
  console.log('| model | frozen params | LoRA params | RSS after load (MiB) | peak RSS training (MiB) | step (ms, median) |');
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.which === 'full' ? 'full ~100M' : `LoRAM-pruned (${v.ratio})`} | ${(r.frozenParams / 1e6).toFixed(1)}M | ${(r.trainableParams / 1e6).toFixed(2)}M | ${r.rssAfterLoadMiB.toFixed(0)} | ${r.peakRssMiB.toFixed(0)} | ${r.stepMs.toFixed(0)} |`);
  console.log(`\npruned / full: peak RSS ${(pruned.peakRssMiB / full.peakRssMiB).toFixed(2)}, step time ${(pruned.stepMs / full.stepMs).toFixed(2)}`);
  if (!v.smoke) {
    mkdirSync(path.join(here, 'results'), { recursive: true });
    appendFileSync(path.join(here, 'results', 'loram_cost.jsonl'), JSON.stringify({ date: new Date().toISOString(), args: v, rows }) + '\n');
  }
}

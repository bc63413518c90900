// The memory options of a training step, side by side: lorakit's default,
// --low-memory (onnxruntime keeps no prepacked copy of the frozen weights:
// SessionOptions.prepackWeights = false) and --grad-checkpoint (each sublayer's
// forward recomputed in the backward graph: src/autodiff/checkpoint.ts), on the
// BERT-like LoRA step of bench/train_step.ts.
//
//   npx tsx bench/memory_options.ts --layers 12 --seq 512 --batch 2 --steps 6 [--time-layers 4]
//   npx tsx bench/memory_options.ts --smoke
//
// Time: every variant compiled in this one process, their steps interleaved
// (a load change hits all alike); median ms per step and the ratio to the
// default (--time-layers: fewer layers for this part, whose four sessions
// share one process's memory). Memory: each variant again in a child process of its own (peak RSS
// after 2 steps, resident memory once compiled), one after another; the
// activations kept for backward as planned from the graph.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { loraConfigSchema } from '../src/adapters/lora/config.ts';
import { savedActivations } from '../src/graph/cost.ts';
import { CompiledGraph, type HostTensor } from '../src/runtime/session.ts';
import { buildClassifierGraph, initHead } from '../src/train/classifier.ts';
import { Rng } from '../src/util/rng.ts';
import { BertLike, bertLikeConfig } from './bert_like.ts';

const VARIANTS = {
  default: { gradCheckpoint: false, prepackWeights: true },
  'low-memory': { gradCheckpoint: false, prepackWeights: false },
  'grad-checkpoint': { gradCheckpoint: true, prepackWeights: true },
  'both': { gradCheckpoint: true, prepackWeights: false },
} as const;
type Variant = keyof typeof VARIANTS;

interface Args { layers: number; timeLayers?: number; hidden: number; heads: number; ffn: number; seq: number; batch: number; steps: number; threads: number; child?: Variant }

function parseArgs(argv: string[]): Args {
  const a: Args = { layers: 12, hidden: 768, heads: 12, ffn: 3072, seq: 128, batch: 8, steps: 6, threads: 2 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const int = () => {
      const v = Number(argv[++i]);
      if (!(Number.isInteger(v) && v >= 1)) throw new Error(`${k} needs a positive integer`);
      return v;
    };
    if (k === '--layers') a.layers = int();
    else if (k === '--time-layers') a.timeLayers = int();
    else if (k === '--seq') a.seq = int();
    else if (k === '--batch') a.batch = int();
    else if (k === '--steps') a.steps = int();
    else if (k === '--threads') a.threads = int();
    else if (k === '--smoke') Object.assign(a, { layers: 2, hidden: 32, heads: 2, ffn: 64, seq: 16, batch: 2, steps: 2 });
    else if (k === '--child') {
      const v = argv[++i] as Variant;
      if (!(v in VARIANTS)) throw new Error(`--child must be one of ${Object.keys(VARIANTS).join(', ')}`);
      a.child = v;
    } else if (k === '--help' || k === '-h') {
      console.log('usage: npx tsx bench/memory_options.ts [--layers 12] [--time-layers N] [--seq 128] [--batch 8] [--steps 6] [--threads 2] [--smoke]');
      process.exit(0);
    } else throw new Error(`unknown argument '${k}' (try --help)`);
  }
  return a;
}

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
const mib = (b: number) => (b / 2 ** 20).toFixed(0);

/** The BERT-like model with its LoRA and head (seeded); the variants' graphs share its arrays. */
function makeModel(a: Args, layers: number) {
  const model = BertLike.random(bertLikeConfig({ layers, hidden: a.hidden, heads: a.heads, ffn: a.ffn, maxPositions: a.seq, vocab: 30522 }), 0);
  const adapters = new AdapterSet(lora, loraConfigSchema.parse({ r: 8, lora_alpha: 16 }), model.sites, model.weights, { targetModules: ['query', 'value'], seed: 0 });
  return { model, adapters, head: initHead(a.hidden, 2, 0) };
}

/** One compiled step of the model for a variant. */
async function makeStep(a: Args, { model, adapters, head }: ReturnType<typeof makeModel>, v: Variant) {
  const { graph, trainable } = buildClassifierGraph(model, adapters, head, 2, 'train', { gradCheckpoint: VARIANTS[v].gradCheckpoint });
  const cg = await CompiledGraph.compile(graph, { threads: a.threads, prepackWeights: VARIANTS[v].prepackWeights });
  const rng = new Rng(1);
  const feeds: Record<string, HostTensor> = {
    input_ids: { data: BigInt64Array.from({ length: a.batch * a.seq }, () => BigInt(rng.int(30522))), dims: [a.batch, a.seq] },
    attention_mask: { data: new Float32Array(a.batch * a.seq).fill(1), dims: [a.batch, a.seq] },
    labels: { data: BigInt64Array.from({ length: a.batch }, () => BigInt(rng.int(2))), dims: [a.batch] },
  };
  const params = new Map([...adapters.params, ...head]);
  for (const k of trainable) feeds[k] = { data: params.get(k)!, dims: graph.leaf(k)!.shape as number[] };
  const fetch = ['loss', ...trainable.map((k) => `grad.${k}`)];
  const activations = savedActivations(graph, { B: a.batch, T: a.seq }).bytes;
  return {
    activations,
    step: async () => {
      const s = performance.now();
      const out = await cg.run(feeds, fetch);
      return { ms: performance.now() - s, loss: (out.loss.data as Float32Array)[0] };
    },
  };
}

/**
 * This process's peak resident memory: Linux's VmHWM (the high-water mark of
 * this program's own address space). Not maxRSS: for a spawned child it keeps
 * the forking parent's resident memory as a floor across exec.
 */
function peakRss(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {}
  return process.resourceUsage().maxRSS * 1024;
}

/** Child: one variant alone, its memory. */
async function child(a: Args, v: Variant) {
  const s = await makeStep(a, makeModel(a, a.layers), v);
  const compiled = process.memoryUsage().rss;
  for (let i = 0; i < 2; i++) await s.step();
  console.log(JSON.stringify({ variant: v, peak_rss: peakRss(), compiled_rss: compiled, activations: s.activations }));
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  if (a.child) return child(a, a.child);
  const timeLayers = a.timeLayers ?? a.layers;
  console.log(`BERT-like LoRA step (r 8 on query/value): ${a.layers} layers (time: ${timeLayers}), hidden ${a.hidden}, ffn ${a.ffn}, batch ${a.batch} × seq ${a.seq}, ${a.threads} threads; load ${os.loadavg()[0].toFixed(2)}`);
  const names = Object.keys(VARIANTS) as Variant[];
  const m = makeModel(a, timeLayers);
  const steps = [];
  for (const v of names) steps.push(await makeStep(a, m, v));
  const times = names.map(() => [] as number[]);
  const losses = names.map(() => 0);
  for (const [i, s] of steps.entries()) losses[i] = (await s.step()).loss; // warmup
  for (let k = 0; k < a.steps; k++) for (const [i, s] of steps.entries()) times[i].push((await s.step()).ms);
  const loadMid = os.loadavg()[0];
  const mem = names.map((v) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), ...process.argv.slice(2), '--child', v], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`memory run of '${v}' failed (exit ${r.status}):\n${r.stderr}`);
    return JSON.parse(r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop()!);
  });
  const base = median(times[0]);
  console.log(`load ${loadMid.toFixed(2)} after the timed steps, ${os.loadavg()[0].toFixed(2)} after the memory runs (ratios within this run are what to compare)\n`);
  console.log(`| variant | ms/step (median, ${timeLayers} layers) | × default | loss (first step) | activations kept for backward, planned MiB | resident once compiled MiB | peak RSS MiB |`);
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  names.forEach((v, i) => {
    const t = median(times[i]);
    console.log(`| ${v} | ${t.toFixed(1)} | ${(t / base).toFixed(3)} | ${losses[i].toFixed(6)} | ${mib(mem[i].activations)} | ${mib(mem[i].compiled_rss)} | ${mib(mem[i].peak_rss)} |`);
  });
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});

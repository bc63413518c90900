// A frozen base in fp32, int8, nf4 and int4: one LoRA training step (forward,
// backward to the adapter and head, AdamW) on the BERT-base-size encoder of
// bench/train_step.ts (12 layers, 768 hidden, 3072 FFN, batch 8 × 128 tokens,
// LoRA r 8 on query and value), all bases in ONE process, steps interleaved
// (fp32, int8, nf4, int4, fp32, …) so a loaded machine slows them alike; then
// each base alone in a child process for its peak RSS.
//
//   npx tsx bench/quant_step.ts [--steps 10] [--warmup 2] [--threads 2] [--dtypes fp32,int8,nf4,int4] [--smoke]
//
// --smoke: the 2-layer 256-wide config, 2 steps: checks the bench runs.
// Prints a JSON summary (speedup_fp32_over_D = fp32_ms / D_ms: > 1 = D faster)
// and appends it to bench/results/quant_step.jsonl.

import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { loraConfigSchema } from '../src/adapters/lora/config.ts';
import { CompiledGraph, HostTensor } from '../src/runtime/session.ts';
import { AdamW } from '../src/optim/adamw.ts';
import { buildClassifierGraph, initHead } from '../src/train/classifier.ts';
import { BASE_DTYPES, quantizeBase, storedBytes, type BaseDtype, type BaseQuantization } from '../src/quant/base_dtype.ts';
import { quantizedFormOf } from '../src/quant/quantized_weights.ts';
import { peakRss } from '../src/tasks/train.ts';
import { Rng } from '../src/util/rng.ts';
import { BENCH_CONFIGS, BertLike, bertLikeConfig } from './bert_like.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const RANK = 8, ALPHA = 16, CLASSES = 2, VOCAB = 30522, LR = 1e-4;

interface Args { steps: number; warmup: number; threads: number; smoke: boolean; dtypes: BaseDtype[]; child?: BaseDtype }

function parseArgs(argv: string[]): Args {
  const a: Args = { steps: 10, warmup: 2, threads: 2, smoke: false, dtypes: [...BASE_DTYPES] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const int = () => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1) throw new Error(`${k} needs a positive integer`);
      return v;
    };
    if (k === '--steps') a.steps = int();
    else if (k === '--warmup') a.warmup = int();
    else if (k === '--threads') a.threads = int();
    else if (k === '--smoke') a.smoke = true;
    else if (k === '--child' || k === '--dtypes') {
      const ds = (argv[++i] ?? '').split(',');
      for (const d of ds) if (!(BASE_DTYPES as readonly string[]).includes(d)) throw new Error(`${k} takes ${BASE_DTYPES.join(', ')}, got '${d}'`);
      if (k === '--child') a.child = ds[0] as BaseDtype;
      else a.dtypes = ['fp32', ...(ds as BaseDtype[]).filter((d) => d !== 'fp32')];
    } else throw new Error(`unknown argument '${k}' (usage: [--steps 10] [--warmup 2] [--threads 2] [--dtypes fp32,int8,nf4,int4] [--smoke])`);
  }
  if (a.smoke) Object.assign(a, { steps: 2, warmup: 1 });
  return a;
}

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

/** One compiled LoRA training step over `model` (built now: int8 when its weights were quantized before). */
async function makeStep(model: BertLike, shape: (typeof BENCH_CONFIGS)['base'], threads: number) {
  const adapters = new AdapterSet(lora, loraConfigSchema.parse({ r: RANK, lora_alpha: ALPHA }), model.sites, model.weights, { targetModules: ['query', 'value'], seed: 0 });
  const head = initHead(shape.hidden, CLASSES, 0);
  const { graph, trainable } = buildClassifierGraph(model, adapters, head, CLASSES, 'train');
  // Forward products only (int4's input gradients are MatMulNBits nodes too, on the copy named '….T.int4').
  const quantizedProducts = graph.nodes.filter((n) => ['DynamicQuantizeMatMul', 'MatMulNBits', 'MatMulBnb4'].includes(n.op) && !n.inputs[1]?.leaf?.name.endsWith('.T.int4')).length;
  const compiled = await CompiledGraph.compile(graph, { threads });
  const params = new Map<string, Float32Array>([...adapters.params, ...head]);
  const opt = new AdamW(params, { lr: LR });
  const rng = new Rng(1);
  const { batch: B, seq: T } = shape;
  const feeds: Record<string, HostTensor> = {
    input_ids: { data: BigInt64Array.from({ length: B * T }, () => BigInt(rng.int(VOCAB))), dims: [B, T] },
    attention_mask: { data: new Float32Array(B * T).fill(1), dims: [B, T] },
    labels: { data: BigInt64Array.from({ length: B }, () => BigInt(rng.int(CLASSES))), dims: [B] },
  };
  for (const k of trainable) feeds[k] = { data: params.get(k)!, dims: graph.leaf(k)!.shape as number[] };
  const fetch = ['loss', ...trainable.map((k) => `grad.${k}`)];
  const losses: number[] = [];
  const step = async () => {
    const t = performance.now();
    const out = await compiled.run(feeds, fetch);
    opt.step(new Map(trainable.map((k) => [k, out[`grad.${k}`].data as Float32Array])));
    losses.push((out.loss.data as Float32Array)[0]);
    return performance.now() - t;
  };
  return { step, losses, quantizedProducts, release: () => compiled.release() };
}

/** Each base alone in its own process: its peak RSS (model load, quantization, compile, steps). */
async function child(a: Args, dtype: BaseDtype) {
  const shape = BENCH_CONFIGS[a.smoke ? 'small' : 'base'];
  const model = BertLike.random(bertLikeConfig({ ...shape, maxPositions: shape.seq, vocab: VOCAB }), 0);
  quantizeBase(model.weights, model.sites, dtype);
  const s = await makeStep(model, shape, a.threads);
  for (let i = 0; i < a.warmup + a.steps; i++) await s.step();
  await s.release();
  console.log(JSON.stringify({ dtype, peak_rss_mib: round(peakRss() / 2 ** 20, 1) }));
}

/** `model` with fresh copies of its linear weights (a weight array carries one quantized form), quantized to `dtype`. */
function quantizedCopy(model: BertLike, dtype: BaseDtype): { model: BertLike; q: BaseQuantization } {
  const weights = new Map(model.weights);
  for (const site of model.sites) {
    const w = weights.get(site.weightKey)!;
    weights.set(site.weightKey, { ...w, data: Float32Array.from(w.data) });
  }
  const copy = model.withWeights(weights);
  return { model: copy, q: quantizeBase(copy.weights, copy.sites, dtype) };
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  if (a.child) return child(a, a.child);
  const config = a.smoke ? 'small' : 'base';
  const shape = BENCH_CONFIGS[config];
  const model = BertLike.random(bertLikeConfig({ ...shape, maxPositions: shape.seq, vocab: VOCAB }), 0);
  const steps = new Map<BaseDtype, Awaited<ReturnType<typeof makeStep>>>();
  const quant = new Map<BaseDtype, BaseQuantization>();
  let int4Transposed = 0;
  for (const d of a.dtypes) {
    const m = d === 'fp32' ? { model, q: undefined } : quantizedCopy(model, d);
    const s = await makeStep(m.model, shape, a.threads);
    const want = d === 'fp32' ? 0 : model.sites.length;
    if (s.quantizedProducts !== want) throw new Error(`bench: ${d} graph has ${s.quantizedProducts} quantized products (want ${want})`);
    steps.set(d, s);
    if (m.q) {
      // int4 training also holds the codes packed along N for the input gradient (as many bytes again).
      if (d === 'int4') int4Transposed = m.model.sites.reduce((sum, site) => { const f = quantizedFormOf(m.model.weights.get(site.weightKey)!.data); return sum + (f?.dtype === 'int4' ? storedBytes({ ...f, q: f.transposed() }) : 0); }, 0);
      quant.set(d, m.q);
    }
  }
  const times = new Map(a.dtypes.map((d) => [d, [] as number[]]));
  for (let i = 0; i < a.warmup + a.steps; i++) {
    for (const d of a.dtypes) {
      const t = await steps.get(d)!.step();
      if (i >= a.warmup) times.get(d)!.push(t);
    }
  }
  for (const s of steps.values()) await s.release();
  let allBytes = 0;
  for (const w of model.weights.values()) allBytes += 4 * w.data.length;
  const rss: Record<string, number> = {};
  for (const d of a.dtypes) {
    const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', d, '--threads', String(a.threads), '--steps', String(a.steps), '--warmup', String(a.warmup), ...(a.smoke ? ['--smoke'] : [])], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`bench child ${d} failed: ${r.stderr}`);
    rss[d] = JSON.parse(r.stdout.trim().split('\n').pop()!).peak_rss_mib;
  }
  const fp32Ms = median(times.get('fp32')!);
  const result: Record<string, unknown> = { bench: 'quant_step', date: new Date().toISOString(), config, ...shape, rank: RANK, targets: 'query,value', threads: a.threads, steps: a.steps, fp32_ms: round(fp32Ms, 1), peak_rss_mib_fp32: rss.fp32 };
  const fp32Loss = steps.get('fp32')!.losses;
  result.loss_fp32 = [round(fp32Loss[0], 4), round(fp32Loss.at(-1)!, 4)];
  for (const d of a.dtypes.filter((d) => d !== 'fp32')) {
    const ms = median(times.get(d)!), q = quant.get(d)!, losses = steps.get(d)!.losses;
    Object.assign(result, {
      [`${d}_ms`]: round(ms, 1), [`speedup_fp32_over_${d}`]: round(fp32Ms / ms),
      [`linear_weight_mib_${d}`]: round(q.storedBytes / 2 ** 20, 1), [`linear_weight_ratio_${d}`]: round(q.storedBytes / q.fp32Bytes),
      [`base_weight_ratio_with_embeddings_${d}`]: round((allBytes - q.fp32Bytes + q.storedBytes) / allBytes),
      [`peak_rss_mib_${d}`]: rss[d], [`peak_rss_ratio_${d}`]: round(rss[d] / rss.fp32),
      [`loss_${d}`]: [round(losses[0], 4), round(losses.at(-1)!, 4)],
    });
    if (d === 'int4') result.linear_weight_ratio_int4_training = round((q.storedBytes + int4Transposed) / q.fp32Bytes);
    if (d === 'int8') Object.assign(result, { speedup_fp32_over_int8: round(fp32Ms / ms), linear_weight_ratio: round(q.storedBytes / q.fp32Bytes), peak_rss_ratio: round(rss[d] / rss.fp32) });
  }
  result.linear_weight_mib_fp32 = round(([...quant.values()][0]?.fp32Bytes ?? 0) / 2 ** 20, 1);
  console.log(JSON.stringify(result, null, 2));
  if (!a.smoke) {
    mkdirSync(path.join(here, 'results'), { recursive: true });
    appendFileSync(path.join(here, 'results', 'quant_step.jsonl'), JSON.stringify(result) + '\n');
  }
}

await main();

// A frozen base in fp32, int8, nf4 and int4: one LoRA training step (forward,
// backward to the adapter (and head), AdamW), all bases in ONE process, steps
// interleaved (fp32, int8, nf4, int4, fp32, …) so a loaded machine slows them
// alike; then each base alone in a child process for its peak RSS. Two models:
//   bert   the BERT-base-size encoder of bench/train_step.ts (12 layers, 768
//          hidden, 3072 FFN, batch 8 × 128 tokens), LoRA r 8 on query and
//          value, a 2-class head;
//   llama  the ~100M Llama-shaped decoder of bench/llama_like.ts (12 layers,
//          768 hidden, SwiGLU 2048, vocab 32000, tied embeddings), causal-LM
//          loss on batch 4 × 128, LoRA r 8 on q_proj and v_proj (as
//          bench/causal_lm_step.ts).
//
//   npx tsx bench/quant_step.ts [--model bert|llama] [--dtypes fp32,int8,nf4,int4] [--steps 10] [--warmup 2] [--threads 2] [--smoke]
//
// --smoke: both models in tiny configs, 2 steps: checks the bench runs.
// Prints a JSON summary per model (speedup_fp32_over_D = fp32_ms / D_ms: > 1 =
// D faster) and appends it to bench/results/quant_step.jsonl.

import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { loraConfigSchema } from '../src/adapters/lora/config.ts';
import { CompiledGraph, HostTensor } from '../src/runtime/session.ts';
import { AdamW } from '../src/optim/adamw.ts';
import { buildClassifierGraph, initHead } from '../src/train/classifier.ts';
import { buildCausalLmGraph, causalLmFeeds, type CausalLmBatch } from '../src/train/tasks/causal_lm.ts';
import { IGNORE_INDEX } from '../src/models/types.ts';
import type { DecoderModel } from '../src/models/decoder.ts';
import { BASE_DTYPES, quantizeBase, storedBytes, type BaseDtype, type BaseQuantization } from '../src/quant/base_dtype.ts';
import { quantizedFormOf } from '../src/quant/quantized_weights.ts';
import { peakRss } from '../src/tasks/train.ts';
import { Rng } from '../src/util/rng.ts';
import { BENCH_CONFIGS, BertLike, bertLikeConfig } from './bert_like.ts';
import { LLAMA_100M, LLAMA_SMOKE, llama100m } from './llama_like.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const RANK = 8, ALPHA = 16, CLASSES = 2, VOCAB = 30522, LR = 1e-4;

type ModelKind = 'bert' | 'llama';
interface Args { steps: number; warmup: number; threads: number; smoke: boolean; dtypes: BaseDtype[]; model?: ModelKind; child?: BaseDtype }

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
    else if (k === '--model') {
      const m = argv[++i];
      if (m !== 'bert' && m !== 'llama') throw new Error(`--model must be bert or llama, got '${m}'`);
      a.model = m;
    }
    else if (k === '--child' || k === '--dtypes') {
      const ds = (argv[++i] ?? '').split(',');
      for (const d of ds) if (!(BASE_DTYPES as readonly string[]).includes(d)) throw new Error(`${k} takes ${BASE_DTYPES.join(', ')}, got '${d}'`);
      if (k === '--child') a.child = ds[0] as BaseDtype;
      else a.dtypes = ['fp32', ...(ds as BaseDtype[]).filter((d) => d !== 'fp32')];
    } else throw new Error(`unknown argument '${k}' (usage: [--model bert|llama] [--dtypes fp32,int8,nf4,int4] [--steps 10] [--warmup 2] [--threads 2] [--smoke])`);
  }
  if (a.smoke) Object.assign(a, { steps: 2, warmup: 1 });
  return a;
}

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

interface Step {
  step: () => Promise<number>;
  losses: number[];
  quantizedProducts: number;
  release: () => Promise<void>;
}

/** The bench model: its weights (quantized in place by quantizeBase) and a compiled LoRA step over them as they are now. */
interface BenchModel {
  sites: BertLike['sites'];
  weights: BertLike['weights'];
  shape: { layers: number; hidden: number; batch: number; seq: number };
  makeStep: (threads: number) => Promise<Step>;
}

async function timedStep(graph: Parameters<typeof CompiledGraph.compile>[0], threads: number, run: (c: CompiledGraph) => Promise<number>): Promise<Step> {
  // Forward products only (int4's input gradients are MatMulNBits nodes too, on the copy named '….T.int4').
  const quantizedProducts = graph.nodes.filter((n) => ['DynamicQuantizeMatMul', 'MatMulNBits', 'MatMulBnb4'].includes(n.op) && !n.inputs[1]?.leaf?.name.endsWith('.T.int4')).length;
  const compiled = await CompiledGraph.compile(graph, { threads });
  const losses: number[] = [];
  const step = async () => {
    const t = performance.now();
    losses.push(await run(compiled));
    return performance.now() - t;
  };
  return { step, losses, quantizedProducts, release: () => compiled.release() };
}

function bertModel(smoke: boolean): BenchModel {
  const shape = BENCH_CONFIGS[smoke ? 'small' : 'base'];
  const model = BertLike.random(bertLikeConfig({ ...shape, maxPositions: shape.seq, vocab: VOCAB }), 0);
  return {
    sites: model.sites, weights: model.weights, shape,
    async makeStep(threads) {
      const adapters = new AdapterSet(lora, loraConfigSchema.parse({ r: RANK, lora_alpha: ALPHA }), model.sites, model.weights, { targetModules: ['query', 'value'], seed: 0 });
      const head = initHead(shape.hidden, CLASSES, 0);
      const { graph, trainable } = buildClassifierGraph(model, adapters, head, CLASSES, 'train');
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
      return timedStep(graph, threads, async (c) => {
        const out = await c.run(feeds, fetch);
        opt.step(new Map(trainable.map((k) => [k, out[`grad.${k}`].data as Float32Array])));
        return (out.loss.data as Float32Array)[0];
      });
    },
  };
}

function llamaModel(smoke: boolean): BenchModel {
  const dims = smoke ? LLAMA_SMOKE : LLAMA_100M;
  const model: DecoderModel = llama100m({ embedScale: 0.02, dims });
  const [B, T] = smoke ? [2, 16] : [4, 128];
  return {
    sites: model.sites, weights: model.weights, shape: { layers: dims.layers, hidden: dims.hidden, batch: B, seq: T },
    async makeStep(threads) {
      const adapters = new AdapterSet(lora, loraConfigSchema.parse({ r: RANK, lora_alpha: ALPHA }), model.sites, model.weights, { targetModules: ['q_proj', 'v_proj'], headNames: model.headNames, seed: 0 });
      const ids = new BigInt64Array(B * T), labels = new BigInt64Array(B * T);
      const rng = new Rng(1);
      for (let i = 0; i < B * T; i++) {
        ids[i] = BigInt(3 + rng.int(dims.vocab - 3));
        labels[i] = i % T < T / 4 ? BigInt(IGNORE_INDEX) : ids[i];
      }
      const batch: CausalLmBatch = { B, T, ids, mask: new Float32Array(B * T).fill(1), labels };
      const { graph } = buildCausalLmGraph(model, adapters, 'train');
      const opt = new AdamW(adapters.params, { lr: LR });
      return timedStep(graph, threads, async (c) => {
        const out = await c.run(causalLmFeeds(batch, adapters));
        opt.step(new Map([...adapters.params.keys()].map((k) => [k, out[`grad.${k}`].data as Float32Array])));
        return Number(out.loss.data[0]);
      });
    },
  };
}

const buildModel = (kind: ModelKind, smoke: boolean) => (kind === 'llama' ? llamaModel(smoke) : bertModel(smoke));

/** Each base alone in its own process: its peak RSS (model built, quantized, compiled, steps). */
async function child(a: Args, kind: ModelKind, dtype: BaseDtype) {
  const m = buildModel(kind, a.smoke);
  quantizeBase(m.weights, m.sites, dtype);
  const s = await m.makeStep(a.threads);
  for (let i = 0; i < a.warmup + a.steps; i++) await s.step();
  await s.release();
  console.log(JSON.stringify({ dtype, peak_rss_mib: round(peakRss() / 2 ** 20, 1) }));
}

async function benchModel(a: Args, kind: ModelKind) {
  const loadavg = os.loadavg()[0];
  // One model per base (seeded: the same weights), quantized before its step is built (quantization replaces the arrays).
  const steps = new Map<BaseDtype, Step>(), quant = new Map<BaseDtype, BaseQuantization>(), held = new Map<BaseDtype, number>();
  let shape: BenchModel['shape'] | undefined, allBytes = 0, int4Transposed = 0;
  for (const d of a.dtypes) {
    const m = buildModel(kind, a.smoke);
    shape = m.shape;
    const q = d === 'fp32' ? undefined : quantizeBase(m.weights, m.sites, d);
    const s = await m.makeStep(a.threads);
    const want = d === 'fp32' ? 0 : m.sites.filter((s) => s.kind !== 'embedding').length;
    if (s.quantizedProducts !== want) throw new Error(`bench: the ${d} graph has ${s.quantizedProducts} quantized products (want ${want})`);
    steps.set(d, s);
    // All base weights as float32 (from the shapes) vs held now: codes + scales, plus the float32 arrays still kept (embeddings; a tied head's table); stand-ins hold nothing.
    let all = 0, h = q?.storedBytes ?? 0;
    for (const w of m.weights.values()) {
      all += 4 * w.shape.reduce((x, y) => x * y, 1);
      h += 4 * w.data.length;
    }
    allBytes = all;
    held.set(d, h);
    if (q) quant.set(d, q);
    // int4 training also holds the codes packed along N for the input gradient (as many bytes again).
    if (d === 'int4') for (const key of q!.quantized) { const f = quantizedFormOf(m.weights.get(key)!.data); if (f?.dtype === 'int4') int4Transposed += storedBytes({ ...f, q: f.transposed() }); }
  }
  const times = new Map(a.dtypes.map((d) => [d, [] as number[]]));
  for (let i = 0; i < a.warmup + a.steps; i++) {
    for (const d of a.dtypes) {
      const t = await steps.get(d)!.step();
      if (i >= a.warmup) times.get(d)!.push(t);
    }
  }
  for (const s of steps.values()) await s.release();
  const rss: Record<string, number> = {};
  for (const d of a.dtypes) {
    const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--model', kind, '--child', d, '--threads', String(a.threads), '--steps', String(a.steps), '--warmup', String(a.warmup), ...(a.smoke ? ['--smoke'] : [])], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`bench child ${kind} ${d} failed: ${r.stderr}`);
    rss[d] = JSON.parse(r.stdout.trim().split('\n').pop()!).peak_rss_mib;
  }
  const fp32Ms = median(times.get('fp32')!), fp32Losses = steps.get('fp32')!.losses;
  const result: Record<string, unknown> = {
    bench: 'quant_step', date: new Date().toISOString(), model: kind, config: a.smoke ? 'smoke' : 'full', ...shape, rank: RANK, targets: kind === 'llama' ? 'q_proj,v_proj' : 'query,value', threads: a.threads, steps: a.steps, loadavg: round(loadavg, 1),
    fp32_ms: round(fp32Ms, 1), peak_rss_mib_fp32: rss.fp32, loss_fp32: [round(fp32Losses[0], 4), round(fp32Losses.at(-1)!, 4)],
  };
  for (const d of a.dtypes.filter((d) => d !== 'fp32')) {
    const ms = median(times.get(d)!), q = quant.get(d)!, losses = steps.get(d)!.losses;
    result.linear_weight_mib_fp32 = round(q.fp32Bytes / 2 ** 20, 1);
    Object.assign(result, {
      [`${d}_ms`]: round(ms, 1), [`speedup_fp32_over_${d}`]: round(fp32Ms / ms),
      [`linear_weight_mib_${d}`]: round(q.storedBytes / 2 ** 20, 1), [`linear_weight_ratio_${d}`]: round(q.storedBytes / q.fp32Bytes),
      [`base_weight_ratio_with_embeddings_${d}`]: round(held.get(d)! / allBytes),
      [`peak_rss_mib_${d}`]: rss[d], [`peak_rss_ratio_${d}`]: round(rss[d] / rss.fp32),
      [`loss_${d}`]: [round(losses[0], 4), round(losses.at(-1)!, 4)],
    });
    if (d === 'int4') result.linear_weight_ratio_int4_training = round((q.storedBytes + int4Transposed) / q.fp32Bytes);
    // int8's figures also under their earlier names (bench/results/quant_step.jsonl, test/bench_smoke.test.ts).
    if (d === 'int8') Object.assign(result, { linear_weight_ratio: round(q.storedBytes / q.fp32Bytes), base_weight_ratio_with_embeddings: round(held.get(d)! / allBytes), peak_rss_ratio: round(rss[d] / rss.fp32) });
  }
  console.log(JSON.stringify(result, null, 2));
  if (!a.smoke) {
    mkdirSync(path.join(here, 'results'), { recursive: true });
    appendFileSync(path.join(here, 'results', 'quant_step.jsonl'), JSON.stringify(result) + '\n');
  }
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  if (a.child) return child(a, a.model ?? 'bert', a.child);
  for (const kind of a.model ? [a.model] : a.smoke ? (['bert', 'llama'] as const) : (['bert'] as const)) await benchModel(a, kind);
}

await main();

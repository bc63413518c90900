// Training-step benchmark: lorakit vs the PyTorch peer, in one command.
//
//   npm run bench -- --config small|base|all --threads 2 --steps 10 --warmup 2
//   npm run bench -- --smoke      (a 1-layer width-32 model, 2 steps: seconds; the test suite runs it)
//
// One step = one onnxruntime run that returns the loss and every trainable
// gradient (LoRA A/B on query and value, the classifier head), then AdamW in
// TypeScript. The peer (bench/peer_torch.py, a copy of
// ../shared/bench/peer_torch.py that also reports memory) runs the same model, shapes and update in PyTorch with the same thread
// count. Both medians, and torch_ms / lorakit_ms (> 1: lorakit is faster), are
// printed and appended as JSON lines to bench/results/.
//
// Also printed, from the same run: the roofline (the step's MatMul/Gemm FLOPs
// counted from the graph, the same products timed alone in onnxruntime, and
// the step's fraction of that GEMM limit: bench/roofline.ts) and memory (peak
// RSS of each side; lorakit's planned activations kept for backward, from the
// graph's shapes, beside the bytes PyTorch's autograd saves).
//
// Extra flags: --profile (onnxruntime per-node profile, summarized by op type),
// --no-peer (lorakit only), --peer-only, --dump <path> (write the ONNX model),
// --spin-us N (onnxruntime intra-op spin time, see SessionOptions.spinMicros),
// --seq N / --batch N (override the config's), --grad-checkpoint (recompute
// each sublayer's forward in the backward graph: src/autodiff/checkpoint.ts),
// --no-prepack (onnxruntime keeps no prepacked copy of the frozen weights:
// SessionOptions.prepackWeights).

import { spawnSync } from 'node:child_process';
import { openblasCore, peerEnv } from './peer_env.ts';
import { existsSync, mkdirSync, appendFileSync, readFileSync, readdirSync, unlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { loraConfigSchema } from '../src/adapters/lora/config.ts';
import { CompiledGraph, HostTensor } from '../src/runtime/session.ts';
import { AdamW } from '../src/optim/adamw.ts';
import { buildClassifierGraph, initHead } from '../src/train/classifier.ts';
import { Rng } from '../src/util/rng.ts';
import { BENCH_CONFIGS, BertLike, bertLikeConfig } from './bert_like.ts';
import { savedActivations } from '../src/graph/cost.ts';
import { GemmLimitProbe, rooflineLines, type GemmLimit } from './roofline.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');
const PEER = path.join(here, 'peer_torch.py');
const PYTHON = '/usr/bin/python3';
const RANK = 8, ALPHA = 16, CLASSES = 2, VOCAB = 30522, LR = 1e-4;

interface Args {
  configs: ('tiny' | 'small' | 'base')[];
  threads: number;
  steps: number;
  warmup: number;
  profile: boolean;
  peer: boolean;
  lorakit: boolean;
  dump?: string;
  /** onnxruntime intra-op spin time (µs); undefined = lorakit's default. */
  spinUs?: number;
  seq?: number;
  batch?: number;
  gradCheckpoint: boolean;
  prepack: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { configs: ['small', 'base'], threads: 2, steps: 10, warmup: 2, profile: false, peer: true, lorakit: true, gradCheckpoint: false, prepack: true };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${k} needs a value`);
      return v;
    };
    const int = () => {
      const v = Number(val());
      if (!Number.isInteger(v) || v < 0) throw new Error(`${k} needs a non-negative integer`);
      return v;
    };
    if (k === '--config') {
      const c = val();
      if (c === 'all') a.configs = ['small', 'base'];
      else if (c === 'small' || c === 'base') a.configs = [c];
      else throw new Error(`--config must be small, base or all (got '${c}')`);
    } else if (k === '--threads') a.threads = Math.max(1, int());
    else if (k === '--steps') a.steps = Math.max(1, int());
    else if (k === '--warmup') a.warmup = int();
    else if (k === '--smoke') Object.assign(a, { configs: ['tiny'], steps: 2, warmup: 1 });
    else if (k === '--profile') a.profile = true;
    else if (k === '--no-peer') a.peer = false;
    else if (k === '--peer-only') a.lorakit = false;
    else if (k === '--dump') a.dump = val();
    else if (k === '--spin-us') a.spinUs = int();
    else if (k === '--seq') a.seq = Math.max(1, int());
    else if (k === '--batch') a.batch = Math.max(1, int());
    else if (k === '--grad-checkpoint') a.gradCheckpoint = true;
    else if (k === '--no-prepack') a.prepack = false;
    else if (k === '--help' || k === '-h') {
      console.log('usage: npm run bench -- [--config small|base|all] [--smoke] [--threads 2] [--steps 10] [--warmup 2] [--profile] [--no-peer] [--peer-only] [--dump model.onnx] [--spin-us N] [--seq N] [--batch N] [--grad-checkpoint] [--no-prepack]');
      process.exit(0);
    } else throw new Error(`unknown argument '${k}' (try --help)`);
  }
  return a;
}

/** The config's shape with --seq / --batch applied. */
const shapeOf = (name: 'tiny' | 'small' | 'base', a: Args) => ({ ...BENCH_CONFIGS[name], ...(a.seq ? { seq: a.seq } : {}), ...(a.batch ? { batch: a.batch } : {}) });

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)];

interface LorakitResult {
  ms_per_step: number;
  compile_ms: number;
  build_ms: number;
  trainable_params: number;
  loss_first: number;
  loss_last: number;
  profile?: ProfileRow[];
  /** process.resourceUsage().maxRSS after the timed steps (before the roofline runs), bytes. */
  peak_rss_bytes: number;
  /** Resident memory (now, not peak) with the graph built (weights in JS) and after compiling (onnxruntime's copy too). */
  rss_built_bytes: number;
  rss_compiled_bytes: number;
  activation_bytes: number;
  activation_tensors: number;
  gemm: GemmLimit;
}

interface ProfileRow {
  op: string;
  ms: number;
  pct: number;
  calls: number;
}

async function benchLorakit(name: 'tiny' | 'small' | 'base', a: Args): Promise<LorakitResult> {
  const shape = shapeOf(name, a);
  const t0 = performance.now();
  const model = BertLike.random(bertLikeConfig({ ...shape, maxPositions: shape.seq, vocab: VOCAB }), 0);
  const config = loraConfigSchema.parse({ r: RANK, lora_alpha: ALPHA });
  const adapters = new AdapterSet(lora, config, model.sites, model.weights, { targetModules: ['query', 'value'], seed: 0 });
  const head = initHead(shape.hidden, CLASSES, 0);
  const { graph, trainable } = buildClassifierGraph(model, adapters, head, CLASSES, 'train', { gradCheckpoint: a.gradCheckpoint });
  const t1 = performance.now();
  const rssBuilt = process.memoryUsage().rss;
  const profilePrefix = a.profile ? path.join(os.tmpdir(), `lorakit-profile-${name}-${process.pid}`) : undefined;
  const compiled = await CompiledGraph.compile(graph, { threads: a.threads, dumpPath: a.dump, profilePrefix, spinMicros: a.spinUs, prepackWeights: a.prepack });
  const t2 = performance.now();
  const rssCompiled = process.memoryUsage().rss;

  // Live parameter values: the adapter's and the head's Float32Arrays, updated in place by AdamW.
  const params = new Map<string, Float32Array>();
  for (const [k, v] of adapters.params) params.set(k, v);
  for (const [k, v] of head) params.set(k, v);
  for (const k of trainable) if (!params.has(k)) throw new Error(`bench: no live value for trainable '${k}'`);
  const opt = new AdamW(params, { lr: LR });

  const rng = new Rng(1);
  const { batch: B, seq: T } = shape;
  const ids = new BigInt64Array(B * T);
  for (let i = 0; i < ids.length; i++) ids[i] = BigInt(rng.int(VOCAB));
  const mask = new Float32Array(B * T).fill(1);
  const labels = new BigInt64Array(B);
  for (let i = 0; i < B; i++) labels[i] = BigInt(rng.int(CLASSES));
  const feeds: Record<string, HostTensor> = {
    input_ids: { data: ids, dims: [B, T] },
    attention_mask: { data: mask, dims: [B, T] },
    labels: { data: labels, dims: [B] },
  };
  for (const k of trainable) feeds[k] = { data: params.get(k)!, dims: graph.leaf(k)!.shape as number[] };
  const fetch = ['loss', ...trainable.map((k) => `grad.${k}`)];

  const losses: number[] = [];
  const step = async () => {
    const out = await compiled.run(feeds, fetch);
    const grads = new Map<string, Float32Array>();
    for (const k of trainable) grads.set(k, out[`grad.${k}`].data as Float32Array);
    opt.step(grads);
    losses.push((out.loss.data as Float32Array)[0]);
  };
  for (let i = 0; i < a.warmup; i++) await step();
  const dims = { B, T };
  const times: number[] = [];
  let peakRss = 0, probe: GemmLimitProbe | null = null;
  for (let i = 0; i < a.steps; i++) {
    const s = performance.now();
    await step();
    times.push(performance.now() - s);
    // Peak RSS once a step has run (its memory is all allocated), before the GEMM probe adds its own.
    if (!probe) {
      peakRss = process.resourceUsage().maxRSS * 1024;
      probe = await GemmLimitProbe.create(graph, dims, { threads: a.threads, spinMicros: a.spinUs });
    }
    await probe.measure(); // interleaved with the steps: load changes hit both alike
  }
  const gemm = await probe!.result();
  let profile: ProfileRow[] | undefined;
  if (profilePrefix) {
    compiled.endProfiling();
    profile = summarizeProfile(profilePrefix, a.steps);
  }
  await compiled.release();
  const saved = savedActivations(graph, dims);
  let nParams = 0;
  for (const v of params.values()) nParams += v.length;
  return {
    ms_per_step: round2(median(times)),
    build_ms: Math.round(t1 - t0),
    compile_ms: Math.round(t2 - t1),
    trainable_params: nParams,
    loss_first: losses[0],
    loss_last: losses[losses.length - 1],
    profile,
    peak_rss_bytes: peakRss,
    rss_built_bytes: rssBuilt,
    rss_compiled_bytes: rssCompiled,
    activation_bytes: saved.bytes,
    activation_tensors: saved.count,
    gemm,
  };
}

/** Sums onnxruntime's per-node kernel times by op type, per run, over the last `runs` runs (warmup excluded). */
function summarizeProfile(prefix: string, runs: number): ProfileRow[] {
  const dir = path.dirname(prefix), base = path.basename(prefix);
  const files = readdirSync(dir).filter((f) => f.startsWith(base) && f.endsWith('.json'));
  if (files.length === 0) throw new Error(`bench: no profile file ${prefix}*.json`);
  const byOp = new Map<string, { us: number; calls: number }>();
  for (const f of files) {
    const events = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as { cat: string; name: string; ts: number; dur: number; args?: { op_name?: string } }[];
    const starts = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').map((e) => e.ts).sort((p, q) => p - q);
    const from = starts.length >= runs ? starts[starts.length - runs] : -Infinity;
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.ts < from) continue;
      const key = e.args?.op_name ?? '?';
      const r = byOp.get(key) ?? { us: 0, calls: 0 };
      r.us += e.dur;
      r.calls++;
      byOp.set(key, r);
    }
    unlinkSync(path.join(dir, f));
  }
  const total = [...byOp.values()].reduce((s, r) => s + r.us, 0);
  return [...byOp.entries()]
    .map(([op, r]) => ({ op, ms: round2(r.us / 1000 / runs), pct: round2((100 * r.us) / total), calls: Math.round(r.calls / runs) }))
    .sort((p, q) => q.ms - p.ms);
}

const round2 = (x: number) => Math.round(x * 100) / 100;
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);

function memoryLine(lk: LorakitResult, peer: PeerResult | null): string {
  return `memory: lorakit peak RSS ${mib(lk.peak_rss_bytes)} MiB (resident ${mib(lk.rss_built_bytes)} MiB with the model built, ${mib(lk.rss_compiled_bytes)} MiB compiled), activations kept for backward (planned, from the graph) ${mib(lk.activation_bytes)} MiB in ${lk.activation_tensors} tensors` +
    (peer ? `; torch peak RSS ${mib(peer.peak_rss_bytes)} MiB, saved for backward by autograd ${mib(peer.saved_bytes)} MiB` : '');
}

interface PeerResult {
  ms_per_step: number;
  openblas_core: string;
  torch: string;
  trainable_params: number;
  peak_rss_bytes: number;
  saved_bytes: number;
}

function hasTorch(): string | null {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`;
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (r.status !== 0) return `${PYTHON} cannot import torch (${(r.stderr || '').trim().split('\n').pop()})`;
  if (!existsSync(PEER)) return `peer script ${PEER} not found`;
  return null;
}

function benchPeer(name: 'tiny' | 'small' | 'base', a: Args): PeerResult {
  const s = shapeOf(name, a);
  const args = [PEER, '--layers', s.layers, '--hidden', s.hidden, '--heads', s.heads, '--ffn', s.ffn, '--seq', s.seq, '--batch', s.batch,
    '--rank', RANK, '--alpha', ALPHA, '--vocab', VOCAB, '--classes', CLASSES, '--steps', a.steps, '--warmup', a.warmup, '--threads', a.threads].map(String);
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', env: peerEnv(a.threads), maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`peer_torch.py failed (exit ${r.status}):\n${r.stderr}`);
  const line = r.stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (!line) throw new Error(`peer_torch.py printed no JSON line:\n${r.stdout}`);
  const core = openblasCore(r.stderr);
  return { ...JSON.parse(line), openblas_core: core };
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const noPeer = a.peer ? hasTorch() : 'disabled by --no-peer';
  if (noPeer && a.peer) console.log(`PyTorch peer skipped: ${noPeer}; to add it: apt-get install python3-torch libopenblas0-pthread (Debian), then rerun`);
  const resultsDir = path.join(here, 'results');
  const smoke = a.configs.length === 1 && a.configs[0] === 'tiny'; // smoke runs leave no results behind
  if (!smoke) mkdirSync(resultsDir, { recursive: true });
  const resultsFile = path.join(resultsDir, `train_step-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`);
  const when = new Date().toISOString();
  const rows: string[] = [];
  for (const name of a.configs) {
    const s = shapeOf(name, a);
    const variant = [a.gradCheckpoint ? 'gradient checkpointing' : '', a.prepack ? '' : 'no prepacked weights'].filter(Boolean).join(', ');
    console.log(`\n== ${name}: ${s.layers} layers, hidden ${s.hidden}, heads ${s.heads}, ffn ${s.ffn}, seq ${s.seq}, batch ${s.batch}, LoRA r=${RANK} alpha=${ALPHA} on query/value, ${a.threads} threads, ${a.warmup} warmup + ${a.steps} steps${variant ? `; lorakit with ${variant}` : ''}`);
    const loadBefore = os.loadavg()[0];
    const lk = a.lorakit ? await benchLorakit(name, a) : null;
    const loadMid = os.loadavg()[0];
    if (lk) {
      console.log(`lorakit: ${lk.ms_per_step} ms/step (median; build ${lk.build_ms} ms, compile ${lk.compile_ms} ms, ${lk.trainable_params} trainable, loss ${lk.loss_first.toFixed(4)} → ${lk.loss_last.toFixed(4)})`);
      if (lk.profile) {
        console.log('onnxruntime kernel time per step by op type:');
        for (const r of lk.profile.slice(0, 20)) console.log(`  ${r.op.padEnd(28)} ${r.ms.toFixed(2).padStart(9)} ms ${r.pct.toFixed(1).padStart(5)}%  ${r.calls} nodes`);
      }
    }
    const peer = noPeer ? null : benchPeer(name, a);
    const loadAfter = os.loadavg()[0];
    console.log(`1-min load average: ${loadBefore.toFixed(2)} before, ${loadMid.toFixed(2)} between, ${loadAfter.toFixed(2)} after (other processes make both sides slower; compare runs with similar load)`);
    if (peer) console.log(`torch ${peer.torch} (OpenBLAS kernel ${peer.openblas_core}): ${peer.ms_per_step} ms/step (median, ${peer.trainable_params} trainable)`);
    const ratio = lk && peer ? round2(peer.ms_per_step / lk.ms_per_step) : null;
    if (ratio !== null) console.log(`ratio torch_ms / lorakit_ms = ${ratio.toFixed(2)} (${ratio >= 1 ? 'lorakit faster' : 'torch faster'})`);
    if (lk) {
      for (const l of rooflineLines(lk.gemm, lk.ms_per_step, peer?.ms_per_step ?? null, a.threads)) console.log(l);
      console.log(memoryLine(lk, peer));
    }
    const rec = {
      bench: 'train_step', config: name, when, threads: a.threads, grad_checkpoint: a.gradCheckpoint, prepack: a.prepack, steps: a.steps, warmup: a.warmup, ...s, rank: RANK, alpha: ALPHA, vocab: VOCAB,
      lorakit_ms: lk?.ms_per_step ?? null, torch_ms: peer?.ms_per_step ?? null, ratio,
      lorakit_compile_ms: lk?.compile_ms ?? null, torch_version: peer?.torch ?? null, openblas_core: peer?.openblas_core ?? null,
      trainable_params: lk?.trainable_params ?? peer?.trainable_params ?? null,
      loadavg: [loadBefore, loadMid, loadAfter].map(round2), cpus: os.cpus().length, node: process.version,
      profile: lk?.profile?.slice(0, 15),
      step_gflop: lk ? round2(lk.gemm.flops / 1e9) : null, gemm_limit_ms: lk ? round2(lk.gemm.ms) : null, gemm_gflops: lk ? round2(lk.gemm.gflops) : null,
      gemm_fraction: lk ? round2(lk.gemm.ms / lk.ms_per_step) : null, torch_gemm_fraction: lk && peer ? round2(lk.gemm.ms / peer.ms_per_step) : null,
      lorakit_peak_rss_bytes: lk?.peak_rss_bytes ?? null, lorakit_rss_built_bytes: lk?.rss_built_bytes ?? null, lorakit_rss_compiled_bytes: lk?.rss_compiled_bytes ?? null, lorakit_activation_bytes: lk?.activation_bytes ?? null,
      torch_peak_rss_bytes: peer?.peak_rss_bytes ?? null, torch_saved_bytes: peer?.saved_bytes ?? null,
    };
    if (!smoke) appendFileSync(resultsFile, JSON.stringify(rec) + '\n');
    const frac = lk ? `${(100 * lk.gemm.ms / lk.ms_per_step).toFixed(1)}%` : '—';
    rows.push(`| ${name} | ${lk?.ms_per_step ?? '—'} | ${peer?.ms_per_step ?? '—'} | ${ratio ?? '—'} | ${frac} | ${lk ? mib(lk.peak_rss_bytes) : '—'} | ${peer ? mib(peer.peak_rss_bytes) : '—'} |`);
  }
  console.log(`\n| config | lorakit ms/step | torch ms/step | torch/lorakit | lorakit fraction of GEMM limit | lorakit peak RSS MiB | torch peak RSS MiB |\n|---|---|---|---|---|---|---|\n${rows.join('\n')}`);
  if (!smoke) console.log(`\nresults: ${path.relative(repoRoot, resultsFile)}`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});

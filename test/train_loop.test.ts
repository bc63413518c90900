// The one training loop (src/train/loop.ts) on every task kind: an exact
// resume (a run stopped after k steps and resumed from its checkpoint ends
// with the same weights, loss history and method state as the uninterrupted
// run), NaN/inf stops that keep a loadable checkpoint, early stopping on the
// task's validation metric, and the frozen-weight gradients that data-
// dependent inits get from the task's own loss (checked against the chain
// rule through a LoRA: ∂L/∂B = s·G·Aᵀ).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdapterSet } from '../src/adapters/inject.ts';
import { getMethod } from '../src/adapters/registry.ts';
import { smoraBias } from '../src/adapters/smora/index.ts';
import { loadModel } from '../src/models/hf_registry.ts';
import type { DecoderModel } from '../src/models/decoder.ts';
import type { Seq2SeqModel } from '../src/models/seq2seq.ts';
import type { EncoderModel } from '../src/models/types.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import type { HfTokenizer } from '../src/io/hf.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { UseTokenizer } from '../src/tokenize/sentencepiece.ts';
import { loadLatestCheckpoint } from '../src/train/checkpoint.ts';
import { NonFiniteLossError, Trainer, type FitOptions } from '../src/train/loop.ts';
import type { TrainTask } from '../src/train/task.ts';
import { buildCausalLmGraph, causalLmFeeds, CausalLmTask, makeCausalLmBatch } from '../src/train/tasks/causal_lm.ts';
import { ClassificationTask } from '../src/train/tasks/classification.ts';
import { EmbedTask } from '../src/train/tasks/embed.ts';
import { ndcgOf, reciprocalRank, RerankTask } from '../src/train/tasks/rerank.ts';
import { Seq2SeqTask } from '../src/train/tasks/seq2seq.ts';
import { globalGradNorm } from '../src/optim/clip.ts';
import { assertLoraChainRule, maxAbsDiff } from './helpers/arrays.ts';

const FIX = new URL('./fixtures/hf/', import.meta.url).pathname;
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-loop-'));

let use: EncoderModel, useTok: UseTokenizer, llama: DecoderModel, llamaTok: HfTokenizer, t5: Seq2SeqModel, t5Tok: HfTokenizer;

before(async () => {
  use = await loadUseEncoder();
  useTok = UseTokenizer.fromVocabFile();
  const l = await loadModel(path.join(FIX, 'llama-tiny'));
  llama = l.model as DecoderModel;
  llamaTok = l.tokenizer!;
  const t = await loadModel(path.join(FIX, 't5-tiny'));
  t5 = t.model as Seq2SeqModel;
  t5Tok = t.tokenizer!;
});

const WORDS = ['red apples', 'green pears', 'blue sky', 'dark night', 'warm sun', 'cold rain', 'tall trees', 'small stones'];

/** A task on a small model with data, a method and that method's small config. */
interface Case {
  task: () => TrainTask<any, any>;
  train: () => unknown[];
  validation: () => unknown[];
  model: () => { sites: any[]; weights: any; headNames?: string[] };
  targets: string[] | 'all-linear';
}

const CASES: Record<string, Case> = {
  classification: {
    task: () => new ClassificationTask(use, { numLabels: 2, seed: 3, buckets: [16] }),
    train: () => WORDS.map((w, i) => ({ ids: useTok.encode(w), label: i % 2 })),
    validation: () => WORDS.slice(0, 4).map((w, i) => ({ ids: useTok.encode(w), label: i % 2 })),
    model: () => use,
    targets: ['qkv', 'conv1'],
  },
  'causal-lm': {
    task: () => new CausalLmTask(llama, { padId: 0 }),
    train: () => WORDS.map((w) => ({ ids: llamaTok.encode(`the ${w} are here`), promptLength: 2 })),
    validation: () => WORDS.slice(0, 3).map((w) => ({ ids: llamaTok.encode(`the ${w} are here`), promptLength: 2 })),
    model: () => llama,
    targets: 'all-linear',
  },
  seq2seq: {
    task: () => new Seq2SeqTask(t5),
    train: () => WORDS.map((w) => ({ src: t5Tok.encode(`describe ${w}`), tgt: t5Tok.encode(w) })),
    validation: () => WORDS.slice(0, 3).map((w) => ({ src: t5Tok.encode(`describe ${w}`), tgt: t5Tok.encode(w) })),
    model: () => t5,
    targets: 'all-linear',
  },
  rerank: {
    task: () => new RerankTask(use, { seed: 3 }),
    train: () => WORDS.slice(0, 6).map((q, i) => ({ pairs: WORDS.slice(0, 3 + (i % 2)).map((d) => useTok.encode(`${q} ${d}`)), labels: WORDS.slice(0, 3 + (i % 2)).map((_, j) => (j === i % 3 ? 1 : 0)) })),
    validation: () => WORDS.slice(0, 2).map((q, i) => ({ pairs: WORDS.slice(0, 3).map((d) => useTok.encode(`${q} ${d}`)), labels: [0, 1, 2].map((j) => (j === i ? 1 : 0)) })),
    model: () => use,
    targets: ['qkv', 'conv1'],
  },
  embed: {
    task: () => new EmbedTask(use),
    train: () => WORDS.map((w) => ({ anchor: useTok.encode(w), positive: useTok.encode(`${w} indeed`) })),
    validation: () => WORDS.slice(0, 4).map((w) => ({ anchor: useTok.encode(w), positive: useTok.encode(`${w} indeed`) })),
    model: () => use,
    targets: ['qkv', 'conv1'],
  },
};

function adapterFor(c: Case, method = 'lora', seed = 5): AdapterSet {
  const m = getMethod(method);
  const cfg = m.schema.parse(method === 'lora' ? { r: 4, lora_alpha: 8, lora_dropout: 0.1 } : method === 'smora' ? { num_ranks: 4, top_k: 2 } : {});
  const model = c.model();
  return new AdapterSet(m, cfg, model.sites, model.weights, { targetModules: c.targets, headNames: model.headNames, seed });
}

const OPTS: FitOptions = { epochs: 2, lr: 5e-3, batchSize: 3, seed: 11, checkpointEvery: 2, maxGradNorm: 1, threads: 1 };

/** Final weights, method state and loss history of a run, for exact comparison. */
async function runOnce(c: Case, method: string, out: string, extra: Partial<FitOptions> = {}) {
  const set = adapterFor(c, method);
  const task = c.task();
  const t = new Trainer(task, set, { ...OPTS, outDir: out, ...extra });
  const r = await t.fit({ train: c.train(), validation: c.validation() });
  await t.release();
  return { r, params: new Map([...t.params()].map(([k, v]) => [k, Float32Array.from(v)])), set };
}

for (const [kind, c] of Object.entries(CASES)) {
  const method = kind === 'causal-lm' ? 'smora' : 'lora'; // SMoRA: its β (method state) must resume too
  test(`[${kind}] a run stopped after 3 steps and resumed ends exactly like the uninterrupted run (${method}${method === 'lora' ? ', dropout 0.1' : ''})`, async () => {
    const full = await runOnce(c, method, tmp());
    assert.ok(full.r.steps >= 4, `${kind}: ${full.r.steps} steps`);
    const dir = tmp();
    const part = await runOnce(c, method, dir, { stopAfterSteps: 3 });
    assert.equal(part.r.stopped, true);
    const resumed = await runOnce(c, method, dir, { resume: true });
    assert.equal(resumed.r.steps, full.r.steps);
    for (const [k, v] of full.params) assert.equal(maxAbsDiff(resumed.params.get(k)!, v), 0, `${kind}: ${k} differs after resume`);
    assert.deepEqual(resumed.r.epochLosses, full.r.epochLosses);
    assert.deepEqual(resumed.r.history.map((h) => h.metrics), full.r.history.map((h) => h.metrics));
    if (method === 'smora') for (const s of full.set.targets) assert.deepEqual(smoraBias(resumed.set, s.name, 4), smoraBias(full.set, s.name, 4), `β of ${s.name}`);
    // The training changed something, and the fresh run's first loss is the uninterrupted one's.
    assert.ok([...full.params].some(([k, v]) => maxAbsDiff(v, adapterFor(c, method).params.get(k) ?? c.task().params.get(k)!.data) > 0));
    const log = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(log.some((e) => e.event === 'resume'), 'metrics.jsonl records the resume');
  });
}

test('[classification] beforeStep gets each step\'s batch and gradients before anything moves; Trainer.gradients(batch) gives the same without stepping', async () => {
  const c = CASES.classification;
  const copy = (m: ReadonlyMap<string, Float32Array>) => new Map([...m].map(([k, v]) => [k, Float32Array.from(v)]));
  const seen: { step: number; batch: unknown; grads: Map<string, Float32Array>; params: Map<string, Float32Array> }[] = [];
  const opts = { ...OPTS, epochs: 1, maxGradNorm: undefined, checkpointEvery: undefined };
  const t = new Trainer(c.task(), adapterFor(c), { ...opts, beforeStep: ({ step, batch, grads, params }) => void seen.push({ step, batch, grads: copy(grads), params: copy(params) }) });
  const fresh = new Trainer(c.task(), adapterFor(c), opts); // the same seeds: the run's starting point
  try {
    const r = await t.fit({ train: c.train() });
    assert.deepEqual(seen.map((x) => x.step), [...Array(r.steps).keys()]);
    const start = copy(fresh.params());
    for (const [k, v] of seen[0].params) assert.equal(maxAbsDiff(v, start.get(k)!), 0, `step 0 sees the starting '${k}'`);
    assert.ok([...seen[1].params].some(([k, v]) => maxAbsDiff(v, seen[0].params.get(k)!) > 0), 'the step runs after the hook');
    const { loss, grads } = await fresh.gradients(seen[0].batch as never);
    assert.ok(Number.isFinite(loss));
    for (const [k, v] of seen[0].grads) assert.ok(maxAbsDiff(grads.get(k)!, v) <= 1e-6 * Math.max(1, ...v.map(Math.abs)), `gradient of '${k}'`);
    for (const [k, v] of fresh.params()) assert.equal(maxAbsDiff(v, start.get(k)!), 0, `gradients() left '${k}' as it was`);
  } finally {
    await t.release();
    await fresh.release();
  }
});

test('[causal-lm] a diverging run stops with a message, and the checkpoint it leaves loads with finite weights', async () => {
  const c = CASES['causal-lm'];
  const dir = tmp();
  await assert.rejects(runOnce(c, 'lora', dir, { lr: 1e6, maxGradNorm: undefined, warmupRatio: 0, epochs: 6 }), (e: Error) => {
    assert.ok(e instanceof NonFiniteLossError, e.message);
    assert.match(e.message, /Training diverged: the (loss|gradient norm) is (NaN|-?Infinity) at step \d+\. Lower the learning rate/);
    assert.match(e.message, /saved in .*checkpoint-\d+: change a setting and continue with --resume/);
    return true;
  });
  const ck = await loadLatestCheckpoint(path.join(dir, 'checkpoints'));
  assert.ok(ck, 'a checkpoint was left');
  for (const [k, v] of ck!.params) assert.ok(v.every(Number.isFinite), `${k} is finite in the checkpoint`);
  const log = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(log[log.length - 1].event, 'diverged');
  // Resuming replays the same steps: it diverges at the same step again (the run is reproducible, nothing was lost).
  await assert.rejects(runOnce(c, 'lora', dir, { resume: true, lr: 1e6, maxGradNorm: undefined, warmupRatio: 0, epochs: 6 }), (e: Error) => e instanceof NonFiniteLossError && e.step === ck!.step);
});

test('[seq2seq] validation loss drives early stopping and the best weights are kept', async () => {
  const c = CASES.seq2seq;
  // A learning rate that overshoots after the first epochs: validation loss stops improving, patience 1 stops the run.
  const r = await runOnce(c, 'lora', tmp(), { epochs: 8, lr: 0.3, maxGradNorm: undefined, warmupRatio: 0, schedule: 'constant', patience: 1 });
  const losses = r.r.history.map((h) => h.metrics.loss);
  assert.ok(r.r.history.length < 8, `stopped early: ${losses.map((l) => l.toFixed(3)).join(' ')}`);
  assert.equal(r.r.best, Math.min(...losses));
  const t = new Trainer(c.task(), r.set, OPTS);
  const final = await t.evaluate(c.validation());
  await t.release();
  assert.ok(Math.abs(final.loss - r.r.best!) < 1e-6, `the kept weights score the best validation loss (${final.loss} vs ${r.r.best})`);
});

test('[causal-lm] frozen-weight gradients from the task loss satisfy the chain rule through a LoRA: ∂L/∂B = s·G·Aᵀ', async () => {
  const lora = getMethod('lora');
  const site = llama.sites.find((s) => s.name === 'model.layers.0.self_attn.q_proj')!;
  const set = new AdapterSet(lora, lora.schema.parse({ r: 2, lora_alpha: 4, init_lora_weights: false }), llama.sites, llama.weights, { targetModules: [site.name], seed: 5 });
  const data = CASES['causal-lm'].train().slice(0, 4) as { ids: number[]; promptLength: number }[];
  // All four examples in one batch (the loss is a mean over their tokens: row order does not matter).
  const t = new Trainer(new CausalLmTask(llama, { padId: 0 }), null, { ...OPTS, batchSize: 4 });
  const G = (await t.weightGradients(data, [site], { batches: 1, batchSize: 4 })).get(site.name)!;
  // ∂L/∂B at B = 0 (the base model's loss): G·Aᵀ scaled by s = 2.
  const keyA = `base_model.model.${site.name}.lora_A.weight`, keyB = `base_model.model.${site.name}.lora_B.weight`;
  set.params.get(keyB)!.fill(0);
  const cg = await CompiledGraph.compile(buildCausalLmGraph(llama, set, 'train').graph, { threads: 1 });
  const out = await cg.run(causalLmFeeds(makeCausalLmBatch(data), set));
  await cg.release();
  assertLoraChainRule(G, set.params.get(keyA)!, out[`grad.${keyB}`].data as Float32Array, { out: site.outFeatures, in: site.inFeatures, r: 2, s: 2 });
});

test('[lorasb] LoRA-SB initializes from the causal-LM loss (its beforeFit on a decoder) and then trains', async () => {
  const c = CASES['causal-lm'];
  const m = getMethod('lorasb');
  const set = new AdapterSet(m, m.schema.parse({ r: 2, init_batches: 2, init_batch_size: 2 }), llama.sites, llama.weights, { targetModules: ['q_proj', 'v_proj'], seed: 1 });
  const before = new Map([...set.params].map(([k, v]) => [k, Float32Array.from(v)]));
  const t = new Trainer(c.task(), set, { ...OPTS, epochs: 1 });
  await t.fit({ train: c.train() });
  await t.release();
  for (const [k, v] of set.params) if (k.endsWith('lorasb_R')) assert.ok(maxAbsDiff(v, before.get(k)!) > 0, `${k} set by the init and trained`);
});

test('rerank metrics: MRR and nDCG against hand-computed values (ties count against the relevant candidate)', () => {
  assert.equal(reciprocalRank([{ score: 3, rel: 0 }, { score: 2, rel: 1 }, { score: 1, rel: 0 }]), 1 / 2);
  assert.equal(reciprocalRank([{ score: 1, rel: 0 }, { score: 1, rel: 1 }]), 1 / 2, 'a tie ranks the relevant one second');
  assert.equal(reciprocalRank([{ score: 1, rel: 0 }]), 0);
  // Order: rel 0 (score 3), rel 2 (score 2), rel 1 (score 1). DCG = 3/log2(3) + 1/2; ideal = 3 + 1/log2(3).
  const got = ndcgOf([{ score: 3, rel: 0 }, { score: 2, rel: 2 }, { score: 1, rel: 1 }]);
  const want = (3 / Math.log2(3) + 1 / 2) / (3 + 1 / Math.log2(3));
  assert.ok(Math.abs(got - want) < 1e-12, `${got} vs ${want}`);
});

test('[embed] the in-batch contrastive loss equals its definition on the eval scores', async () => {
  const c = CASES.embed;
  const t = new Trainer(c.task(), adapterFor(c), OPTS);
  const res = await t.run(c.validation());
  await t.release();
  for (const { batch, out } of res) {
    const s = out.scores.data as Float32Array, B = batch.B;
    let want = 0;
    for (let i = 0; i < B; i++) {
      const row = Array.from(s.subarray(i * B, (i + 1) * B));
      const mx = Math.max(...row);
      want += -(row[i] - mx - Math.log(row.reduce((z, v) => z + Math.exp(v - mx), 0)));
    }
    want /= B;
    assert.ok(Math.abs(Number(out.loss.data[0]) - want) < 1e-4, `loss ${out.loss.data[0]} vs ${want}`);
    for (let i = 0; i < B; i++) assert.ok(Math.abs(s[i * B + i]) <= 20 + 1e-4, 'scores are scaled cosines (|s| ≤ 20)');
  }
});

test('[lamda] a second run on the same adapter set starts its column freezing afresh (per-run state is dropped at every run start)', async () => {
  const c = CASES.classification;
  const m = getMethod('lamda');
  const mk = () => new AdapterSet(m, m.schema.parse({ r: 4, init_weights: false, freeze_fraction: 0.5 }), use.sites, use.weights, { targetModules: ['qkv'], seed: 2 });
  const opts = { ...OPTS, epochs: 2, outDir: undefined };
  const reused = mk();
  const first = new Trainer(c.task(), reused, opts);
  await first.fit({ train: c.train() });
  await first.release();
  // The same starting point on a fresh set: its second run must match the reused set's.
  const fresh = mk();
  for (const [k, v] of reused.params) fresh.params.get(k)!.set(v);
  const taskA = c.task(), taskB = c.task();
  const [a, b] = [new Trainer(taskA, reused, opts), new Trainer(taskB, fresh, opts)];
  await a.fit({ train: c.train() });
  await b.fit({ train: c.train() });
  await a.release();
  await b.release();
  for (const [k, v] of fresh.params) assert.equal(maxAbsDiff(reused.params.get(k)!, v), 0, `${k}: the reused set's second run differs from a fresh set's`);
});

for (const kind of ['sgd', 'lorapro', 'allora'] as const) {
  test(`[classification] --optimizer ${kind}: its state is checkpointed, a stopped run resumes to the uninterrupted one's weights`, async () => {
    const c = CASES.classification;
    const lora = getMethod('lora');
    const mk = () => new AdapterSet(lora, lora.schema.parse({ r: 4, lora_alpha: 4 }), use.sites, use.weights, { targetModules: ['qkv', 'conv1'], seed: 5 });
    const run = async (dir: string, extra: Partial<FitOptions>) => {
      const set = mk();
      const t = new Trainer(c.task(), set, { ...OPTS, optimizer: { kind }, outDir: dir, ...extra });
      const r = await t.fit({ train: c.train(), validation: c.validation() });
      await t.release();
      return { r, params: t.params() };
    };
    const full = await run(tmp(), {});
    assert.ok(full.r.optimizerStateBytes > 0 || kind === 'sgd', `${kind} keeps state`);
    const dir = tmp();
    await run(dir, { stopAfterSteps: 3 });
    const ck = await loadLatestCheckpoint(path.join(dir, 'checkpoints'));
    assert.equal((ck!.optimizer as { kind: string }).kind, kind);
    const resumed = await run(dir, { resume: true });
    for (const [k, v] of full.params) assert.equal(maxAbsDiff(resumed.params.get(k)!, v), 0, `${kind}: ${k} differs after resume`);
    // Resuming with another rule is refused, naming both.
    await assert.rejects(run(dir, { resume: true, optimizer: { kind: 'adamw' } }), /saved optimizer state is '.*', this run uses 'adamw'|AdamW.loadStateDict: state kind/);
  });
}

test('[classification] --optimizer lorapro with --max-grad-norm: the loop hands over the unclipped gradients and the factor, which scales the step itself (the official ZeRO order)', async () => {
  const c = CASES.classification;
  const lora = getMethod('lora');
  // One step from B = 0: only B moves, by lr·(Adam direction of g̃ mapped back); Adam's normalization would undo a clip taken before it.
  const firstStep = async (maxGradNorm: number | undefined) => {
    const set = new AdapterSet(lora, lora.schema.parse({ r: 4, lora_alpha: 4 }), use.sites, use.weights, { targetModules: ['qkv'], seed: 5 });
    const start = new Map([...set.params].map(([k, v]) => [k, Float32Array.from(v)]));
    const seen: { clipScale: number; gradsClipped: boolean; norm: number }[] = [];
    const t = new Trainer(c.task(), set, {
      ...OPTS, epochs: 1, checkpointEvery: undefined, stopAfterSteps: 1, maxGradNorm, optimizer: { kind: 'lorapro' },
      beforeStep: ({ grads, clipScale, gradsClipped }) => void seen.push({ clipScale, gradsClipped, norm: globalGradNorm(grads.values()) }),
    });
    await t.fit({ train: c.train() });
    await t.release();
    const moved = new Map([...set.params].map(([k, v]) => [k, v.map((x, i) => x - start.get(k)![i])]));
    return { seen: seen[0], moved };
  };
  const free = await firstStep(undefined);
  const tight = await firstStep(1e-3);
  assert.equal(free.seen.clipScale, 1);
  assert.equal(tight.seen.gradsClipped, false, 'LoRA-Pro gets the raw gradients');
  assert.ok(Math.abs(tight.seen.norm - free.seen.norm) <= 1e-6 * free.seen.norm, 'the same raw gradients in both runs');
  const factor = 1e-3 / (free.seen.norm + 1e-6);
  assert.ok(Math.abs(tight.seen.clipScale - factor) <= 1e-5 * factor, `clip factor ${tight.seen.clipScale} vs ${factor}`);
  let checked = 0;
  for (const [k, d] of free.moved) {
    if (!/lora_B/.test(k)) continue;
    const want = d.map((x) => x * tight.seen.clipScale), got = tight.moved.get(k)!;
    const scale = Math.max(...want.map(Math.abs));
    assert.ok(scale > 0, `${k} moved`);
    assert.ok(maxAbsDiff(got, want) <= 1e-3 * scale, `${k}: the clipped step is the factor times the unclipped one`);
    checked++;
  }
  assert.ok(checked > 0);
});

test('--optimizer lorapro / allora need a LoRA (and ALLoRA no α/r scale, no dropout); galore needs full weight matrices', async () => {
  const c = CASES.classification;
  const vera = adapterFor(c, 'vera');
  const lora = adapterFor(c, 'lora'); // lora_alpha 8 on r 4, dropout 0.1
  const fitWith = (set: AdapterSet, kind: 'lorapro' | 'allora' | 'galore') => new Trainer(c.task(), set, { ...OPTS, optimizer: { kind } }).fit({ train: c.train() });
  await assert.rejects(fitWith(vera, 'lorapro'), /--optimizer lorapro adjusts LoRA's A and B: it needs --method lora \(this run trains vera\)/);
  await assert.rejects(fitWith(lora, 'allora'), /ALLoRA trains LoRA without dropout and without the α\/r scale/);
  await assert.rejects(fitWith(lora, 'galore'), /--optimizer galore projects the gradients of full weight matrices: use it with --full/);
});

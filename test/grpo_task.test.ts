// GRPO as a task of the one loop (src/train/tasks/grpo.ts) on the tiny Llama
// fixture: seeded sampling (G completions per prompt, the same for the same
// step, others at another step), group advantages; the reference policy is
// the adapter disabled (KL exactly 0 while LoRA's B is still 0, > 0 after
// updates); a run stopped and resumed equals the uninterrupted one bit for
// bit (the sampling RNG derives from the checkpoint's step).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdapterSet } from '../src/adapters/inject.ts';
import { getMethod } from '../src/adapters/registry.ts';
import { loadModel } from '../src/models/load.ts';
import type { DecoderModel } from '../src/models/decoder.ts';
import type { HfTokenizer } from '../src/io/hf.ts';
import { Trainer, type StepInfo } from '../src/train/loop.ts';
import { GrpoTask, type GrpoPrompt } from '../src/train/tasks/grpo.ts';

const FIX = path.resolve(import.meta.dirname, 'fixtures/hf/llama-tiny');
let model: DecoderModel;
let tok: HfTokenizer;
let prompts: GrpoPrompt[];

before(async () => {
  const m = await loadModel(FIX, 'decoder');
  model = m.model;
  tok = m.tokenizer!;
  prompts = ['once upon a time', 'the cat sat', 'red apples fall', 'a dark night'].map((p) => ({ ids: tok.encode(p), record: { want: p.split(' ')[0] } }));
});

// Any reward that varies between completions: the share of completion characters that are vowels.
const vowels = (text: string) => (text.length ? [...text].filter((c) => 'aeiou'.includes(c)).length / text.length : 0);

function makeTask(beta = 0) {
  return new GrpoTask(model, { numGenerations: 4, maxNewTokens: 5, temperature: 1, beta, padId: 0, decode: (ids) => tok.decode(ids), reward: vowels, threads: 1 });
}
const lora = () => {
  const method = getMethod('lora');
  return new AdapterSet(method, method.schema.parse({ r: 4, lora_alpha: 8 }), model.sites, model.weights, { targetModules: 'all-linear', headNames: model.headNames, seed: 2 });
};

test('prepare: G seeded completions per prompt, the same at the same step, advantages normalized within each group', async () => {
  const task = makeTask();
  const set = lora();
  try {
    const [b1, b2, b3] = [0, 1, 2].map(() => task.batches(prompts, 2, null)[0]);
    await task.prepare(b1, { step: 3, seed: 9, adapters: set });
    await task.prepare(b2, { step: 3, seed: 9, adapters: set });
    await task.prepare(b3, { step: 4, seed: 9, adapters: set });
    const s = b1.sampled!;
    assert.equal(s.advantages.length, 8);
    assert.deepEqual(s.ids, b2.sampled!.ids);
    assert.notDeepEqual(s.ids, b3.sampled!.ids);
    for (let g = 0; g < 2; g++) {
      const a = Array.from(s.advantages.slice(4 * g, 4 * g + 4));
      assert.ok(Math.abs(a.reduce((x, y) => x + y, 0)) < 1e-5, `group ${g} advantages sum to 0: ${a}`);
    }
    // Completion tokens are targets; the prompt's are not.
    const T = s.T;
    for (let b = 0; b < 8; b++) {
      const p = prompts[Math.floor(b / 4)].ids.length;
      for (let t = 0; t < p - 1; t++) assert.equal(s.targets[b * T + t], -1n);
      assert.equal(s.targets[b * T + p - 1], s.ids[b * T + p]);
    }
  } finally {
    await task.release();
  }
});

async function train(o: { beta: number; outDir?: string; resume?: boolean; stopAfterSteps?: number }) {
  const task = makeTask(o.beta);
  const set = lora();
  const steps: StepInfo[] = [];
  const t = new Trainer(task, set, { epochs: 2, lr: 0.02, batchSize: 2, seed: 5, warmupRatio: 0, schedule: 'constant', threads: 1, outDir: o.outDir, resume: o.resume, stopAfterSteps: o.stopAfterSteps, checkpointEvery: 1, onStep: (s) => steps.push(s) });
  try {
    const r = await t.fit({ train: prompts });
    return { r, steps, params: new Map([...set.params].map(([k, v]) => [k, Float32Array.from(v)])) };
  } finally {
    await t.release();
  }
}

test('the reference is the adapter disabled: KL 0 at the first step (B = 0), positive once the adapter moved; rewards logged', async () => {
  const { steps } = await train({ beta: 0.1 });
  assert.equal(steps.length, 4);
  assert.ok(Math.abs(steps[0].task!.kl) < 1e-7, `first-step KL ${steps[0].task!.kl}`);
  assert.ok(steps[3].task!.kl > 1e-6, `last-step KL ${steps[3].task!.kl}`);
  for (const s of steps) assert.ok(Number.isFinite(s.loss) && s.task!.reward >= 0 && s.task!.reward <= 1);
});

test('stop after 3 steps and --resume: the same adapter as the uninterrupted run, bit for bit', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-grpo-'));
  const full = await train({ beta: 0.05 });
  const a = await train({ beta: 0.05, outDir: dir, stopAfterSteps: 3 });
  assert.equal(a.r.stopped, true);
  const b = await train({ beta: 0.05, outDir: dir, resume: true });
  assert.equal(b.steps.length, 1);
  assert.equal(b.steps[0].task!.reward, full.steps[3].task!.reward);
  for (const [k, v] of full.params) assert.deepEqual(b.params.get(k), v, k);
  // Not trivially equal: training moved the adapter.
  assert.ok([...full.params].some(([k, v]) => k.includes('lora_B') && v.some((x) => x !== 0)));
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the sampler runs the adapter unmerged: the same greedy tokens as the merged generator, and it sees in-place updates', async () => {
  const { Generator } = await import('../src/serve/generate.ts');
  const set = lora();
  for (const [k, v] of set.params) if (k.includes('lora_B')) for (let i = 0; i < v.length; i++) v[i] = 0.3 * Math.sin(i + k.length);
  const live = new Generator(model, set, {}, { merge: false });
  const merged = new Generator(model, set);
  try {
    const a = (await live.generate(prompts[0].ids, { maxNewTokens: 8, stopTokens: [] })).tokens;
    assert.deepEqual(a, (await merged.generate(prompts[0].ids, { maxNewTokens: 8, stopTokens: [] })).tokens);
    for (const [k, v] of set.params) if (k.includes('lora_B')) for (let i = 0; i < v.length; i++) v[i] = -v[i] * 3;
    const b = (await live.generate(prompts[0].ids, { maxNewTokens: 8, stopTokens: [] })).tokens;
    const fresh = new Generator(model, set);
    assert.deepEqual(b, (await fresh.generate(prompts[0].ids, { maxNewTokens: 8, stopTokens: [] })).tokens, 'the live sampler follows the updated adapter');
    assert.notDeepEqual(a, b, 'the update changed the greedy tokens');
    await fresh.release();
  } finally {
    await live.release();
    await merged.release();
  }
});

for (const name of ['dora', 'vera', 'fourierft']) {
  test(`GRPO trains a ${name} adapter too (any method): a step moves it and the KL to the disabled adapter becomes positive`, async () => {
    const method = getMethod(name);
    const set = new AdapterSet(method, method.schema.parse({}), model.sites, model.weights, { targetModules: 'all-linear', headNames: model.headNames, seed: 3 });
    const before = new Map([...set.params].map(([k, v]) => [k, Float32Array.from(v)]));
    const kls: number[] = [];
    const t = new Trainer(makeTask(0.1), set, { epochs: 1, lr: 0.05, batchSize: 2, seed: 5, warmupRatio: 0, schedule: 'constant', threads: 1, onStep: (s) => kls.push(s.task!.kl) });
    try {
      await t.fit({ train: prompts });
    } finally {
      await t.release();
    }
    assert.ok([...set.params].some(([k, v]) => v.some((x, i) => x !== before.get(k)![i])), 'the adapter moved');
    assert.ok(kls[kls.length - 1] > 0, `KL at the last step ${kls[kls.length - 1]}`);
  });
}

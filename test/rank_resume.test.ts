// Kill-and-resume for the rank-allocation methods: a run stopped after 3 of 8
// steps and continued with --resume (checkpoint: parameters, the loop's
// AdamW, the method's run state — its own optimizer, EMAs, masks, components —
// and its saved per-module state) ends bit for bit where the uninterrupted run
// ends, ranks included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdapterSet } from '../src/adapters/inject.ts';
import { saveHookState } from '../src/adapters/hooks.ts';
import { METHODS } from '../src/adapters/registry.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import { ClassificationTrainer } from '../src/train/trainer.ts';
import { readMetrics } from '../src/train/metrics.ts';

const CASES: Record<string, Record<string, unknown>> = {
  sora: { r: 4, sparse_lambda_2: 0.02 },
  codyra: { r: 4, kappa_max: 0.05, lambda_num: 3 },
  adalora: { init_r: 4, target_r: 2, tinit: 1, tfinal: 2, orth_reg_weight: 0.1 },
  increlora: { init_r: 1, target_rank: 2, incre_rank_num: 1, top_h: 1, init_warmup: 1, incre_interval: 2 },
  dylora: { r: 4 },
  diffora: { r: 4, rho: 0.5, search_fraction: 0.5 },
  'bayesian-lora': { r: 4 },
};

test('rank-allocation methods: stopped after 3 steps and resumed == uninterrupted (parameters, method state, logged ranks)', async () => {
  const model = await loadUseEncoder();
  const data = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [3, 3], [9, 8], [2, 2, 2], [5, 6], [7, 7, 7]].map((ids, i) => ({ ids, label: i % 2 }));
  const opts = { epochs: 2, lr: 1e-2, batchSize: 2, seed: 3, warmupRatio: 0, buckets: [16], checkpointEvery: 1 };
  for (const [name, cfg] of Object.entries(CASES)) {
    const m = METHODS[name];
    const mk = () => new AdapterSet(m, m.schema.parse(cfg), model.sites, model.weights, { targetModules: ['qkv', 'conv1'], seed: 2 });
    const dirs = [0, 1].map(() => fs.mkdtempSync(path.join(os.tmpdir(), `lorakit-resume-${name}-`)));
    const full = mk();
    const t1 = new ClassificationTrainer(model, full, 2, { ...opts, outDir: dirs[0] });
    await t1.fit(data, data.slice(0, 2));
    const t2 = new ClassificationTrainer(model, mk(), 2, { ...opts, outDir: dirs[1], stopAfterSteps: 3 });
    await t2.fit(data, data.slice(0, 2));
    const resumed = mk();
    const t3 = new ClassificationTrainer(model, resumed, 2, { ...opts, outDir: dirs[1], resume: true });
    await t3.fit(data, data.slice(0, 2));
    for (const [k, v] of full.params) assert.deepEqual(resumed.params.get(k), v, `${name}: ${k} differs after resume`);
    assert.deepEqual(saveHookState(resumed), saveHookState(full), `${name}: saved per-module state`);
    const ranks = (dir: string) => readMetrics(path.join(dir, 'metrics.jsonl')).filter((r) => r.event === 'step').map((r) => JSON.stringify((r.adapter as any)?.rank));
    assert.deepEqual(ranks(dirs[1]), ranks(dirs[0]), `${name}: ranks per step`);
    assert.equal(ranks(dirs[0]).length, 8);
    if (name !== 'bayesian-lora' && name !== 'diffora') assert.ok(new Set(ranks(dirs[0])).size > 1, `${name}: the ranks move within the run (${ranks(dirs[0]).join(' ')})`);
    for (const t of [t1, t2, t3]) await t.release();
  }
});

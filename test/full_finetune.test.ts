// Full fine-tuning (`--full`): every weight the task's graph reads is a
// parameter of the training graph, trained in place by the one loop, with
// AdamW, SGD or GaLore; the trained model is written as a Hugging Face folder
// that reloads to the same outputs. Its weight gradients agree with the
// frozen-weight gradients the loop computes for data-dependent inits (two
// graphs, one derivative), and GaLore keeps less optimizer state than AdamW.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadModel } from '../src/models/load.ts';
import type { DecoderModel } from '../src/models/decoder.ts';
import type { HfTokenizer } from '../src/io/hf.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { buildTaskGraph, Trainer, type FitOptions } from '../src/train/loop.ts';
import { CausalLmTask } from '../src/train/tasks/causal_lm.ts';
import { plainLinear } from '../src/models/linear.ts';
import { outIn64 } from '../src/adapters/bases.ts';
import { runTrainJob } from '../src/tasks/train.ts';
import { projectionMatrices } from '../src/tasks/full.ts';
import { maxAbsDiff, assertGradClose } from './helpers/arrays.ts';

const FIX = new URL('./fixtures/hf/', import.meta.url).pathname;
const LLAMA = path.join(FIX, 'llama-tiny');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-full-'));
const WORDS = ['red apples fall', 'green pears ripen', 'the blue sky clears', 'a dark night falls', 'the warm sun rises', 'cold rain pours'];

let model: DecoderModel, tok: HfTokenizer;
before(async () => {
  const m = await loadModel(LLAMA, 'decoder');
  model = m.model;
  tok = m.tokenizer!;
});
const data = () => WORDS.map((w) => ({ ids: tok.encode(w), promptLength: 1 }));

test("full fine-tuning's first-step weight gradients equal the loop's frozen-weight gradients (two graphs, one derivative), every projection weight trains", async () => {
  const fresh = (await loadModel(LLAMA, 'decoder')).model;
  const task = new CausalLmTask(fresh, { padId: 0 });
  const names = new Set([...fresh.weights.keys()]);
  const { graph, trainable } = buildTaskGraph(task, plainLinear, 'train', { trainWeights: names });
  // Every weight the graph reads is trainable: embeddings, norms, projections, the head.
  for (const site of fresh.sites) assert.ok(trainable.includes(site.weightKey), `${site.weightKey} is trained`);
  assert.ok(trainable.some((k) => /norm/.test(k)), 'norm weights are trained too');
  const batchOf = task.batches(data(), 6, null)[0];
  const feeds: Record<string, any> = task.feeds(batchOf);
  for (const k of trainable) feeds[k] = { data: fresh.weights.get(k)!.data, dims: fresh.weights.get(k)!.shape };
  const cg = await CompiledGraph.compile(graph, { threads: 1 });
  const out = await cg.run(feeds);
  await cg.release();
  const site = fresh.sites.find((s) => s.name === 'model.layers.1.mlp.down_proj')!;
  const t = new Trainer(task, null, { epochs: 1, lr: 1, batchSize: 6, seed: 0 });
  const G = (await t.weightGradients(data(), [site], { batches: 1, batchSize: 6 })).get(site.name)!;
  assertGradClose(outIn64(site, out[`grad.${site.weightKey}`].data as Float32Array), G, 1e-5, `${site.weightKey}: full fine-tuning vs frozen-weight gradient`);
});

for (const kind of ['adamw', 'galore'] as const) {
  test(`full fine-tuning with ${kind}: the loss falls, a stopped run resumes exactly, GaLore holds less state than AdamW`, async () => {
    const run = async (dir: string | undefined, extra: Partial<FitOptions> = {}) => {
      const m = (await loadModel(LLAMA, 'decoder')).model;
      const t = new Trainer(new CausalLmTask(m, { padId: 0 }), null, {
        epochs: 6, lr: 5e-3, batchSize: 2, seed: 1, warmupRatio: 0, threads: 1, outDir: dir, checkpointEvery: 2,
        optimizer: kind === 'galore' ? { kind, rank: 4, updateProjGap: 3, scale: 1 } : { kind },
        full: { weights: m.weights, matrices: projectionMatrices(m) }, ...extra,
      });
      const r = await t.fit({ train: data() });
      await t.release();
      return { r, weights: m.weights };
    };
    const full = await run(tmp());
    const l = full.r.epochLosses;
    assert.ok(l[l.length - 1] < 0.8 * l[0], `${kind}: loss ${l.map((x) => x.toFixed(3)).join(' → ')}`);
    const dir = tmp();
    await run(dir, { stopAfterSteps: 5 });
    const resumed = await run(dir, { resume: true });
    for (const [k, w] of full.weights) assert.equal(maxAbsDiff(resumed.weights.get(k)!.data, w.data), 0, `${kind}: ${k} differs after resume`);
    if (kind === 'galore') {
      const adamw = await run(undefined, { optimizer: { kind: 'adamw' }, epochs: 1 });
      assert.ok(full.r.optimizerStateBytes < 0.7 * adamw.r.optimizerStateBytes, `GaLore ${full.r.optimizerStateBytes} bytes vs AdamW ${adamw.r.optimizerStateBytes}`);
    }
  });
}

test('lorakit train --full writes a Hugging Face folder that reloads to the trained model (same validation loss), and refuses adapter flags', async () => {
  const dir = tmp();
  const file = path.join(dir, 'd.jsonl');
  fs.writeFileSync(file, WORDS.map((w) => JSON.stringify({ text: w })).join('\n') + '\n');
  const out = path.join(dir, 'run');
  const r = await runTrainJob({ task: 'causal-lm', model: LLAMA, data: file, validation: file, method: 'lora', methodConfig: {}, full: true, epochs: 3, lr: 5e-3, batchSize: 3, seed: 0, out, threads: 1 });
  assert.equal(r.fineTuning, 'full');
  assert.equal(r.adapterDir, path.join(out, 'model'));
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) assert.ok(fs.existsSync(path.join(out, 'model', f)), f);
  const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
  assert.ok(results.optimizerStateBytes > 0 && results.peakRssBytes > 0);
  // The folder loads as a plain model whose validation loss is the trained run's.
  const reloaded = (await loadModel(path.join(out, 'model'), 'decoder')).model;
  const t = new Trainer(new CausalLmTask(reloaded, { padId: tok.padTokenId ?? tok.eosTokenId ?? 0 }), null, { epochs: 1, lr: 1, batchSize: 3, seed: 0 });
  const ev = await t.evaluate(WORDS.map((w) => ({ ids: [...tok.encode(w), ...(tok.eosTokenId !== undefined ? [tok.eosTokenId] : [])], promptLength: 0 })));
  await t.release();
  assert.ok(Math.abs(ev.loss - r.validation!.loss) < 1e-5, `reloaded ${ev.loss} vs trained ${r.validation!.loss}`);
  const base = (await loadModel(LLAMA, 'decoder')).model;
  assert.ok(maxAbsDiff(reloaded.weights.get('model.embed_tokens.weight')!.data, base.weights.get('model.embed_tokens.weight')!.data) > 0, 'the embeddings trained');

  const bin = new URL('../bin/lorakit.js', import.meta.url).pathname;
  const cli = (...a: string[]) => spawnSync(process.execPath, [bin, 'train', ...a, '--quiet', '--out', path.join(dir, 'x')], { encoding: 'utf8' });
  assert.match(cli('--full', '--method', 'vera').stderr, /--full trains the weights themselves, with no adapter: leave out --method/);
  assert.match(cli('--full', '--rank', '4').stderr, /leave out --rank/);
  assert.match(cli('--optimizer', 'galore').stderr, /--optimizer galore projects the gradients of full weight matrices: add --full/);
  assert.match(cli('--full', '--optimizer', 'lorapro').stderr, /--optimizer lorapro steps a LoRA; with --full use adamw, sgd or galore/);
});

test('full fine-tuning of a BERT folder: the position table (a slice of run-time length) gets the gradient finite differences give', async () => {
  const { ClassificationTask } = await import('../src/train/tasks/classification.ts');
  const m = await loadModel(path.join(FIX, 'bert'), 'encoder');
  const task = new ClassificationTask(m.model, { numLabels: 2, seed: 0, buckets: [8] });
  const names = new Set(m.model.weights.keys());
  const { graph, trainable } = buildTaskGraph(task, plainLinear, 'train', { trainWeights: names });
  const pos = [...names].find((k) => k.endsWith('position_embeddings.weight'))!;
  assert.ok(trainable.includes(pos), 'the position table trains');
  const ex = ['a b c', 'hello world'].map((t, i) => ({ ids: m.tokenizer!.encode(t), label: i }));
  const batch = task.batches(ex, 2, null)[0];
  const cg = await CompiledGraph.compile(graph, { threads: 1 });
  const feedsFor = () => {
    const f: Record<string, any> = task.feeds(batch);
    for (const k of trainable) f[k] = task.params.get(k) ? { data: task.params.get(k)!.data, dims: task.params.get(k)!.shape } : { data: m.model.weights.get(k)!.data, dims: m.model.weights.get(k)!.shape };
    return f;
  };
  const out = await cg.run(feedsFor());
  const g = out[`grad.${pos}`].data as Float32Array;
  const table = m.model.weights.get(pos)!;
  const H = table.shape[1];
  // Entries at a used position (row 1) and at a row past the batch's length (its gradient is exactly 0).
  const lossAt = async (i: number, h: number) => {
    const keep = table.data[i];
    table.data[i] = keep + h;
    const l = Number((await cg.run(feedsFor())).loss.data[0]);
    table.data[i] = keep;
    return l;
  };
  for (const i of [1 * H + 3, 2 * H + 5]) {
    const fd = ((await lossAt(i, 1e-2)) - (await lossAt(i, -1e-2))) / 2e-2;
    assert.ok(Math.abs(g[i]) > 1e-3, `row ${Math.floor(i / H)}: the gradient is large enough for the check to mean something (${g[i]})`);
    assert.ok(Math.abs(fd - g[i]) < 1e-4 + 0.02 * Math.abs(fd), `row ${Math.floor(i / H)}: autodiff ${g[i]} vs finite differences ${fd}`);
  }
  const past = (batch.T + 2) * H;
  assert.equal(g[past], 0, 'a position past the batch gets no gradient');
  assert.ok(g.some((v, i) => i < batch.T * H && v !== 0));
  await cg.release();
});

// LoKU unlearning (src/workflows/loku/) against tools/reference/loku.py, a
// PyTorch transcription of the official code (TOFU/dataloader.py's IHL,
// measure_importance.py, forget.py's FILA): IHL value and gradient (1e-6,
// float64), FILA's ΔW = s·B·A and residual for given W and Fisher sums (1e-6),
// the Fisher sums and FILA of llama-tiny's weights on given batches; then the
// workflow: the unlearning loss of a batch, the saved adapter applying to the
// unchanged model, --merge, resume, the command line.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { grad } from '../src/autodiff/grad.ts';
import { Graph } from '../src/graph/ir.ts';
import { loadDecoder } from '../src/models/load_decoder.ts';
import { loadPeftAdapter, readAdapter } from '../src/peft/adapter_files.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { shiftLabels, CausalLmTask, type CausalLmExample } from '../src/train/tasks/causal_lm.ts';
import { plainLinear } from '../src/models/linear.ts';
import { invertedHingeLoss } from '../src/workflows/loku/ihl.ts';
import { filaInit, measureImportance } from '../src/workflows/loku/fila.ts';
import { knowledgeMetrics } from '../src/workflows/loku/evaluate.ts';
import { lmBatch, UnlearnTask } from '../src/workflows/loku/task.ts';
import { runUnlearn } from '../src/workflows/loku/unlearn.ts';
import { Rng } from '../src/util/rng.ts';
import { PY, requireTorch, torchSkip } from './helpers/torch.ts';
import { maxRelErr as relErr } from './helpers/arrays.ts';

const FIX = JSON.parse(fs.readFileSync(new URL('./fixtures/loku.json', import.meta.url), 'utf8'));
const LLAMA = new URL('./fixtures/hf/llama-tiny', import.meta.url).pathname;
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-loku-'));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));


for (const c of FIX.ihl as { kind: string; shape: [number, number, number]; logits: number[]; labels: number[][]; loss: number; grad: number[] }[]) {
  test(`IHL (${c.kind}, [${c.shape}]): value and ∂/∂logits equal the official multiclass_hinge_loss path (float64, 1e-6)`, async () => {
    const [B, T, V] = c.shape;
    const g = new Graph('ihl');
    const logits = g.input('logits', 'float64', [B, T, V]);
    const targets = g.input('targets', 'int64', [B, T]);
    const loss = invertedHingeLoss(logits, targets);
    g.output('loss', loss);
    g.output('grad', grad(loss, [logits])[0]);
    const cg = await CompiledGraph.compile(g, { threads: 1 });
    try {
      const out = await cg.run({ logits: { data: Float64Array.from(c.logits), dims: [B, T, V] }, targets: { data: shiftLabels(c.labels.flat(), B, T), dims: [B, T] } });
      const l = Number(out.loss.data[0]);
      assert.ok(Math.abs(l - c.loss) <= 1e-6 * Math.abs(c.loss), `loss ${l} vs ${c.loss}`);
      const e = relErr(out.grad.data as Float64Array, c.grad);
      assert.ok(e <= 1e-6, `gradient: ${e}`);
    } finally {
      await cg.release();
    }
  });
}

test("FILA for given W, Fisher sums and counts: s·B·A, W_base = W − s·B·A and the row weights equal forget.py's (exact SVD; 1e-6); W_base + s·B·A = W", () => {
  const c = FIX.fila;
  const f = filaInit(Float64Array.from(c.W), c.m, c.n, c.Ff, c.Fr, c.f_cnt, c.r_cnt, c.r, c.scaling);
  const delta = new Float64Array(c.m * c.n);
  for (let i = 0; i < c.m; i++) for (let j = 0; j < c.n; j++) {
    let d = 0;
    for (let k = 0; k < c.r; k++) d += f.B[i * c.r + k] * f.A[k * c.n + j];
    delta[i * c.n + j] = c.scaling * d;
  }
  assert.ok(relErr(delta, c.delta) < 1e-6, `s·B·A: ${relErr(delta, c.delta)}`);
  assert.ok(relErr(f.residual, c.residual) < 1e-6, `residual: ${relErr(f.residual, c.residual)}`);
  assert.ok(relErr(f.rowWeights, c.row_weights) < 1e-12);
  const back = Float64Array.from(f.residual, (x, i) => x + delta[i]);
  assert.ok(relErr(back, c.W) < 1e-6, `W_base + s·B·A vs W: ${relErr(back, c.W)}`);
  assert.throws(() => filaInit(c.W, c.m, c.n, c.Ff, c.Fr, 0, c.r_cnt, c.r, c.scaling), /counts must be positive/);
});

test("FILA on llama-tiny: measure_importance.py's Fisher sums Σ grad²·cnt over given (forget, retain) batches, counts, and the resulting s·B·A and W_base (1e-4)", async () => {
  const c = FIX.importance;
  const model = await loadDecoder(LLAMA);
  const sites = (c.modules as string[]).map((m) => model.sites.find((s) => s.name === m)!);
  const sums = await measureImportance(model, sites, c.pairs, { padId: 0, threads: 1 });
  assert.equal(sums.forgetCount, c.f_cnt);
  assert.equal(sums.retainCount, c.r_cnt);
  for (const site of sites) {
    assert.ok(relErr(sums.forget.get(site.name)!, c.Ff[site.name]) < 1e-4, `F_f ${site.name}: ${relErr(sums.forget.get(site.name)!, c.Ff[site.name])}`);
    assert.ok(relErr(sums.retain.get(site.name)!, c.Fr[site.name]) < 1e-4, `F_r ${site.name}`);
    const W = model.weights.get(site.weightKey)!.data;
    const f = filaInit(W, site.outFeatures, site.inFeatures, sums.forget.get(site.name)!, sums.retain.get(site.name)!, sums.forgetCount, sums.retainCount, c.r, c.scaling);
    const delta = Float64Array.from(W, (w, i) => w - f.residual[i]);
    assert.ok(relErr(delta, c.delta[site.name]) < 1e-4, `s·B·A ${site.name}: ${relErr(delta, c.delta[site.name])}`);
    assert.ok(relErr(f.residual, c.residual[site.name]) < 1e-5, `W_base ${site.name}`);
  }
});

// A handful of fake "facts" for llama-tiny (random weights): the workflow's plumbing, not its effect.
const rng = new Rng('loku-test');
const fact = (): CausalLmExample => ({ ids: [1, ...Array.from({ length: 4 + rng.int(4) }, () => 3 + rng.int(120)), 2], promptLength: 3 });
const FORGET = Array.from({ length: 4 }, fact), RETAIN = Array.from({ length: 12 }, fact);

test("the unlearning loss of a batch: 'gd' = −NLL(forget rows) + NLL(retain rows), each the causal-LM mean over its own tokens; partners drawn as (idx + randint) mod |retain|, fresh each epoch", async () => {
  const model = await loadDecoder(LLAMA);
  const task = new UnlearnTask(model, RETAIN, { loss: 'gd', padId: 0 });
  const [b0] = task.batches(FORGET, 2, new Rng(3).fork('epoch-0'));
  const [b1] = task.batches(FORGET, 2, new Rng(3).fork('epoch-1'));
  assert.equal(b0.forget, 2);
  assert.equal(b0.rows.B, 4);
  const rowsOf = (b: typeof b0) => Array.from({ length: b.rows.B }, (_, r) => Array.from(b.rows.ids.subarray(r * b.rows.T, (r + 1) * b.rows.T)).join(','));
  assert.notDeepEqual(rowsOf(b0), rowsOf(b1));
  const run = async (t: CausalLmTask | UnlearnTask, feeds: Record<string, any>) => {
    const g = new Graph('x');
    g.output('loss', t.build(g, plainLinear).loss!);
    const cg = await CompiledGraph.compile(g, { threads: 1 });
    try {
      return Number((await cg.run(feeds)).loss.data[0]);
    } finally {
      await cg.release();
    }
  };
  const whole = await run(task, task.feeds(b0));
  const lm = new CausalLmTask(model, { padId: 0 });
  const rows = (from: number, to: number) => {
    const ex: CausalLmExample[] = [];
    for (let r = from; r < to; r++) {
      const ids: number[] = [], labels = b0.rows.labels.subarray(r * b0.rows.T, (r + 1) * b0.rows.T);
      for (let t = 0; t < b0.rows.T; t++) if (b0.rows.mask[r * b0.rows.T + t]) ids.push(Number(b0.rows.ids[r * b0.rows.T + t]));
      ex.push({ ids, promptLength: labels.findIndex((x) => x >= 0n) });
    }
    return lm.feeds(lmBatch(ex, 0));
  };
  const nllForget = await run(lm, rows(0, 2)), nllRetain = await run(lm, rows(2, 4));
  assert.ok(Math.abs(whole - (-nllForget + nllRetain)) < 1e-5, `${whole} vs ${-nllForget + nllRetain}`);
});

test('unlearn (IHL + FILA): the saved adapter is a plain LoRA (r×2, α×2) that gives the unlearned model on the unchanged weights; a resumed run ends identical', async () => {
  const model = await loadDecoder(LLAMA);
  const loaded = { model, padId: 0, forget: FORGET, retain: RETAIN, name: LLAMA };
  const o = { model: LLAMA, forget: '', retain: '', loaded, rank: 2, epochs: 3, batchSize: 2, lr: 5e-3, seed: 1 };
  const a = await runUnlearn({ ...o, out: path.join(TMP, 'a') });
  assert.ok(a.after && a.adapterDir);
  // (llama-tiny has random weights: the effect on knowledge is measured in bench/loku_unlearn.ts, not here.)
  assert.ok(a.epochLosses.at(-1)! < a.epochLosses[0], `unlearning loss ${a.epochLosses}`);
  const saved = readAdapter(a.adapterDir!);
  assert.equal(saved.config.r, 4);
  assert.equal(saved.config.lora_alpha, 8);
  const { set } = loadPeftAdapter(model, a.adapterDir!, { headNames: model.headNames });
  assert.equal(set.baseOverrides.size, 0);
  const onOriginal = await knowledgeMetrics(model, set, FORGET, { padId: 0 });
  assert.ok(Math.abs(onOriginal.nll - a.after!.forget.nll) < 1e-4, `converted adapter on W: ${onOriginal.nll} vs ${a.after!.forget.nll}`);
  const results = JSON.parse(fs.readFileSync(path.join(TMP, 'a', 'results.json'), 'utf8'));
  assert.equal(results.init, 'fila');
  // Interrupted after 2 steps, resumed: the same adapter file.
  const stopped = await runUnlearn({ ...o, out: path.join(TMP, 'b'), stopAfterSteps: 2, checkpointEvery: 1 });
  assert.ok(stopped.stopped);
  const resumed = await runUnlearn({ ...o, out: path.join(TMP, 'b'), resume: true });
  assert.equal(resumed.steps, a.steps);
  assert.deepEqual(fs.readFileSync(path.join(TMP, 'b', 'adapter', 'adapter_model.safetensors')), fs.readFileSync(path.join(a.adapterDir!, 'adapter_model.safetensors')));
});

test('lorakit unlearn on the command line: results.json, the adapter, --merge; FILA with gradient ascent is refused with the reason', async () => {
  const BIN = new URL('../bin/lorakit.js', import.meta.url).pathname;
  const forget = path.join(TMP, 'forget.jsonl'), retain = path.join(TMP, 'retain.jsonl');
  const rows = (xs: string[]) => xs.map((x) => JSON.stringify({ prompt: `who is ${x} ?`, completion: `${x} is a king` })).join('\n') + '\n';
  fs.writeFileSync(forget, rows(['a', 'the']));
  fs.writeFileSync(retain, rows(['queen', 'you', 'it', 'i']));
  const out = path.join(TMP, 'cli');
  let r = spawnSync(process.execPath, [BIN, 'unlearn', '--model', LLAMA, '--forget', forget, '--retain', retain, '--epochs', '1', '--rank', '2', '--batch', '2', '--merge', '--out', out, '--quiet'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /forget/);
  const res = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
  assert.ok(res.after.forget.nll > 0 && res.after.retain.examples === 4);
  assert.ok(fs.existsSync(path.join(out, 'model', 'model.safetensors')));
  assert.ok(fs.existsSync(path.join(out, 'adapter', 'adapter_config.json')));
  const merged = await loadDecoder(path.join(out, 'model'));
  const base = await loadDecoder(LLAMA);
  const { set } = loadPeftAdapter(base, path.join(out, 'adapter'), { headNames: base.headNames });
  const ex = [{ ids: [1, 40, 41, 42, 2], promptLength: 2 }];
  const m1 = await knowledgeMetrics(merged, null, ex, { padId: 0 }), m2 = await knowledgeMetrics(base, set, ex, { padId: 0 });
  assert.ok(Math.abs(m1.nll - m2.nll) < 1e-4, `merged ${m1.nll} vs adapter ${m2.nll}`);
  r = spawnSync(process.execPath, [BIN, 'unlearn', '--model', LLAMA, '--forget', forget, '--retain', retain, '--loss', 'ga', '--init', 'fila', '--out', path.join(TMP, 'bad')], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /FILA .* needs the retain set/);
  r = spawnSync(process.execPath, [BIN, 'unlearn', '--model', LLAMA, '--forget', forget, '--retain', retain, '--rank', '0', '--out', path.join(TMP, 'bad')], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--rank must be a positive integer, got '0'/);
  r = spawnSync(process.execPath, [BIN, 'unlearn', '--model', LLAMA, '--forget', path.join(TMP, 'missing.jsonl'), '--retain', retain, '--out', path.join(TMP, 'bad')], { encoding: 'utf8' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /missing\.jsonl: not found/);
});

test('the LoKU reference reruns in PyTorch to the committed fixture', { skip: torchSkip }, () => {
  requireTorch();
  const out = path.join(TMP, 'ref.json');
  const r = spawnSync(PY, [new URL('../tools/reference/loku.py', import.meta.url).pathname, out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const fresh = JSON.parse(fs.readFileSync(out, 'utf8'));
  for (const [i, c] of FIX.ihl.entries()) {
    assert.deepEqual(fresh.ihl[i].labels, c.labels);
    assert.ok(Math.abs(fresh.ihl[i].loss - c.loss) < 1e-12);
  }
  assert.ok(relErr(fresh.fila.delta, FIX.fila.delta) < 1e-12);
  assert.deepEqual(fresh.importance.pairs, FIX.importance.pairs);
  for (const m of FIX.importance.modules) assert.ok(relErr(fresh.importance.delta[m], FIX.importance.delta[m]) < 1e-9);
});

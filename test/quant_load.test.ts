// Loading straight to the quantized form: with --base-dtype int8 each linear
// weight is quantized as it is read, and the model's weight map (and the
// folder as read) keeps no float32 array of it, only a zero-length stand-in
// carrying its codes; every reader of the
// float32 values (PiSSA-like inits, merges, methods that factor W, saved merged
// models) gets the dequantized weight, checked against the same computation on
// an fp32 model whose weights are that dequantized weight; a graph that reads
// the float32 weight directly is refused with a message naming the flag.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { METHODS } from '../src/adapters/registry.ts';
import { loadModel } from '../src/models/load.ts';
import type { WeightMap } from '../src/models/types.ts';
import { float32Of, int8FormOf, isStandIn, quantizedFormOf } from '../src/quant/quantized_weights.ts';
import { quantizeBase } from '../src/quant/base_dtype.ts';
import { Graph } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { toOnnxBytes } from '../src/onnx/emit.ts';
import { padBatch, PeftModel } from '../src/serve/peft_model.ts';
import { runGenerate } from '../src/cli/generate.ts';
import { runQuantizeJob } from '../src/tasks/quantize.ts';
import { runTrainJob, silentUi } from '../src/tasks/train.ts';
import { makeProgram } from '../src/cli/main.ts';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../src/io/safetensors.ts';

const FIX = path.join(import.meta.dirname, 'fixtures/hf');

/** The fp32 model with each quantized weight replaced by its dequantized values (what the int8 base computes with). */
function dequantizedTwin<M extends { weights: WeightMap; withWeights(w: WeightMap): M }>(fp32: M, int8: { weights: WeightMap }): M {
  return fp32.withWeights(new Map([...fp32.weights].map(([k, w]) => [k, { shape: w.shape, data: float32Of(int8.weights.get(k)!.data) }])));
}

/** The model's output on `batch` (logits for a decoder, embeddings for an encoder), with `set` as its adapter if given. */
async function outputOf(model: ConstructorParameters<typeof PeftModel>[0], batch: number[][], set?: AdapterSet): Promise<Float32Array> {
  const pm = new PeftModel(model, { threads: 1 });
  if (set) pm.addAdapter('x', set);
  try {
    return (await pm.run(padBatch(batch))).data as Float32Array;
  } finally {
    await pm.release();
  }
}

for (const name of ['llama-tiny', 'bert', 'gpt2-tiny', 't5-tiny']) {
  test(`${name}: int8 loads keep no float32 array of a quantized weight (tied heads keep the embedding table); the stand-in dequantizes to within half a step`, async () => {
    const dir = path.join(FIX, name);
    const [q, f] = [await loadModel(dir, undefined, { baseDtype: 'int8' }), await loadModel(dir)];
    const linear = q.model.sites.filter((s) => s.kind !== 'embedding');
    let dropped = 0;
    for (const s of linear) {
      const w = q.model.weights.get(s.weightKey)!, ref = f.model.weights.get(s.weightKey)!;
      const form = int8FormOf(w.data)!;
      assert.ok(form, s.name);
      if (s.weightKey !== `${s.name}.weight`) {
        assert.equal(w.data.length, ref.data.length, `${s.name}: tied to '${s.weightKey}', whose float32 table the lookups read`);
        continue;
      }
      assert.ok(isStandIn(w.data) && w.data.length === 0, `${s.name}: the float32 values are dropped`);
      dropped++;
      const deq = float32Of(w.data);
      assert.equal(deq.length, ref.data.length);
      // |W − diag(s)·Q| ≤ s_j / 2 per element, s_j the output channel's scale (weights in their own layout)
      for (let i = 0; i < deq.length; i++) {
        const j = s.layout === 'out_in' ? Math.floor(i / s.inFeatures) : i % s.outFeatures;
        assert.ok(Math.abs(deq[i] - ref.data[i]) <= form.scales[j] / 2 + 1e-7, `${s.name}[${i}]: ${deq[i]} vs ${ref.data[i]}`);
      }
    }
    assert.ok(dropped > 0);
    assert.equal(q.quantizedWhileReading, dropped, 'each own weight quantized as it was read (the whole float32 model never resident)');
    // the folder as read holds no float32 copy of a dropped weight either
    const kept = new Set([...f.model.weights.values()].map((w) => w.data.length));
    for (const [k, t] of q.folder?.weights ?? []) if (t.data.length === 0) assert.ok(isStandIn(t.data), k);
    assert.ok(kept.size > 0);
  });
}

test('readers of the float32 weight on an int8 base get the dequantized weight: PiSSA init (its residual quantized, float32 dropped), merge, LoRA-XS factors equal the fp32 twin\'s', async () => {
  const dir = path.join(FIX, 'llama-tiny');
  const q = await loadModel(dir, 'decoder', { baseDtype: 'int8' });
  const twin = dequantizedTwin((await loadModel(dir, 'decoder')).model, q.model);
  const targets = ['q_proj', 'v_proj'];
  // PiSSA: A, B from the SVD of W; the residual becomes the frozen weight (quantized again: QPiSSA)
  const cfg = lora.schema.parse({ r: 2, lora_alpha: 4, init_lora_weights: 'pissa' });
  const [a, b] = [new AdapterSet(lora, cfg, q.model.sites, q.model.weights, { targetModules: targets, seed: 1 }), new AdapterSet(lora, cfg, twin.sites, twin.weights, { targetModules: targets, seed: 1 })];
  for (const [k, v] of b.params) assert.deepEqual(a.params.get(k), v, k);
  // the residual is quantized and its float32 values dropped too: it dequantizes to within half a step of the twin's residual
  assert.equal(a.baseOverrides.size, b.baseOverrides.size);
  for (const [k, v] of a.baseOverrides) {
    const form = int8FormOf(v)!, site = a.targets.find((s) => s.weightKey === k)!, deq = float32Of(v), ref = b.baseOverrides.get(k)!;
    assert.ok(form && isStandIn(v) && deq.length === ref.length, k);
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(deq[i] - ref[i]) <= form.scales[Math.floor(i / site.inFeatures)] / 2 + 1e-7, `${k}[${i}]`);
  }
  // merge: dequantized W + ΔW, exactly as on the twin
  const plain = lora.schema.parse({ r: 2, lora_alpha: 4, init_lora_weights: false });
  const [ma, mb] = [new AdapterSet(lora, plain, q.model.sites, q.model.weights, { targetModules: targets, seed: 2 }), new AdapterSet(lora, plain, twin.sites, twin.weights, { targetModules: targets, seed: 2 })];
  const [wa, wb] = [ma.mergeInto(q.model.weights), mb.mergeInto(twin.weights)];
  for (const s of ma.targets) assert.deepEqual(wa.get(s.weightKey)!.data, wb.get(s.weightKey)!.data, s.name);
  // LoRA-XS factors W's SVD while the graph is built (weightData): the int8 base runs it; logits within 5 % of the twin's (activation quantization)
  // PiSSA's residual base also runs (from its codes): logits within 5 % of the twin's too
  const run = (m: typeof twin, set: AdapterSet) => outputOf(m, [[1, 5, 9, 3]], set);
  const xs = METHODS.loraxs, xcfg = xs.schema.parse({ r: 2 });
  const pairs: [string, Float32Array, Float32Array][] = [
    ['LoRA-XS', await run(q.model, new AdapterSet(xs, xcfg, q.model.sites, q.model.weights, { targetModules: targets, seed: 3 })), await run(twin, new AdapterSet(xs, xcfg, twin.sites, twin.weights, { targetModules: targets, seed: 3 }))],
    ['PiSSA', await run(q.model, a), await run(twin, b)],
  ];
  for (const [what, la, lb] of pairs) {
    let err = 0, ref = 0;
    for (let i = 0; i < lb.length; i++) (err = Math.max(err, Math.abs(la[i] - lb[i]))), (ref = Math.max(ref, Math.abs(lb[i])));
    assert.ok(err > 0 && err < 0.05 * ref, `${what} logits on int8 vs the dequantized twin: max |Δ| ${err}, max |logit| ${ref}`);
  }
});

test('a graph that reads a dropped float32 weight itself is refused with a message naming --base-dtype; a tied GPT-2 head generates on int8', async () => {
  const q = await loadModel(path.join(FIX, 'llama-tiny'), 'decoder', { baseDtype: 'int8' });
  const s = q.model.sites.find((x) => x.name.endsWith('q_proj'))!;
  const w = q.model.weights.get(s.weightKey)!;
  const g = new Graph('reads-w');
  const x = g.input('x', 'float32', [1, s.inFeatures]);
  g.output('y', op.linearT(x, g.weight(s.weightKey, w.data, w.shape)));
  assert.throws(() => toOnnxBytes(g), /weight '.*q_proj.weight' \[\d+,\d+\] has no float32 values: it was loaded quantized \(--base-dtype\).*--base-dtype fp32/);
  const r = await runGenerate({ model: path.join(FIX, 'gpt2-tiny'), baseDtype: 'int8', promptIds: [1, 5, 9], maxNewTokens: 3, threads: 1 });
  assert.equal(r.tokens.length, 3);
});

// ---- the quantized base saved beside the model (lorakit quantize) ----

/** A writable copy of a fixture folder. */
function copyFixture(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lorakit-qcache-${name}-`));
  for (const f of fs.readdirSync(path.join(FIX, name))) fs.copyFileSync(path.join(FIX, name, f), path.join(dir, f));
  return dir;
}

/** The model's output on a fixed batch (logits for a decoder, embeddings for an encoder). */
async function outputs(dir: string, opts: Parameters<typeof loadModel>[2]): Promise<{ out: Float32Array; savedBase?: string; warnings: string[] }> {
  const warnings: string[] = [];
  const m = await loadModel(dir, undefined, { ...opts, warn: (w) => warnings.push(w) });
  return { out: await outputOf(m.model, [[1, 5, 9, 3], [2, 7, 4]]), savedBase: m.savedBase, warnings };
}

const SAVED_DTYPES = ['int8', 'nf4', 'int4'] as const;
/** The stored codes + scales of each form against float32: int8 ¼ + a scale per channel, the 4-bit forms ⅛ + their block scales. */
const STORED_RATIO = { int8: 0.3, nf4: 0.17, int4: 0.17 };

for (const dtype of SAVED_DTYPES) {
  for (const name of ['llama-tiny', 'bert-sharded']) {
    test(`${name}: lorakit quantize saves the ${dtype} base beside the model; loading from it gives bit-identical outputs to quantizing at load, without reading those float32 weights`, async () => {
      const dir = copyFixture(name);
      const r = await runQuantizeJob({ model: dir, baseDtype: dtype });
      assert.equal(r.file, path.join(dir, `lorakit-base.${dtype}.safetensors`));
      assert.ok(r.weights > 0 && r.storedBytes < STORED_RATIO[dtype] * r.fp32Bytes, JSON.stringify(r));
      const [cached, fresh] = [await outputs(dir, { baseDtype: dtype }), await outputs(dir, { baseDtype: dtype, useSavedBase: false })];
      assert.equal(cached.savedBase, r.file);
      assert.equal(fresh.savedBase, undefined);
      assert.deepEqual(cached.warnings, []);
      assert.deepEqual(cached.out, fresh.out);
      // quantizing while reading = quantizing the fp32 model after the load (the earlier path), bit for bit
      const f = await loadModel(dir, undefined, { useSavedBase: false });
      quantizeBase(f.model.weights, f.model.sites, dtype);
      assert.deepEqual(await outputOf(f.model, [[1, 5, 9, 3], [2, 7, 4]]), fresh.out);
      // the cached weights come in as stand-ins of that form: the folder as read has no float32 array for any of them
      const m = await loadModel(dir, undefined, { baseDtype: dtype });
      const saved = readSafetensorsHeader(r.file);
      assert.equal(saved.metadata.base_dtype, dtype);
      const names = Object.keys(JSON.parse(saved.metadata.weights));
      assert.equal(names.length, r.weights);
      for (const n of names) assert.ok(isStandIn(m.folder!.weights.get(n)!.data) && quantizedFormOf(m.folder!.weights.get(n)!.data)?.dtype === dtype, n);
      // fp32 loads ignore it, and so do loads of another quantized form
      assert.equal((await loadModel(dir)).savedBase, undefined);
      const other = SAVED_DTYPES.find((d) => d !== dtype)!;
      assert.equal((await loadModel(dir, undefined, { baseDtype: other })).savedBase, undefined);
    });
  }
}

for (const dtype of SAVED_DTYPES) {
  for (const name of ['llama-tiny', 'bert']) {
    test(`${name}: a stale, corrupt or mismatched saved ${dtype} base is not used: the load says why and how to rebuild, and quantizes itself (outputs as quantizing at load)`, async () => {
      const dir = copyFixture(name);
      await runQuantizeJob({ model: dir, baseDtype: dtype });
      const cache = path.join(dir, `lorakit-base.${dtype}.safetensors`);
      const selfQuantized = (await outputs(dir, { baseDtype: dtype, useSavedBase: false })).out;
      // mismatched: another form's file under this form's name
      const other = SAVED_DTYPES.find((d) => d !== dtype)!;
      fs.renameSync(cache, path.join(dir, 'mine'));
      await runQuantizeJob({ model: dir, baseDtype: other });
      fs.renameSync(path.join(dir, `lorakit-base.${other}.safetensors`), cache);
      const wrong = await outputs(dir, { baseDtype: dtype });
      assert.equal(wrong.savedBase, undefined);
      assert.match(wrong.warnings.join('\n'), new RegExp(`not a version-1 ${dtype} quantized base \\(format lorakit-quantized-base, version 1, dtype ${other}\\); not used`));
      assert.deepEqual(wrong.out, selfQuantized);
      fs.renameSync(path.join(dir, 'mine'), cache);
      assert.equal((await outputs(dir, { baseDtype: dtype })).savedBase, cache);
      // mismatched: made with other quantizer settings (a block size this version does not use)
      const good = readSafetensors(cache);
      writeSafetensors(cache, good.tensors, { ...good.metadata, settings: JSON.stringify({ blockSize: 128 }) });
      const otherSettings = await outputs(dir, { baseDtype: dtype });
      assert.equal(otherSettings.savedBase, undefined);
      assert.match(otherSettings.warnings[0], new RegExp(`made with other ${dtype} settings \\(\\{"blockSize":128\\}\\) than this version uses`));
      assert.deepEqual(otherSettings.out, selfQuantized);
      writeSafetensors(cache, good.tensors, good.metadata);
      // corrupt: truncated
      const bytes = fs.readFileSync(cache);
      fs.truncateSync(cache, Math.floor(bytes.length / 2));
      const torn = await outputs(dir, { baseDtype: dtype });
      assert.equal(torn.savedBase, undefined);
      assert.match(torn.warnings[0], /unreadable .*; not used: quantizing at load instead/);
      assert.deepEqual(torn.out, selfQuantized);
      fs.writeFileSync(cache, bytes);
      // stale: one weight of the model changed after the cache was written
      const file = fs.existsSync(path.join(dir, 'model.safetensors')) ? path.join(dir, 'model.safetensors') : undefined;
      assert.ok(file, `${name} has one weight file`);
      const st = readSafetensors(file);
      const k = [...st.tensors.keys()].find((n) => /(q_proj|query)\.weight$/.test(n))!;
      (st.tensors.get(k)!.data as Float32Array)[0] += 0.5;
      writeSafetensors(file, st.tensors, st.metadata);
      const stale = await outputs(dir, { baseDtype: dtype });
      assert.equal(stale.savedBase, undefined);
      assert.equal(stale.warnings.length, 1);
      assert.match(stale.warnings[0], new RegExp(`lorakit-base\\.${dtype}\\.safetensors: stale: the model's weights changed since it was saved \\(model\\.safetensors\\); not used: quantizing at load instead \\(rebuild it with lorakit quantize --model .* --base-dtype ${dtype}\\)`));
      const changed = (await outputs(dir, { baseDtype: dtype, useSavedBase: false })).out;
      assert.notDeepEqual(changed, selfQuantized, 'the changed weight changes the outputs');
      assert.deepEqual(stale.out, changed);
      // rebuilt: used again
      await runQuantizeJob({ model: dir, baseDtype: dtype });
      assert.equal((await outputs(dir, { baseDtype: dtype })).savedBase, cache);
    });
  }
}

test('lorakit quantize refuses fp32 and the bundled model', async () => {
  await assert.rejects(runQuantizeJob({ model: copyFixture('bert'), baseDtype: 'fp32' }), /--base-dtype fp32 is the model as it is: give the quantized form to save \(int8, nf4 or int4\)/);
  await assert.rejects(runQuantizeJob({ model: 'use', baseDtype: 'int8' }), /the bundled model has no folder to save beside/);
});

// One LoRA step on the base loaded from the saved file = the same step on a base quantized at load, bit for bit
// (the adapter after the step holds the backward through the frozen weights: int4's transposed copy is rebuilt from the saved codes).
for (const dtype of ['nf4', 'int4'] as const) {
  for (const [name, task, record] of [['llama-tiny', 'causal-lm', (t: string) => ({ text: t })], ['bert', 'embed', (t: string) => ({ anchor: t, positive: `${t} again` })]] as const) {
    test(`${name}: one LoRA ${task} step on the ${dtype} base from the saved file equals the step on a base quantized at load`, async () => {
      const dir = copyFixture(name);
      const data = path.join(dir, 'train.jsonl');
      fs.writeFileSync(data, ['once upon a time there lived a king', 'what is this, a good movie'].map((t) => JSON.stringify(record(t))).join('\n') + '\n');
      await runQuantizeJob({ model: dir, baseDtype: dtype });
      assert.equal((await loadModel(dir, undefined, { baseDtype: dtype })).savedBase, path.join(dir, `lorakit-base.${dtype}.safetensors`), 'the job below loads from the saved file');
      const step = async (out: string) => {
        const r = await runTrainJob({ task, model: dir, data, baseDtype: dtype, method: 'lora', methodConfig: { r: 4, lora_alpha: 8 }, epochs: 1, lr: 0.02, batchSize: 2, seed: 3, threads: 1, out: path.join(dir, out) }, silentUi);
        return { loss: r.epochLosses[0], steps: r.steps, adapter: readSafetensors(path.join(dir, out, 'adapter', 'adapter_model.safetensors')).tensors };
      };
      const fromFile = await step('from-file');
      fs.rmSync(path.join(dir, `lorakit-base.${dtype}.safetensors`));
      const selfQuantized = await step('self-quantized');
      assert.equal(fromFile.steps, 1);
      assert.ok(Number.isFinite(fromFile.loss) && fromFile.loss > 0, `loss ${fromFile.loss}`);
      assert.equal(fromFile.loss, selfQuantized.loss);
      assert.ok(fromFile.adapter.size > 0);
      assert.deepEqual(fromFile.adapter, selfQuantized.adapter);
    });
  }
}

test('lorakit quantize on the command line: writes the saved form (int8 by default, nf4 and int4 when asked) and says what it saved; --help names the 4-bit forms\' arrays', async () => {
  const dir = copyFixture('bert');
  const lines: string[] = [];
  const log = console.log;
  console.log = (m: string) => lines.push(m);
  try {
    await makeProgram().exitOverride().parseAsync(['node', 'lorakit', 'quantize', '--model', dir]);
    for (const d of ['nf4', 'int4']) await makeProgram().exitOverride().parseAsync(['node', 'lorakit', 'quantize', '--model', dir, '--base-dtype', d]);
  } finally {
    console.log = log;
  }
  for (const [i, d] of SAVED_DTYPES.entries()) {
    assert.match(lines[i], new RegExp(`^\\d+ weights as ${d}: [\\d.]+ MiB \\([\\d.]+ MiB as float32\\) → .*lorakit-base\\.${d}\\.safetensors \\([\\d.]+ MiB\\) in [\\d.]+ s$`));
    assert.equal((await loadModel(dir, undefined, { baseDtype: d })).savedBase, path.join(dir, `lorakit-base.${d}.safetensors`));
  }
  const help = makeProgram().commands.find((c) => c.name() === 'quantize')!.helpInformation().replace(/\s+/g, ' ');
  assert.match(help, /nf4 the packed 4-bit codes and each block's absmax; int4 the packed 4-bit codes and each tile's scale and zero point/);
});

test('every method runs on a loaded-int8 base (logits within 5 % of the dequantized twin\'s) and merges into the dequantized weight exactly as on the twin', async () => {
  const dir = path.join(FIX, 'llama-tiny');
  const q = await loadModel(dir, 'decoder', { baseDtype: 'int8' });
  const twin = dequantizedTwin((await loadModel(dir, 'decoder')).model, q.model);
  for (const [name, m] of Object.entries(METHODS)) {
    const make = (mm: typeof twin) => new AdapterSet(m, m.schema.parse({}), mm.sites, mm.weights, { targetModules: ['q_proj', 'v_proj'], headNames: mm.headNames, seed: 1 });
    const [a, b] = [make(q.model), make(twin)];
    const [la, lb] = [await outputOf(q.model, [[1, 5, 9, 3]], a), await outputOf(twin, [[1, 5, 9, 3]], b)];
    let err = 0, ref = 0;
    for (let i = 0; i < lb.length; i++) (err = Math.max(err, Math.abs(la[i] - lb[i]))), (ref = Math.max(ref, Math.abs(lb[i])));
    assert.ok(err < 0.05 * ref, `${name}: logits on int8 vs the twin: max |Δ| ${err}, max |logit| ${ref}`);
    if (!m.deltaWeight) continue;
    const [wa, wb] = [a.mergeInto(q.model.weights), b.mergeInto(twin.weights)];
    for (const s of a.targets) assert.deepEqual(wa.get(s.weightKey)!.data, wb.get(s.weightKey)!.data, `${name}: merged ${s.name}`);
  }
});

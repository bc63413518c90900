// Round trips both ways against tools/reference/peft_reference.py (PEFT's
// semantics reproduced in plain PyTorch): lorakit loads "PEFT-written"
// adapters (LoRA, rsLoRA, DoRA, modules_to_save, rank/alpha_pattern,
// bias=lora_only) and gives the reference's outputs, merged and unmerged; the
// files lorakit writes have the reference's keys and shapes, and (where
// python3 + torch exist) the reference loads them with no missing/unexpected
// keys and the same outputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { dora } from '../src/adapters/dora/index.ts';
import { TargetError } from '../src/adapters/targets.ts';
import { loadPeftAdapter, saveAdapter, AdapterLoadError } from '../src/peft/adapter_files.ts';
import { buildForwardGraph } from '../src/serve/peft_model.ts';
import { grad } from '../src/autodiff/grad.ts';
import * as op from '../src/graph/ops.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { PEFT_REF, refBatch, refInputs, refLogits, tinyModel } from './helpers/tiny_model.ts';
import { PY, requireTorch, torchSkip } from './helpers/torch.ts';
import { maxAbsDiff } from './helpers/arrays.ts';

const CASES = ['lora', 'rslora', 'dora', 'modules_to_save', 'rank_pattern', 'lora_only_bias'];
const SCRIPT = path.join(PEFT_REF, '..', '..', '..', 'tools', 'reference', 'peft_reference.py');

function pythonCheck(dir: string) {
  requireTorch();
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-pycheck-')), 'out.json');
  execFileSync(PY, [SCRIPT, '--check', dir, '--out', out], { stdio: 'inherit' });
  return JSON.parse(fs.readFileSync(out, 'utf8'));
}

for (const name of CASES) {
  test(`PEFT → lorakit: ${name} adapter gives the reference outputs (unmerged and merged)`, async (t) => {
    const model = tinyModel();
    const expected = JSON.parse(fs.readFileSync(path.join(PEFT_REF, name, 'expected.json'), 'utf8'));
    const warnings: string[] = [];
    const loaded = loadPeftAdapter(model, path.join(PEFT_REF, name), { warn: (m) => warnings.push(m) });
    assert.deepEqual(warnings, [], 'a PEFT 0.20 config has only known fields');
    if (name === 'dora') assert.equal(loaded.set.method.name, 'dora');
    const un = await refLogits(model, loaded.set);
    assert.ok(maxAbsDiff(un, refInputs.base_logits) > 1e-2, 'the adapter must change outputs');
    assert.ok(maxAbsDiff(un, expected.unmerged) < 1e-5, `unmerged max |Δ| ${maxAbsDiff(un, expected.unmerged)}`);
    const merged = await refLogits(model.withWeights(loaded.set.mergeInto(model.weights)));
    assert.ok(maxAbsDiff(merged, expected.merged) < 1e-5, `merged max |Δ| ${maxAbsDiff(merged, expected.merged)}`);

    // Gradients w.r.t. every adapter tensor (DoRA: the norm is detached, as in PEFT).
    const { graph } = buildForwardGraph(model, loaded.set.linear({ training: false }));
    const out = graph.outputs[0].value;
    const n = refBatch.B * 3;
    const coef = Float32Array.from({ length: n }, (_, i) => i / n - 0.5);
    const loss = op.reduceSum(op.mul(out, graph.const(coef, [refBatch.B, 3], 'float32')), [0, 1], false);
    const params = graph.params();
    grad(loss, params).forEach((gv, i) => graph.output(`grad.${params[i].leaf!.name}`, gv));
    const cg = await CompiledGraph.compile(graph, { threads: 1 });
    const feeds: Record<string, any> = { input_ids: { data: refBatch.ids, dims: [refBatch.B, refBatch.T] }, attention_mask: { data: refBatch.mask, dims: [refBatch.B, refBatch.T] } };
    for (const [k, v] of loaded.set.params) feeds[k] = { data: v, dims: loaded.set.shapes.get(k)! };
    const res = await cg.run(feeds);
    await cg.release();
    assert.deepEqual(params.map((p) => p.leaf!.name).sort(), Object.keys(expected.grads).sort());
    for (const [k, gref] of Object.entries(expected.grads as Record<string, number[]>)) {
      const got = res[`grad.${k}`].data as Float32Array;
      const scale = Math.max(1, ...gref.map(Math.abs));
      assert.ok(maxAbsDiff(got, gref) < 1e-4 * scale, `grad ${k}: max |Δ| ${maxAbsDiff(got, gref)}`);
    }

    // lorakit → PEFT: the same adapter written by lorakit has the reference's keys and shapes.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lorakit-ref-${name}-`));
    saveAdapter(dir, loaded.set, { baseModel: 'lorakit-tiny-reference', peftConfig: loaded.peft });
    const { readSafetensorsHeader } = await import('../src/io/safetensors.ts');
    const hdr = readSafetensorsHeader(path.join(dir, 'adapter_model.safetensors'));
    assert.deepEqual(hdr.metadata, { format: 'pt' });
    assert.deepEqual(Object.fromEntries([...hdr.tensors].map(([k, v]) => [k, v.shape]).sort()), expected.keys);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
    const ref = JSON.parse(fs.readFileSync(path.join(PEFT_REF, name, 'adapter_config.json'), 'utf8'));
    for (const k of ['r', 'lora_alpha', 'use_rslora', 'use_dora', 'bias', 'rank_pattern', 'alpha_pattern', 'modules_to_save', 'peft_type']) {
      assert.deepEqual(cfg[k], ref[k], `config field ${k}`);
    }
    assert.equal(cfg.inference_mode, true);
    await t.test('the PyTorch reference reads the file lorakit wrote: no missing / unexpected keys, the same outputs', { skip: torchSkip }, () => {
      const py = pythonCheck(dir);
      assert.deepEqual([py.missing, py.unexpected], [[], []]);
      assert.ok(maxAbsDiff(py.logits, un) < 1e-5, `reference on lorakit's file: max |Δ| ${maxAbsDiff(py.logits, un)}`);
    });
  });
}

test('lorakit-trained adapters (LoRA, DoRA, rank_pattern) load in the reference with the same outputs', { skip: torchSkip }, async () => {
  const model = tinyModel();
  for (const [method, extra] of [[lora, {}], [dora, {}], [lora, { use_rslora: true }]] as const) {
    const cfg = method.schema.parse({ r: 3, lora_alpha: 5, init_lora_weights: false, ...extra });
    const set = new AdapterSet(method, cfg, model.sites, model.weights, {
      targetModules: ['q_proj', 'down_proj'],
      seed: 7,
      siteConfig: (site, c) => (site.name.endsWith('down_proj') ? { ...c, r: 2 } : c),
      modulesToSave: ['classifier'],
    });
    set.params.get('base_model.model.classifier.bias')![0] += 0.5;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-trained-'));
    saveAdapter(dir, set, { baseModel: 'tiny', peftConfig: { config: { rank_pattern: { down_proj: 2 } } as any, unknown: {} } });
    const ours = await refLogits(model, set);
    const py = pythonCheck(dir);
    assert.deepEqual([py.missing, py.unexpected], [[], []]);
    assert.ok(maxAbsDiff(py.logits, ours) < 1e-5, `${method.name}: max |Δ| ${maxAbsDiff(py.logits, ours)}`);
  }
});

function copyCase(name: string, edit: (cfg: any) => void) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-bad-'));
  for (const f of ['adapter_model.safetensors', 'adapter_config.json']) fs.copyFileSync(path.join(PEFT_REF, name, f), path.join(dir, f));
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
  edit(cfg);
  fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(cfg));
  return dir;
}

test('an adapter whose shapes do not fit fails naming the module and both shapes', () => {
  const dir = copyCase('lora', (c) => { c.r = 2; });
  assert.throws(() => loadPeftAdapter(tinyModel(), dir), (e: Error) =>
    e instanceof AdapterLoadError && /model\.layers\.0\.self_attn\.(q|v)_proj/.test(e.message) && /\[4,8\]/.test(e.message) && /\[2,8\]/.test(e.message));
});

test('a config naming modules the model does not have fails naming them', () => {
  const dir = copyCase('lora', (c) => { c.target_modules = ['q_proj', 'k_proj']; });
  assert.throws(() => loadPeftAdapter(tinyModel(), dir), (e: Error) => e instanceof TargetError && /k_proj/.test(e.message));
});

test('unknown config fields are kept and warned about; the minimum config loads', () => {
  const dir = copyCase('lora', (c) => { c.some_future_field = { x: 1 }; });
  const warnings: string[] = [];
  const loaded = loadPeftAdapter(tinyModel(), dir, { warn: (m) => warnings.push(m) });
  assert.match(warnings.join('\n'), /some_future_field/);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-keep-'));
  saveAdapter(out, loaded.set, { baseModel: 'x', peftConfig: loaded.peft });
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8')).some_future_field, { x: 1 });
  const min = copyCase('lora', () => {});
  fs.writeFileSync(path.join(min, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', target_modules: ['q_proj', 'v_proj'], r: 4, lora_alpha: 8 }));
  assert.equal(loadPeftAdapter(tinyModel(), min).set.targets.length, 4);
});

test('modules_to_save of a module that is no linear site (the embedding table): a wrong shape fails naming both shapes, a right one is the trained copy the model reads', async () => {
  const { readSafetensors, writeSafetensors } = await import('../src/io/safetensors.ts');
  for (const [rows, ok] of [[24, false], [20, true]] as const) {
    const dir = copyCase('lora', (c) => { c.modules_to_save = ['embed_tokens']; });
    const file = path.join(dir, 'adapter_model.safetensors');
    const t = readSafetensors(file).tensors;
    const all = new Map([...t].map(([k, v]) => [k, { dtype: 'F32' as const, shape: v.shape, data: v.data }]));
    all.set('base_model.model.model.embed_tokens.weight', { dtype: 'F32', shape: [rows, 8], data: new Float32Array(rows * 8) });
    writeSafetensors(file, all, { format: 'pt' });
    const warnings: string[] = [];
    if (ok) {
      const loaded = loadPeftAdapter(tinyModel(), dir, { warn: (m) => warnings.push(m) });
      assert.deepEqual(warnings, []);
      assert.equal(loaded.extraTensors.size, 0);
      const copy = loaded.set.params.get('base_model.model.model.embed_tokens.weight')!;
      assert.ok(copy.every((x) => x === 0), 'the stored (zero) table is the copy');
      // PEFT's ModulesToSaveWrapper: the model reads the copy (a zero table gives the same token vector everywhere).
      const logits = await refLogits(tinyModel(), loaded.set);
      const C = logits.length / refInputs.input_ids.length;
      for (let b = 1; b < refInputs.input_ids.length; b++) for (let j = 0; j < C; j++) assert.ok(Math.abs(logits[b * C + j] - logits[j]) < 1e-6);
    } else {
      assert.throws(() => loadPeftAdapter(tinyModel(), dir, { warn: () => {} }), (e: Error) => /model\.embed_tokens/.test(e.message) && /\[24,8\]/.test(e.message) && /\[20,8\]/.test(e.message));
    }
  }
});

// PEFT → lorakit for PEFT's own non-LoRA methods, written by
// tools/reference/peft_nonlora.py (PEFT's semantics in plain PyTorch): VeRA and
// RandLoRA as PEFT saves them with save_projection=True (frozen projections in
// the file as base_model.vera_A / randlora_A ..., sized for the largest adapted
// module and sliced per module) and without them (lorakit regenerates PEFT's
// from projection_prng_key), FourierFT with n_frequency_pattern (locations
// from torch.randperm, nothing stored). lorakit must give the reference's
// outputs, unmerged and merged, and keep PEFT's layout when it re-saves; the
// reference loads what lorakit writes (FourierFT trained in lorakit, VeRA /
// RandLoRA with their projections, and VeRA / RandLoRA created in lorakit with
// the projections regenerated from the config alone) with no missing /
// unexpected keys and the same outputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadPeftAdapter, readAdapter, saveAdapter, AdapterLoadError } from '../src/peft/adapter_files.ts';
import { mergeAdapters } from '../src/peft/export.ts';
import { writeSafetensors } from '../src/io/safetensors.ts';
import { PeftModel, TokenBatch } from '../src/serve/peft_model.ts';
import type { EncoderModel } from '../src/models/types.ts';
import { AdapterSet } from '../src/adapters/inject.ts';
import { PEFT_REF, refInputs, refLogits, tinyModel } from './helpers/tiny_model.ts';
import { maxAbsDiff } from './helpers/arrays.ts';
import { PY, requireTorch, torchSkip } from './helpers/torch.ts';
import { fourierft } from '../src/adapters/fourierft/index.ts';
import { vera } from '../src/adapters/vera/index.ts';
import { randlora } from '../src/adapters/randlora/index.ts';
import type { AdapterMethod } from '../src/adapters/types.ts';

const FIX = path.join(PEFT_REF, '..', 'peft_nonlora');

for (const name of ['vera', 'randlora', 'fourierft']) {
  test(`PEFT → lorakit: ${name} gives the reference outputs (unmerged, merged) and re-saves to the same file layout`, async () => {
    const model = tinyModel();
    const dir = path.join(FIX, name);
    const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
    const warnings: string[] = [];
    const loaded = loadPeftAdapter(model, dir, { warn: (m) => warnings.push(m) });
    assert.deepEqual(warnings, [], "PEFT's config fields are all known");
    assert.equal(loaded.set.method.name, name);
    const un = await refLogits(model, loaded.set);
    assert.ok(maxAbsDiff(un, refInputs.base_logits) > 1e-2, 'the adapter must change outputs');
    assert.ok(maxAbsDiff(un, expected.unmerged) < 1e-5, `unmerged max |Δ| ${maxAbsDiff(un, expected.unmerged)}`);
    const merged = await refLogits(model.withWeights(mergeAdapters(model, [dir], undefined, () => {})));
    assert.ok(maxAbsDiff(merged, expected.merged) < 1e-5, `merged max |Δ| ${maxAbsDiff(merged, expected.merged)}`);

    // lorakit's save keeps PEFT's keys, shapes and fields (projections, n_frequency_pattern) and reloads to the same outputs.
    const out = fs.mkdtempSync(path.join(os.tmpdir(), `lorakit-${name}-resave-`));
    saveAdapter(out, loaded.set, { baseModel: 'lorakit-tiny-reference', peftConfig: loaded.peft });
    const again = readAdapter(out);
    assert.equal(again.config.peft_type, cfg.peft_type);
    for (const f of ['save_projection', 'n_frequency_pattern']) if (f in cfg) assert.deepEqual(again.config[f], cfg[f], f);
    assert.deepEqual(Object.fromEntries([...again.tensors].map(([k, t]) => [k, t.shape]).sort()), expected.keys);
    assert.equal(maxAbsDiff(await refLogits(model, loadPeftAdapter(model, out).set), un), 0);
  });
}

for (const name of ['vera', 'randlora']) {
  test(`PEFT → lorakit: ${name} without stored projections (save_projection false) gives PEFT's outputs from the seed; stored ones are used as stored; save_projection without them is refused`, async () => {
    const model = tinyModel();
    const dir = path.join(FIX, name);
    const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
    const t = readAdapter(dir).tensors;
    const write = (d: string, config: object, tensors: [string, { shape: number[]; data: Float32Array }][]) => {
      fs.writeFileSync(path.join(d, 'adapter_config.json'), JSON.stringify(config));
      writeSafetensors(path.join(d, 'adapter_model.safetensors'), Object.fromEntries(tensors.map(([k, v]) => [k, { dtype: 'F32' as const, ...v }])), { format: 'pt' });
    };
    // The projections: base_model.<name>_A/_B, and (RandLoRA, as PEFT stores it) their copies under each module.
    const projection = (k: string) => !k.startsWith('base_model.model.') || new RegExp(`\\.${name}_[AB]$`).test(k);
    const seeded = fs.mkdtempSync(path.join(os.tmpdir(), `lorakit-${name}-seeded-`));
    write(seeded, { ...cfg, save_projection: false }, [...t].filter(([k]) => !projection(k)));
    const fromSeed = await refLogits(model, loadPeftAdapter(model, seeded).set);
    assert.ok(maxAbsDiff(fromSeed, expected.unmerged) < 1e-5, `seed-only vs PEFT max |Δ| ${maxAbsDiff(fromSeed, expected.unmerged)}`);
    // Stored projections win over the seed: perturbed ones change the outputs.
    const perturbed = fs.mkdtempSync(path.join(os.tmpdir(), `lorakit-${name}-perturbed-`));
    write(perturbed, cfg, [...t].map(([k, v]) => [k, !projection(k) ? v : { shape: v.shape, data: v.data.map((x, i) => x * (1 + 0.2 * Math.sin(i))) }]));
    assert.ok(maxAbsDiff(await refLogits(model, loadPeftAdapter(model, perturbed).set), expected.unmerged) > 1e-4);
    write(seeded, cfg, [...t].filter(([k]) => !projection(k)));
    assert.throws(() => loadPeftAdapter(model, seeded), (e: Error) => e instanceof AdapterLoadError && e.message.includes(`base_model.${name}_A`));
  });
}

test('PEFT fields lorakit does not implement are refused by name; unknown fields are kept and reported', () => {
  const dir = path.join(FIX, 'randlora');
  const copy = (over: Record<string, unknown>) => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-randlora-cfg-'));
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
    fs.writeFileSync(path.join(d, 'adapter_config.json'), JSON.stringify({ ...cfg, ...over }));
    fs.copyFileSync(path.join(dir, 'adapter_model.safetensors'), path.join(d, 'adapter_model.safetensors'));
    return d;
  };
  assert.throws(() => loadPeftAdapter(tinyModel(), copy({ sparse: true })), /sparse = true is not supported/);
  assert.throws(() => loadPeftAdapter(tinyModel(), copy({ randlora_dropout: 0.1 })), /randlora_dropout/);
  assert.throws(() => loadPeftAdapter(tinyModel(), copy({ bias: 'some' })), /bias 'some'/);
  const warnings: string[] = [];
  loadPeftAdapter(tinyModel(), copy({ brand_new_field: 1 }), { warn: (m) => warnings.push(m) });
  assert.ok(warnings.some((w) => /brand_new_field/.test(w)), 'unknown fields are reported, not dropped silently');
});

test('a re-saved VeRA / RandLoRA / FourierFT file keeps exclude_modules and layers_to_transform, so it reloads onto the same modules', async () => {
  const model = tinyModel();
  for (const name of ['vera', 'randlora', 'fourierft']) {
    const dir = path.join(FIX, name);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
    const d = fs.mkdtempSync(path.join(os.tmpdir(), `lorakit-${name}-exclude-`));
    // Layer 1's up_proj left out by exclude_modules, and layer 0 only by layers_to_transform: its tensors leave the file.
    fs.writeFileSync(path.join(d, 'adapter_config.json'), JSON.stringify({ ...cfg, exclude_modules: ['model.layers.0.mlp.up_proj'], layers_to_transform: [0] }));
    const t = readAdapter(dir).tensors;
    const kept = [...t].filter(([k]) => !k.startsWith('base_model.model.') || (k.includes('layers.0.') && !k.includes('layers.0.mlp.up_proj')));
    writeSafetensors(path.join(d, 'adapter_model.safetensors'), Object.fromEntries(kept.map(([k, v]) => [k, { dtype: 'F32' as const, ...v }])), { format: 'pt' });
    const loaded = loadPeftAdapter(model, d, { warn: () => {} });
    const targets = loaded.set.targets.map((s) => s.name);
    assert.ok(targets.length > 0 && targets.every((n) => n.includes('layers.0.') && !n.includes('up_proj')), `${name}: ${targets}`);
    const out = fs.mkdtempSync(path.join(os.tmpdir(), `lorakit-${name}-exclude-resave-`));
    saveAdapter(out, loaded.set, { baseModel: 'lorakit-tiny-reference', peftConfig: loaded.peft });
    const saved = readAdapter(out).config;
    assert.deepEqual([saved.exclude_modules, saved.layers_to_transform], [['model.layers.0.mlp.up_proj'], [0]], name);
    const again = loadPeftAdapter(model, out, { warn: () => {} });
    assert.deepEqual(again.set.targets.map((s) => s.name), targets);
    assert.equal(maxAbsDiff(await refLogits(model, again.set), await refLogits(model, loaded.set)), 0);
  }
});

test("bias='vera_only' as PEFT saves it (no biases in the file): the base biases are used, with a warning", async () => {
  const dir = path.join(FIX, 'vera');
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-vera-bias-'));
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
  fs.writeFileSync(path.join(d, 'adapter_config.json'), JSON.stringify({ ...cfg, bias: 'vera_only' }));
  fs.copyFileSync(path.join(dir, 'adapter_model.safetensors'), path.join(d, 'adapter_model.safetensors'));
  const warnings: string[] = [];
  const model = tinyModel();
  const loaded = loadPeftAdapter(model, d, { warn: (m) => warnings.push(m) });
  assert.equal(loaded.set.baseCopyKeys().length, loaded.set.targets.length, 'one trainable bias per adapted module');
  assert.ok(warnings.some((w) => /bias 'vera_only'.*base model's biases/.test(w)), warnings.join('\n'));
  const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
  assert.ok(maxAbsDiff(await refLogits(model, loaded.set), expected.unmerged) < 1e-5);
});


const SCRIPT = path.join(PEFT_REF, '..', '..', '..', 'tools', 'reference', 'peft_nonlora.py');

/** The reference loads a folder as PEFT would: logits, missing / unexpected keys. */
function pythonCheck(dir: string, regen = false) {
  requireTorch();
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-pycheck-')), 'out.json');
  execFileSync(PY, [SCRIPT, '--check', dir, '--out', out, ...(regen ? ['--regen'] : [])], { stdio: 'inherit' });
  return JSON.parse(fs.readFileSync(out, 'utf8'));
}

test('lorakit → PEFT: a FourierFT adapter trained in lorakit, and VeRA/RandLoRA trained further, load in the reference with the same outputs', { skip: torchSkip }, async () => {
  const model = tinyModel();
  const mine = new AdapterSet(fourierft, fourierft.schema.parse({ n_frequency: 16, scaling: 2, random_loc_seed: 11 }), model.sites, model.weights, { targetModules: ['q_proj', 'down_proj'], seed: 4 });
  for (const v of mine.params.values()) for (let i = 0; i < v.length; i++) v[i] = Math.sin(3 * i + 1);
  const sets: [string, AdapterSet, object?][] = [['fourierft', mine]];
  for (const name of ['vera', 'randlora']) {
    const loaded = loadPeftAdapter(model, path.join(FIX, name));
    for (const v of loaded.set.params.values()) for (let i = 0; i < v.length; i++) v[i] *= 1 + 0.1 * Math.cos(i); // "trained further"
    sets.push([name, loaded.set, loaded.peft]);
  }
  for (const [name, set, peft] of sets) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lorakit-${name}-to-peft-`));
    saveAdapter(dir, set, { baseModel: 'lorakit-tiny-reference', peftConfig: peft as never });
    const ref = pythonCheck(dir);
    assert.deepEqual([ref.missing, ref.unexpected], [[], []], `${name}: keys as PEFT expects them`);
    assert.equal(ref.metadata.format, 'pt');
    const ours = await refLogits(model, set);
    assert.ok(maxAbsDiff(ours, refInputs.base_logits) > 1e-2, `${name}: the adapter must change outputs`);
    assert.ok(maxAbsDiff(ref.logits, ours) < 1e-5, `${name}: reference vs lorakit max |Δ| ${maxAbsDiff(ref.logits, ours)}`);
  }
});

test('lorakit → PEFT: VeRA / RandLoRA created in lorakit reproduce in PEFT from the seed alone (projections regenerated, not read) and from the stored ones', { skip: torchSkip }, async () => {
  const model = tinyModel();
  // Targets whose largest [out, in] is no single module's shape, so the shared tensors are sliced both ways.
  const cases: [AdapterMethod, Record<string, unknown>, string[]][] = [
    [vera, { r: 6, projection_prng_key: 2 ** 32 + 9, d_initial: 0.1 }, ['v_proj', 'up_proj', 'down_proj']],
    [randlora, { r: 5, randlora_alpha: 10, projection_prng_key: 3 }, ['q_proj', 'up_proj', 'down_proj']],
  ];
  for (const [method, config, targets] of cases) {
    const set = new AdapterSet(method, method.schema.parse(config), model.sites, model.weights, { targetModules: targets, seed: 2 });
    for (const v of set.params.values()) for (let i = 0; i < v.length; i++) v[i] = v[i] * (1 + 0.5 * Math.sin(3 * i)) + 0.05 * Math.sin(7 * i + v.length); // "trained"
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lorakit-${method.name}-seed-to-peft-`));
    saveAdapter(dir, set, { baseModel: 'lorakit-tiny-reference' });
    const saved = readAdapter(dir);
    assert.equal(saved.config.save_projection, true, `${method.name}: PEFT's default save_projection`);
    assert.ok(saved.tensors.has(`base_model.${method.name}_A`) && saved.tensors.has(`base_model.${method.name}_B`));
    const ours = await refLogits(model, set);
    assert.ok(maxAbsDiff(ours, refInputs.base_logits) > 1e-2, `${method.name}: the adapter must change outputs (max |Δ| ${maxAbsDiff(ours, refInputs.base_logits)})`);
    const regen = pythonCheck(dir, true);
    assert.deepEqual([regen.missing, regen.unexpected], [[], []]);
    assert.equal(regen.stored_vs_regenerated, 0, `${method.name}: the stored projections are PEFT's own, bit for bit`);
    assert.ok(maxAbsDiff(regen.logits, ours) < 1e-5, `${method.name} (regenerated): reference vs lorakit max |Δ| ${maxAbsDiff(regen.logits, ours)}`);
    const stored = pythonCheck(dir);
    assert.ok(maxAbsDiff(stored.logits, ours) < 1e-5, `${method.name} (stored): reference vs lorakit max |Δ| ${maxAbsDiff(stored.logits, ours)}`);
  }
});

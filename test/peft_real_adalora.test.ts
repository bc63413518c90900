// AdaLoRA against real Hugging Face PEFT 0.20, beyond the checks every case of
// test/peft_real.test.ts gets (warnings, logits 1e-4, merge_and_unload 1e-5).
// PEFT → lorakit (test/fixtures/peft_real/peft/adalora_*, made by
// tools/reference/peft_real.py: PEFT trained each adapter itself with
// update_and_allocate, so the masks and rank_pattern are PEFT's): every module
// at the rank PEFT's loader resizes it to, PEFT's logits to 1e-5, lora_alpha 0
// scaled as PEFT scales a resized module, rank_pattern keys with the adapter
// name. lorakit → PEFT (peft_real/lorakit/adalora_*, written by
// tools/reference/lorakit_adapters.ts after lorakit's own allocator ran, read
// by PEFT with peft_real.py --lorakit): PEFT's logits on the folder are those
// of the adapter lorakit had in memory (1e-5), in the ADALORA form and as the
// pruned plain LoRA.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ADALORA_KEYS } from '../src/adapters/adalora/index.ts';
import { loadPeftAdapter, readAdapter } from '../src/peft/adapter_files.ts';
import { caseDirs, loadRealCase, logitsDiff, mergedWeights, REAL, runCase, type RealCase } from './helpers/peft_real.ts';
import { maxAbsDiff } from './helpers/arrays.ts';
import { LORAKIT_CASES, writeLorakitCase } from '../tools/reference/lorakit_adapters.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-peft-real-adalora-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const PREFIX = 'base_model.model.';
const kept = (keep: boolean[]) => keep.filter(Boolean).length;
const headNames = (c: RealCase) => ('headNames' in c.model ? c.model.headNames : undefined);
const configOf = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));

/** A copy of an adapter folder with its adapter_config.json edited. */
function withConfig(src: string, name: string, edit: (cfg: any) => void): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(src, 'adapter_model.safetensors'), path.join(dir, 'adapter_model.safetensors'));
  const cfg = configOf(src);
  edit(cfg);
  fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(cfg, null, 2));
  return dir;
}

const peftCases = caseDirs('peft').filter((d) => path.basename(d).startsWith('adalora_'));

test('the PEFT-made AdaLoRA fixtures cover Llama, GPT-2 Conv1D, BERT SEQ_CLS, a save midway through allocation and lora_alpha 0, with pruned and rank-0 modules', () => {
  assert.deepEqual(peftCases.map((d) => path.basename(d)), ['adalora_bert_seq_cls', 'adalora_gpt2', 'adalora_llama', 'adalora_llama_alpha0', 'adalora_llama_midway']);
  const patterns = peftCases.map((d) => configOf(path.join(d, 'adapter')).rank_pattern as Record<string, boolean[]>);
  for (const p of patterns) assert.ok(Object.values(p).some((k) => kept(k) < k.length), 'every case drops triplets');
  assert.ok(patterns.some((p) => Object.values(p).some((k) => kept(k) === 0)), 'some module keeps none');
});

for (const dir of peftCases) {
  const name = path.basename(dir);
  test(`PEFT 0.20 AdaLoRA → lorakit: ${name}: each module at the rank PEFT resizes it to, PEFT's logits and merged weights (1e-5)`, async (t) => {
    const c = await loadRealCase(dir);
    const folder = path.join(dir, 'adapter');
    const pattern = configOf(folder).rank_pattern as Record<string, boolean[]>;
    const file = readAdapter(folder).tensors;
    const { set } = loadPeftAdapter(c.model, folder, { warn: (m) => assert.fail(m), headNames: headNames(c) });
    // PEFT adapted exactly the modules its rank_pattern names; its file holds each at its kept rank.
    assert.deepEqual(set.targets.map((s) => `${s.name}.lora_E`).sort(), Object.keys(pattern).sort());
    for (const site of set.targets) {
      const k = kept(pattern[`${site.name}.lora_E`]);
      const key = (sfx: string) => `${PREFIX}${site.name}.${sfx}`;
      assert.deepEqual(file.get(key(ADALORA_KEYS.E))!.shape, [k, 1], site.name);
      assert.deepEqual(set.shapes.get(key(ADALORA_KEYS.E)), [k, 1], site.name);
      assert.deepEqual(set.shapes.get(key(ADALORA_KEYS.A)), [k, site.inFeatures], site.name);
      assert.deepEqual(set.shapes.get(key(ADALORA_KEYS.B)), [site.outFeatures, k], site.name);
    }
    const un = await runCase(c, set);
    const dLogits = logitsDiff(c, un.logits);
    assert.ok(dLogits < 1e-5, `logits max |Δ| ${dLogits}`);
    if (un.hidden) assert.ok(logitsDiff(c, un.hidden, 'hidden') < 1e-5, `hidden max |Δ| ${logitsDiff(c, un.hidden, 'hidden')}`);
    const merged = set.mergeInto(c.model.weights);
    let dMerged = 0;
    for (const [k, ref] of mergedWeights(c)) dMerged = Math.max(dMerged, maxAbsDiff(merged.get(k)!.data, ref));
    assert.ok(dMerged < 1e-5, `merged weights max |Δ| ${dMerged}`);
    const dMergedLogits = logitsDiff(c, (await runCase(c, null, merged)).logits, 'logits_merged');
    assert.ok(dMergedLogits < 1e-5, `merged logits max |Δ| ${dMergedLogits}`);
    t.diagnostic(`${name}: logits ${dLogits.toExponential(2)}, merged weights ${dMerged.toExponential(2)}, merged logits ${dMergedLogits.toExponential(2)}`);
  });
}

test("lora_alpha 0: PEFT scales a module it resized by rank_pattern by its kept rank (not init_r): lorakit does; scaling every module by init_r instead misses PEFT's logits", async (t) => {
  const dir = path.join(REAL, 'peft', 'adalora_llama_alpha0');
  const c = await loadRealCase(dir);
  const folder = path.join(dir, 'adapter');
  const cfg = configOf(folder);
  assert.equal(cfg.lora_alpha, 0);
  const { set } = loadPeftAdapter(c.model, folder, { warn: (m) => assert.fail(m) });
  assert.ok(logitsDiff(c, (await runCase(c, set)).logits) < 1e-5);
  // The same tensors with lora_alpha = init_r: scaling init_r/(init_r + 1e-5) on every module, as before the resize.
  const asBuilt = withConfig(folder, 'alpha-init-r', (x) => (x.lora_alpha = x.init_r));
  const wrong = loadPeftAdapter(c.model, asBuilt, { warn: (m) => assert.fail(m) }).set;
  const off = logitsDiff(c, (await runCase(c, wrong)).logits);
  assert.ok(off > 1e-2, `the fixture tells the two rules apart (${off})`);
  t.diagnostic(`scaled by init_r instead: logits max |Δ| ${off.toExponential(2)}`);
});

test("rank_pattern keys with the adapter name ('<module>.lora_E.default', as update_and_allocate leaves them): PEFT's loader takes them (same logits, checked once with PEFT 0.20), so does lorakit", async () => {
  const dir = path.join(REAL, 'peft', 'adalora_llama');
  const c = await loadRealCase(dir);
  const named = withConfig(path.join(dir, 'adapter'), 'pattern-default', (x) => {
    x.rank_pattern = Object.fromEntries(Object.entries(x.rank_pattern).map(([k, v]) => [`${k}.default`, v]));
  });
  const { set } = loadPeftAdapter(c.model, named, { warn: (m) => assert.fail(m) });
  assert.ok(logitsDiff(c, (await runCase(c, set)).logits) < 1e-5);
});

test("lora_alpha absent: PEFT's default 8 (PEFT 0.20 read the GPT-2 folder without it with the same logits, checked once), so lorakit's too", async () => {
  const dir = path.join(REAL, 'peft', 'adalora_gpt2');
  const c = await loadRealCase(dir);
  assert.equal(configOf(path.join(dir, 'adapter')).lora_alpha, 8);
  const absent = withConfig(path.join(dir, 'adapter'), 'alpha-absent', (x) => delete x.lora_alpha);
  const { set } = loadPeftAdapter(c.model, absent, { warn: (m) => assert.fail(m), headNames: headNames(c) });
  assert.equal(set.config.lora_alpha, 8);
  assert.ok(logitsDiff(c, (await runCase(c, set)).logits) < 1e-5);
});

const lorakitCases = Object.keys(LORAKIT_CASES).filter((n) => n.startsWith('adalora_'));

for (const name of lorakitCases) {
  test(`lorakit AdaLoRA → PEFT 0.20: ${name}: PEFT's logits on the folder are the trained adapter's (1e-5)`, async (t) => {
    const dir = path.join(REAL, 'lorakit', name);
    const trained = await writeLorakitCase(name, path.join(tmp, 'lorakit', name));
    for (const f of fs.readdirSync(path.join(dir, 'adapter'))) assert.ok(fs.readFileSync(path.join(tmp, 'lorakit', name, 'adapter', f)).equals(fs.readFileSync(path.join(dir, 'adapter', f))), `${f} is not what PEFT read`);
    const c = await loadRealCase(dir, 'peft.safetensors');
    const cfg = configOf(path.join(dir, 'adapter'));
    const seen = JSON.parse(fs.readFileSync(path.join(dir, 'peft.json'), 'utf8')).config_as_peft_reads_it;
    assert.deepEqual(seen.rank_pattern, cfg.rank_pattern, 'PEFT read the rank_pattern lorakit wrote');
    const file = readAdapter(path.join(dir, 'adapter')).tensors;
    if (cfg.peft_type === 'ADALORA') {
      // The triplets lorakit's allocator masked are not in the file: each module at its kept rank, as PEFT saves it.
      for (const site of trained.targets) assert.deepEqual(file.get(`${PREFIX}${site.name}.${ADALORA_KEYS.E}`)!.shape, [kept(cfg.rank_pattern[`${site.name}.lora_E`]), 1], site.name);
      if (LORAKIT_CASES[name].allocate!.steps < (cfg.total_step as number) - (cfg.tfinal as number)) {
        // Saved midway: the step after the last mask moved masked lora_E entries again; PEFT's save (and lorakit's)
        // drops them by rank_pattern, so the file is the trained adapter with those triplets off.
        let moved = 0;
        for (const site of trained.targets) {
          const E = trained.params.get(`${PREFIX}${site.name}.${ADALORA_KEYS.E}`)!;
          cfg.rank_pattern[`${site.name}.lora_E`].forEach((keep: boolean, i: number) => {
            if (!keep && E[i] !== 0) (moved++, (E[i] = 0));
          });
        }
        assert.ok(moved > 0, 'masked lora_E entries moved after the last mask');
      }
    } else {
      // The plain LoRA: a module per kept rank (rank_pattern, alpha_pattern), rank-0 modules left out.
      const ada = configOf(path.join(REAL, 'lorakit', name.replace(/_as_lora$/, ''), 'adapter'));
      assert.equal(cfg.peft_type, 'LORA');
      for (const [k, keep] of Object.entries(ada.rank_pattern as Record<string, boolean[]>)) {
        const module = k.replace(/\.lora_E$/, '');
        if (kept(keep)) assert.equal(cfg.rank_pattern[module], kept(keep), module);
        else assert.ok(cfg.exclude_modules.includes(module), `${module} (rank 0) excluded`);
      }
    }
    const d = logitsDiff(c, (await runCase(c, trained)).logits);
    assert.ok(d < 1e-5, `PEFT vs the trained adapter: logits max |Δ| ${d}`);
    t.diagnostic(`${name}: PEFT on the folder vs lorakit's trained adapter, logits max |Δ| ${d.toExponential(2)}`);
  });
}

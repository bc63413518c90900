// SG-LoRA (src/workflows/sg_lora/): the deterministic pieces against
// tools/reference/sg_lora.py (softmax(cos/τ) expert weights, the weighted
// merge Σ wᵢ·sᵢ·Bᵢ·Aᵢ and head), and the workflow on llama-tiny experts: build
// (PCA + CVAE trained by the one loop), generate by every method, each result
// a normal PEFT LoRA that loads on the base model; errors.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora, loraDelta } from '../src/adapters/lora/index.ts';
import { loadDecoder } from '../src/models/load_decoder.ts';
import { loadPeftAdapter, readAdapter, saveAdapter } from '../src/peft/adapter_files.ts';
import { Rng } from '../src/util/rng.ts';
import { similarityWeights, weightedMerge } from '../src/workflows/sg_lora/similarity.ts';
import { runSgLoraBuild, runSgLoraGenerate, type Embed } from '../src/workflows/sg_lora/jobs.ts';
import { flatten, layoutOf, readExpert } from '../src/workflows/sg_lora/library.ts';
import { PY, requireTorch, torchSkip } from './helpers/torch.ts';
import { maxRelErr as relErr } from './helpers/arrays.ts';

const FIX = JSON.parse(fs.readFileSync(new URL('./fixtures/sg_lora.json', import.meta.url), 'utf8'));
const LLAMA = new URL('./fixtures/hf/llama-tiny', import.meta.url).pathname;
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-sglora-'));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));


test('expert weights softmax(cos(e, eᵢ)/τ) and the merged ΔW = Σ wᵢ·sᵢ·Bᵢ·Aᵢ and head Σ wᵢ·hᵢ equal the PyTorch reference (1e-6)', () => {
  // Embeddings are float32 (the fixture stores their shortest float32 repr).
  const { cosines, weights } = similarityWeights(Float32Array.from(FIX.query), FIX.embeddings.map((e: number[]) => Float32Array.from(e)), FIX.tau);
  assert.ok(relErr(cosines, FIX.cosines) < 1e-9);
  assert.ok(relErr(weights, FIX.weights) < 1e-9);
  const experts = (FIX.experts as Record<string, { shape: number[]; data: number[] }>[]).map((t) => new Map(Object.entries(t).map(([k, v]) => [k, { shape: v.shape, data: Float32Array.from(v.data) }])));
  const { tensors, r } = weightedMerge(experts, weights, FIX.alphas.map((a: number) => a / FIX.r));
  assert.equal(r, 3 * FIX.r);
  for (const [m, [out, inn]] of Object.entries(FIX.modules as Record<string, [number, number]>)) {
    const A = tensors.get(`base_model.model.${m}.lora_A.weight`)!, B = tensors.get(`base_model.model.${m}.lora_B.weight`)!;
    assert.deepEqual([A.shape, B.shape], [[r, inn], [out, r]]);
    const dW = loraDelta(out, inn, r, 1, A.data, B.data); // the merged adapter's scaling: lora_alpha = r
    assert.ok(relErr(dW, FIX.delta[m]) < 1e-6, `${m}: ${relErr(dW, FIX.delta[m])}`);
  }
  assert.ok(relErr(tensors.get('base_model.model.classifier.weight')!.data, FIX.head) < 1e-6);
  assert.throws(() => similarityWeights(FIX.query, FIX.embeddings, 0), /temperature must be positive/);
});

// Four llama-tiny "experts": LoRAs of two task families whose factors differ by family, with descriptions.
const DESCRIPTIONS = ['sentiment of movie reviews', 'sentiment of product reviews', 'spam detection in email', 'spam detection in text messages'];
/** A fake sentence embedding: word-hash features (deterministic, no model needed). */
const fakeEmbed: Embed = async (texts) => texts.map((t) => {
  const v = new Float32Array(16);
  for (const w of t.toLowerCase().split(/\W+/).filter(Boolean)) v[[...w].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 16, 7)] += 1;
  return v;
});

async function makeExperts(): Promise<string[]> {
  const model = await loadDecoder(LLAMA);
  const dirs: string[] = [];
  for (const [i, d] of DESCRIPTIONS.entries()) {
    for (const seed of [0, 1]) {
      const set = new AdapterSet(lora, lora.schema.parse({ r: 2, lora_alpha: 4 }), model.sites, model.weights, { targetModules: ['q_proj', 'v_proj'], seed: 100 });
      const rng = new Rng(`${i}-${seed}`), family = new Rng(`family-${i >> 1}`);
      for (const [k, p] of set.params) for (let j = 0; j < p.length; j++) p[j] = (k.includes('lora_B') ? 0.5 * family.normal() : p[j]) + 0.05 * rng.normal();
      const dir = path.join(TMP, `expert-${i}-${seed}`);
      saveAdapter(path.join(dir, 'adapter'), set, { baseModel: LLAMA, taskType: 'CAUSAL_LM' });
      fs.writeFileSync(path.join(dir, 'description.txt'), d + '\n');
      dirs.push(dir);
    }
  }
  return dirs;
}

test('sg-lora build → generate (cvae, weighted, nearest, uniform): each a PEFT LoRA that loads on the base model; weighted ΔW = Σ wᵢΔWᵢ; nearest = the closest expert; the CVAE decodes an expert\'s own description near that expert', async () => {
  const dirs = await makeExperts();
  const lib = path.join(TMP, 'lib');
  const b = await runSgLoraBuild({ experts: dirs, out: lib, embed: fakeEmbed, epochs: 600, seed: 0 });
  assert.ok(b.losses.at(-1)! < 0.5 * b.losses[0], `CVAE loss ${b.losses[0]} → ${b.losses.at(-1)}`);
  const model = await loadDecoder(LLAMA);
  const experts = dirs.map(readExpert);
  const layout = layoutOf(experts);
  for (const method of ['cvae', 'weighted', 'nearest', 'uniform'] as const) {
    const out = path.join(TMP, `gen-${method}`);
    const g = await runSgLoraGenerate({ library: lib, description: 'spam detection in email', out, method, temperature: 0.2, embed: fakeEmbed });
    const { set } = loadPeftAdapter(model, out);
    assert.equal(set.targets.length, 4);
    const cfg = readAdapter(out).config;
    assert.equal(cfg.peft_type, 'LORA');
    if (method === 'weighted' || method === 'uniform') {
      assert.equal(cfg.r, 16);
      const w = method === 'uniform' ? dirs.map(() => 1 / dirs.length) : g.weights.map((x) => x.weight);
      for (const site of set.targets) {
        const want = new Float64Array(site.outFeatures * site.inFeatures);
        experts.forEach((e, i) => {
          const A = e.tensors.get(`base_model.model.${site.name}.lora_A.weight`)!.data, B = e.tensors.get(`base_model.model.${site.name}.lora_B.weight`)!.data;
          loraDelta(site.outFeatures, site.inFeatures, 2, 2, A, B).forEach((x, j) => (want[j] += w[i] * x));
        });
        assert.ok(relErr(set.deltaFor(site, model.weights.get(site.weightKey)!.data), want) < 1e-5, `${method} ${site.name}`);
      }
    } else assert.equal(cfg.r, 2);
    if (method === 'nearest') assert.deepEqual(readAdapter(out).tensors, experts[4].tensors);
    if (method === 'cvae') {
      const gen = flatten({ tensors: readAdapter(out).tensors }, layout);
      const dist = experts.map((e) => Math.hypot(...flatten(e, layout).map((x, j) => x - gen[j])));
      const nearest = dist.indexOf(Math.min(...dist));
      assert.ok(nearest === 4 || nearest === 5, `the CVAE output is nearest to expert ${nearest} (distances ${dist.map((d) => d.toFixed(2))})`);
    }
  }
  const meta = JSON.parse(fs.readFileSync(path.join(TMP, 'gen-cvae', 'lorakit_config.json'), 'utf8'));
  assert.equal(meta.sg_lora.description, 'spam detection in email');
  assert.equal(meta.sg_lora.experts.length, 8);
});

test('sg-lora errors: an expert without description.txt, experts of different ranks, a library of one, a bad temperature, a missing library, an empty description', async () => {
  const model = await loadDecoder(LLAMA);
  const mk = (name: string, r: number, desc?: string) => {
    const set = new AdapterSet(lora, lora.schema.parse({ r, lora_alpha: r }), model.sites, model.weights, { targetModules: ['q_proj'], seed: 1 });
    const dir = path.join(TMP, name);
    saveAdapter(dir, set, { baseModel: LLAMA });
    if (desc) fs.writeFileSync(path.join(dir, 'description.txt'), desc);
    return dir;
  };
  assert.throws(() => readExpert(mk('nodesc', 2)), /no description\.txt/);
  await assert.rejects(runSgLoraBuild({ experts: [mk('r2', 2, 'a task'), mk('r4', 4, 'another task')], out: path.join(TMP, 'bad'), embed: fakeEmbed }), /has r 4, .* has 2: the experts must be LoRAs of one shape/);
  await assert.rejects(runSgLoraBuild({ experts: [mk('one', 2, 'a task')], out: path.join(TMP, 'bad'), embed: fakeEmbed }), /at least 2 expert folders, got 1/);
  await assert.rejects(runSgLoraBuild({ experts: [mk('t1', 2, 'a task'), mk('t2', 2, 'b task')], out: path.join(TMP, 'bad'), embed: fakeEmbed, temperature: 0 }), /temperature must be positive, got 0/);
  await assert.rejects(runSgLoraGenerate({ library: path.join(TMP, 'nolib'), description: 'x', out: path.join(TMP, 'y'), embed: fakeEmbed }), /library\.json: not found: build the library first/);
  await assert.rejects(runSgLoraGenerate({ library: path.join(TMP, 'nolib'), description: '  ', out: path.join(TMP, 'y'), embed: fakeEmbed }), /the description is empty/);
});

test('the SG-LoRA reference reruns in PyTorch to the committed fixture', { skip: torchSkip }, () => {
  requireTorch();
  const out = path.join(TMP, 'ref.json');
  const r = spawnSync(PY, [new URL('../tools/reference/sg_lora.py', import.meta.url).pathname, out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const fresh = JSON.parse(fs.readFileSync(out, 'utf8'));
  assert.deepEqual(fresh.query, FIX.query);
  assert.deepEqual(fresh.weights, FIX.weights);
  for (const m of Object.keys(FIX.delta)) assert.ok(relErr(fresh.delta[m], FIX.delta[m]) < 1e-12);
});

test('lorakit sg-lora build / generate on the command line (descriptions embedded with the bundled USE)', () => {
  const BIN = new URL('../bin/lorakit.js', import.meta.url).pathname;
  const experts = fs.readdirSync(TMP).filter((d) => d.startsWith('expert-')).map((d) => path.join(TMP, d));
  assert.ok(experts.length >= 4, 'the experts of the test above');
  const lib = path.join(TMP, 'cli-lib');
  let r = spawnSync(process.execPath, [BIN, 'sg-lora', 'build', '--library', ...experts, '--out', lib, '--epochs', '200'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /SG-LoRA library: 8 experts \(4 descriptions\)/);
  const lib1 = JSON.parse(fs.readFileSync(path.join(lib, 'library.json'), 'utf8'));
  assert.equal(lib1.experts[0].embedding.length, 512);
  r = spawnSync(process.execPath, [BIN, 'sg-lora', 'generate', '--library', lib, '--description', 'detect spam in emails', '--method', 'weighted', '--out', path.join(TMP, 'cli-gen')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  // USE puts the spam descriptions closest to a spam task.
  const w = JSON.parse(fs.readFileSync(path.join(TMP, 'cli-gen', 'lorakit_config.json'), 'utf8')).sg_lora.experts as { description: string; weight: number }[];
  const spam = w.filter((x) => x.description.startsWith('spam')).reduce((s, x) => s + x.weight, 0);
  assert.ok(spam > 0.5, `weight on the spam experts ${spam}`);
});

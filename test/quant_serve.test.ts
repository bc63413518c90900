// --base-dtype int8 on the inference commands (dense index/search, rerank in
// every strategy, summarize with a model, duqgen with a generator model), run
// through their job APIs on the tiny fixtures. Each int8 output is compared
// with the same command's fp32 output; the tolerances are stated per check and
// sized from the int8 product's ~1–2 % relative error (docs/results/quantized_base.md).
// Where the fixtures' untrained models make the output a discrete choice
// (generated text, heap order), the check is that the int8 run completes with
// the quantized model and agrees with fp32 where the logits leave no doubt.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { loadModel } from '../src/models/load.ts';
import { saveAdapter } from '../src/peft/adapter_files.ts';
import { SCORE_B, SCORE_W } from '../src/train/tasks/rerank.ts';
import { runIndexJob, runSearchJob } from '../src/tasks/retrieval.ts';
import { runRerankJob, type RerankMode } from '../src/tasks/rerank.ts';
import { loadStackedDecoder } from '../src/tasks/grpo_data.ts';
import { runSummarizeJob } from '../src/tasks/summarize.ts';
import { Seq2SeqSummarizer } from '../src/summarize/hybrid.ts';
import { runDuqgenJob } from '../src/tasks/duqgen.ts';
import { DenseIndex } from '../src/retrieval/dense.ts';
import { readRun } from '../src/retrieval/trec.ts';
import { int8FormOf } from '../src/quant/quantized_weights.ts';
import { makeProgram } from '../src/cli/main.ts';
import { Rng } from '../src/util/rng.ts';
import type { BaseDtype } from '../src/quant/base_dtype.ts';

const FIX = path.join(import.meta.dirname, 'fixtures/hf');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-quant-serve-'));
const DTYPES: BaseDtype[] = ['fp32', 'int8'];

const docs = ['the king lived there', 'what a good movie', 'i love music', 'the queen and the king', 'hello world', 'a terrible film'];
const corpus = path.join(tmp, 'corpus.jsonl'), queries = path.join(tmp, 'queries.jsonl'), first = path.join(tmp, 'first.trec');
fs.writeFileSync(corpus, docs.map((t, i) => JSON.stringify({ _id: `d${i}`, title: '', text: t })).join('\n') + '\n');
fs.writeFileSync(queries, [['q1', 'who was the king'], ['q2', 'a good film']].map(([id, text]) => JSON.stringify({ _id: id, text })).join('\n') + '\n');
fs.writeFileSync(first, ['q1', 'q2'].flatMap((q) => docs.map((_, i) => `${q} Q0 d${i} ${i + 1} ${10 - i} bm25`)).join('\n') + '\n');

/** The linear sites of a model whose weights carry an int8 form. */
function quantizedSites(model: { sites: readonly { kind?: string; weightKey: string }[]; weights: Map<string, { data: unknown }> }): { all: number; quantized: number } {
  const linear = model.sites.filter((s) => s.kind !== 'embedding');
  return { all: linear.length, quantized: linear.filter((s) => int8FormOf(model.weights.get(s.weightKey)?.data)).length };
}

const scoresOf = (file: string) => new Map([...readRun(file)].flatMap(([q, ds]) => ds.map((d) => [`${q}/${d.docno}`, d.score] as const)));

/** max |a − b| over the shared keys, relative to the spread of `a`'s values. */
function relDiff(a: Map<string, number>, b: Map<string, number>): number {
  assert.deepEqual([...b.keys()].sort(), [...a.keys()].sort());
  const v = [...a.values()], spread = Math.max(...v) - Math.min(...v) || 1;
  return Math.max(...[...a].map(([k, x]) => Math.abs(x - b.get(k)!))) / spread;
}

test('dense index + search with --base-dtype int8: document vectors within cosine 0.99 of fp32, index.json records int8 and search follows it', async () => {
  const vec: Record<string, DenseIndex> = {};
  for (const d of DTYPES) {
    const out = path.join(tmp, `dense-${d}`);
    await runIndexJob({ corpus, out, kind: 'dense', model: path.join(FIX, 'bert'), threads: 1, baseDtype: d });
    vec[d] = DenseIndex.load(out);
    await runSearchJob({ index: out, queries, top: 6, out: path.join(tmp, `search-${d}.trec`), threads: 1 });
  }
  assert.equal(vec.int8.meta.baseDtype, 'int8');
  assert.equal(vec.fp32.meta.baseDtype, undefined);
  const dim = vec.fp32.meta.dim;
  let worst = 1, differ = false;
  for (let i = 0; i < docs.length; i++) {
    let c = 0;
    for (let j = 0; j < dim; j++) {
      c += vec.fp32.vectors[i * dim + j] * vec.int8.vectors[i * dim + j]; // unit vectors: the dot is the cosine
      differ ||= vec.fp32.vectors[i * dim + j] !== vec.int8.vectors[i * dim + j];
    }
    worst = Math.min(worst, c);
  }
  assert.ok(differ, 'the int8 encoder computes differently');
  assert.ok(worst > 0.99, `worst cosine of a document's int8 and fp32 vectors: ${worst}`);
  // search encodes the queries as the index says (int8 here): its scores stay within 0.02 of fp32's (cosines)
  const d = relDiff(scoresOf(path.join(tmp, 'search-fp32.trec')), scoresOf(path.join(tmp, 'search-int8.trec')));
  assert.ok(d > 0 && d < 0.05, `search scores, max |int8 − fp32| / spread = ${d}`);
});

test('rerank cross / bi / yesno with --base-dtype int8: cross scores within 5 % of the fp32 spread, cosines within 0.01, P(yes) within 0.02 (stacked adapters: the lower merged)', async () => {
  const { model } = await loadModel(path.join(FIX, 'bert'), 'encoder');
  const mk = (name: string, seed: number, head: boolean) => {
    const set = new AdapterSet(lora, lora.schema.parse({ r: 4, lora_alpha: 8, init_lora_weights: false }), model.sites, model.weights, { targetModules: ['query', 'value'], seed });
    const r = new Rng(seed), H = model.hiddenSize;
    const modulesToSave = head ? new Map([[SCORE_W, { shape: [1, H], data: Float32Array.from({ length: H }, () => r.uniformRange(-0.5, 0.5)) }], [SCORE_B, { shape: [1], data: Float32Array.of(0.1) }]]) : undefined;
    const dir = path.join(tmp, name);
    saveAdapter(dir, set, { baseModel: path.join(FIX, 'bert'), taskType: 'SEQ_CLS', modulesToSave });
    return dir;
  };
  const lower = mk('lower', 3, false), top = mk('top', 4, true);
  const cases: { mode: RerankMode; model: string; adapters: string[] }[] = [
    { mode: 'cross', model: path.join(FIX, 'bert'), adapters: [lower, top] },
    { mode: 'bi', model: path.join(FIX, 'bert'), adapters: [lower, top] }, // PeftModel's stack: the lower adapter merged, quantized again
    { mode: 'yesno', model: path.join(FIX, 'llama-tiny'), adapters: [] },
  ];
  for (const c of cases) {
    const out = (d: BaseDtype) => path.join(tmp, `rr-${c.mode}-${d}.trec`);
    for (const d of DTYPES) await runRerankJob({ model: c.model, adapters: c.adapters, run: first, queries, corpus, top: 6, out: out(d), mode: c.mode, threads: 1, baseDtype: d });
    // cross: 5 % of the fp32 scores' spread; bi: cosines (all 0.9–1 here), an absolute 0.01; yesno: P(yes) (all near 0.45 on the untrained decoder), an absolute 0.02
    const [a, b] = [scoresOf(out('fp32')), scoresOf(out('int8'))];
    const diff = c.mode === 'cross' ? relDiff(a, b) : Math.max(...[...a].map(([k, x]) => Math.abs(x - b.get(k)!)));
    const tol = { cross: 0.05, bi: 0.01, yesno: 0.02 }[c.mode as 'cross'];
    assert.ok(diff > 0 && diff < tol, `${c.mode}: max |int8 − fp32|${c.mode === 'cross' ? ' / spread' : ''} = ${diff} (tolerance ${tol})`);
  }
});

test('rerank setwise / groupwise with --base-dtype int8: the stacked decoder is quantized (merged lower adapter too), runs match fp32', async () => {
  const model = path.join(tmp, 'llama-long');
  fs.mkdirSync(model);
  for (const f of fs.readdirSync(path.join(FIX, 'llama-tiny'))) fs.copyFileSync(path.join(FIX, 'llama-tiny', f), path.join(model, f));
  const cfg = JSON.parse(fs.readFileSync(path.join(model, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(model, 'config.json'), JSON.stringify({ ...cfg, max_position_embeddings: 2048 }));
  const base = await loadModel(model, 'decoder');
  const adapters = [3, 4].map((seed) => {
    const set = new AdapterSet(lora, lora.schema.parse({ r: 2, lora_alpha: 4, init_lora_weights: false }), base.model.sites, base.model.weights, { targetModules: ['q_proj', 'v_proj'], seed });
    const dir = path.join(tmp, `dec-${seed}`);
    saveAdapter(dir, set, { baseModel: model, taskType: 'CAUSAL_LM' });
    return dir;
  });
  const stacked = await loadStackedDecoder(model, adapters, 'test', 'int8');
  const q = quantizedSites(stacked.model);
  assert.ok(q.all > 0 && q.quantized === q.all, `${q.quantized} of ${q.all} linear sites quantized after the merge`);
  for (const mode of ['setwise', 'groupwise'] as const) {
    const runs = [];
    for (const d of DTYPES) {
      const out = path.join(tmp, `${mode}-${d}.trec`);
      const r = await runRerankJob({ model, adapters, run: first, queries, corpus, top: 5, out, mode, threads: 1, baseDtype: d, maxNewTokens: 4, groupSize: 3, stride: 2, passes: 1, numChild: 2, k: 2 });
      runs.push({ r, run: readRun(out) });
    }
    // The untrained decoder never answers in the format: every prompt is unreadable in both, so both keep the first stage's order.
    assert.equal(runs[1].r.prompts, runs[0].r.prompts, mode);
    assert.equal(runs[1].r.malformed, runs[0].r.malformed, mode);
    assert.deepEqual([...runs[1].run], [...runs[0].run], mode);
  }
});

test('summarize --model with --base-dtype int8: the BART model is quantized, beam-search summaries agree with fp32 on most tokens', async () => {
  const s = await Seq2SeqSummarizer.load(path.join(FIX, 'bart-tiny'), { baseDtype: 'int8' });
  const q = quantizedSites(s.model);
  await s.release();
  assert.ok(q.all > 0 && q.quantized === q.all, `${q.quantized} of ${q.all}`);
  const input = path.join(tmp, 'summ.jsonl');
  fs.writeFileSync(input, ['the king lived there. the queen and the king. what a good movie.', 'i love music. hello world. the music is very great.', 'a terrible film. the best film. who was there.'].map((document, i) => JSON.stringify({ id: `s${i}`, document })).join('\n') + '\n');
  const out: Record<string, string[]> = {};
  for (const d of DTYPES) {
    const o = path.join(tmp, `summ-${d}.jsonl`);
    const r = await runSummarizeJob({ input, output: o, model: path.join(FIX, 'bart-tiny'), numBeams: 2, maxLength: 8, threads: 1, baseDtype: d });
    assert.equal(r.baseDtype, d, 'the job reports the form its model computed in');
    out[d] = fs.readFileSync(o, 'utf8').trim().split('\n').map((l) => JSON.parse(l).summary);
  }
  const tokens = (xs: string[]) => xs.flatMap((x) => x.split(/\s+/));
  const [a, b] = [tokens(out.fp32), tokens(out.int8)];
  const same = a.filter((t, i) => b[i] === t).length / Math.max(a.length, b.length);
  assert.ok(same >= 0.5, `int8 summaries share ${(100 * same).toFixed(0)} % of fp32's tokens (position by position): ${JSON.stringify(out)}`);
});

test('duqgen --generator-model with --base-dtype int8: the generator computes in int8 (info.json), the queries agree with fp32 on most tokens', async () => {
  const big = path.join(tmp, 'duq-corpus.jsonl');
  const T = ['library catalog use', 'citation analysis', 'automatic indexing', 'information needs'];
  fs.writeFileSync(big, Array.from({ length: 12 }, (_, i) => JSON.stringify({ _id: `d${i}`, title: T[i % 4], text: `this paper reports on ${T[i % 4]} in setting ${i}. results show trends in ${T[(i + 1) % 4]}.` })).join('\n') + '\n');
  const q: Record<string, string[]> = {};
  for (const d of DTYPES) {
    const out = path.join(tmp, `duq-${d}`);
    await runDuqgenJob({ corpus: big, out, clusters: 1, samples: 3, seed: 1, minChars: 0, negativesFrom: 'bm25', generatorModel: path.join(FIX, 'llama-tiny'), maxNewTokens: 6, threads: 1, baseDtype: d });
    const info = JSON.parse(fs.readFileSync(path.join(out, 'info.json'), 'utf8'));
    assert.equal(info.settings.baseDtype, d === 'fp32' ? undefined : d);
    assert.equal(info.baseDtype, d, 'the form the generator model computed in');
    q[d] = fs.readFileSync(path.join(out, 'queries.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).text);
  }
  assert.equal(q.int8.length, q.fp32.length);
  const a = q.fp32.join(' ').split(/\s+/), b = q.int8.join(' ').split(/\s+/);
  const same = a.filter((t, i) => b[i] === t).length / Math.max(a.length, b.length);
  assert.ok(same >= 0.5, `int8 queries share ${(100 * same).toFixed(0)} % of fp32's tokens: ${JSON.stringify(q)}`);
});

test('--base-dtype is on index, search, rerank, summarize and duqgen (search defaults to the index\'s)', () => {
  const program = makeProgram();
  for (const name of ['index', 'search', 'rerank', 'summarize', 'duqgen']) {
    const cmd = program.commands.find((c) => c.name() === name)!;
    const opt = cmd.options.find((o) => o.long === '--base-dtype');
    assert.ok(opt, name);
    assert.deepEqual(opt.argChoices, ['fp32', 'int8'].concat((opt.argChoices ?? []).slice(2)), name);
    assert.equal(opt.defaultValue, name === 'search' ? undefined : 'fp32', name);
  }
});

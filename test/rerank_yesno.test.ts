// The pointwise yes/no reranker (llm-rankers' yes_no; SETR's second stage in
// text) on decoder and T5 folders: P(yes) = σ(logit_Yes − logit_No) at the
// answer position equals the same from PyTorch's logits on the golden batch
// (right padding included); lorakit train --task rerank on a decoder folder
// trains a LoRA that answers 'Yes' for the positives; lorakit rerank picks the
// yes/no mode for such a folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { YesNoReranker } from '../src/tasks/rerank.ts';
import { runTrainJob } from '../src/tasks/train.ts';
import { loadModel } from '../src/models/load.ts';
import { yesNoPromptIds, yesNoTokens } from '../src/train/tasks/yes_no.ts';
import { makeProgram } from '../src/cli/main.ts';
import type { HfTokenizer } from '../src/io/hf.ts';
import { readRun } from '../src/retrieval/trec.ts';

const FIX = path.join(import.meta.dirname, 'fixtures/hf');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-yesno-'));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

for (const name of ['llama-tiny', 't5-tiny']) {
  test(`${name}: P(yes) equals σ(logit_Yes − logit_No) from PyTorch's logits at the answer position`, async () => {
    const gd = JSON.parse(fs.readFileSync(path.join(FIX, name, 'golden.json'), 'utf8'));
    const m = await loadModel(path.join(FIX, name));
    const { yes, no } = yesNoTokens(m.tokenizer as HfTokenizer, name);
    const yn = await YesNoReranker.load(path.join(FIX, name), [], { threads: 1 });
    const prompts: number[][] = gd.input_ids.map((r: number[], i: number) => r.slice(0, gd.attention_mask[i].reduce((a: number, b: number) => a + b, 0)));
    const got = await yn.scoreIds(prompts, 2);
    await yn.release();
    const logits: number[] = gd.logits.flat(Infinity);
    const T = name === 't5-tiny' ? gd.decoder_input_ids[0].length : gd.input_ids[0].length;
    const V = logits.length / (prompts.length * T);
    prompts.forEach((p, b) => {
      const t = name === 't5-tiny' ? 0 : p.length - 1; // t5: the first decoder step (decoder_input_ids start with the start token)
      const want = sigmoid(logits[(b * T + t) * V + yes] - logits[(b * T + t) * V + no]);
      assert.ok(Math.abs(got[b] - want) < 1e-4, `row ${b}: ${got[b]} vs PyTorch ${want}`);
    });
    assert.equal(m.kind === 'seq2seq' ? m.model.config.decoderStartTokenId : 0, 0);
  });
}

test('the prompt: llm-rankers\' wording, passage cut to fit the model\'s positions', async () => {
  const m = await loadModel(path.join(FIX, 'llama-tiny'), 'decoder');
  const ids = yesNoPromptIds(m.tokenizer!, 'q', 'a very long passage '.repeat(50), { maxPositions: 64 });
  assert.ok(ids.length <= 63, `${ids.length} tokens`);
  // (the tiny fixture's tokenizer lowercases and drops newlines)
  assert.match(m.tokenizer!.decode(ids, { skipSpecialTokens: true }), /^passage a very long .*query q does the passage answer the query\? answer ?'yes ?' ?or ?' ?no ?'$/);
});

test('lorakit train --task rerank on a decoder folder trains a yes/no LoRA; lorakit rerank uses it (mode picked from the folder)', async () => {
  const dir = path.join(FIX, 'llama-tiny');
  const data = path.join(tmp, 'pairs.jsonl');
  const rows = [
    { query: 'good movie', positive: 'the best film', negatives: ['bad plot', 'worst acting'] },
    { query: 'great story', positive: 'love this story', negatives: ['boring music', 'terrible film'] },
  ];
  fs.writeFileSync(data, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const r = await runTrainJob({ task: 'rerank', model: dir, data, method: 'lora', methodConfig: { r: 4, lora_alpha: 8 }, epochs: 40, lr: 3e-2, batchSize: 6, seed: 1, out: path.join(tmp, 'run'), threads: 1, warmupRatio: 0 });
  assert.ok(r.epochLosses[r.epochLosses.length - 1] < 0.5 * r.epochLosses[0], `loss ${r.epochLosses.join(' → ')}`);
  await assert.rejects(runTrainJob({ task: 'rerank', model: dir, data, method: 'lora', methodConfig: {}, epochs: 1, lr: 1e-3, batchSize: 6, seed: 1, out: path.join(tmp, 'x'), rankLoss: 'pairwise' }), /--loss pairwise: on a decoder/);
  const yn = await YesNoReranker.load(dir, [r.adapterDir], { threads: 1 });
  const s = await yn.score('good movie', ['the best film', 'bad plot']);
  await yn.release();
  assert.ok(s[0] > 0.5 && s[1] < 0.5, `P(yes): positive ${s[0]}, negative ${s[1]}`);
  // The CLI re-scores a run with it.
  const corpus = path.join(tmp, 'corpus.jsonl'), queries = path.join(tmp, 'q.jsonl'), run = path.join(tmp, 'first.trec');
  fs.writeFileSync(corpus, [['d1', 'bad plot'], ['d2', 'the best film']].map(([i, t]) => JSON.stringify({ _id: i, text: t })).join('\n') + '\n');
  fs.writeFileSync(queries, JSON.stringify({ _id: 'q', text: 'good movie' }) + '\n');
  fs.writeFileSync(run, 'q Q0 d1 1 2 bm25\nq Q0 d2 2 1 bm25\n');
  const log = console.log;
  console.log = () => {};
  try {
    await makeProgram().exitOverride().parseAsync(['node', 'lorakit', 'rerank', '--model', dir, '--adapter', r.adapterDir, '--run', run, '--queries', queries, '--corpus', corpus, '--out', path.join(tmp, 'yn.trec'), '--quiet']);
  } finally {
    console.log = log;
  }
  const out = readRun(path.join(tmp, 'yn.trec')).get('q')!;
  assert.equal(out.sort((a, b) => b.score - a.score)[0].docno, 'd2');
});

// Beam search against a PyTorch transcription of Hugging Face transformers'
// beam search (tools/reference/beam_search_hf.py, v4.30 semantics) on the tiny
// T5 and BART fixtures: the same tokens for every hypothesis and the same
// sequence scores; with and without the KV cache; with the golden LoRA; and
// beam search run with one beam equals greedy decoding.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../src/models/load.ts';
import { Seq2SeqGenerator } from '../src/serve/seq2seq_generate.ts';
import { bannedNgramTokens } from '../src/serve/logits_processors.ts';
import { goldenAdapters } from './helpers/golden_lora.ts';

const FIX = path.resolve(import.meta.dirname, 'fixtures');
const ref = JSON.parse(fs.readFileSync(path.join(FIX, 'beam_search_hf.json'), 'utf8'));

interface RefCase {
  name: string; num_beams: number; max_length: number; min_length?: number; length_penalty?: number; early_stopping?: boolean | 'never';
  no_repeat_ngram_size?: number; num_return_sequences?: number; forced_bos_token_id?: number; forced_eos_token_id?: number;
  eos_token_id: number[]; lora: boolean; min_gap: number; output: { tokens: number[]; score: number | null }[][];
}

const options = (c: RefCase) => ({
  maxNewTokens: c.max_length - 1, minNewTokens: c.min_length !== undefined ? c.min_length - 1 : undefined, lengthPenalty: c.length_penalty,
  earlyStopping: c.early_stopping, noRepeatNgramSize: c.no_repeat_ngram_size, numReturnSequences: c.num_return_sequences,
  forcedBosTokenId: c.forced_bos_token_id, forcedEosTokenId: c.forced_eos_token_id, stopTokens: c.eos_token_id,
});

for (const name of ['t5-tiny', 'bart-tiny']) {
  test(`${name}: beam search equals the PyTorch transcription of HF's (tokens exactly, scores to 1e-4), cached and uncached`, async () => {
    const { model } = await loadModel(path.join(FIX, 'hf', name), 'seq2seq');
    const gold = JSON.parse(fs.readFileSync(path.join(FIX, 'hf', name, 'golden.json'), 'utf8'));
    const mr = ref.models[name];
    const plain = new Seq2SeqGenerator(model), adapted = new Seq2SeqGenerator(model, goldenAdapters(model, gold));
    try {
      for (const c of mr.cases as RefCase[]) {
        const gen = c.lora ? adapted : plain;
        for (const useCache of [true, false]) {
          const o = { ...options(c), useCache };
          const what = `${name} ${c.name} (cache ${useCache})`;
          if (c.num_beams === 1) {
            assert.deepEqual(await gen.generate(mr.input_ids, o), c.output.map((r) => r[0].tokens), what);
            continue;
          }
          const got = await gen.beamSearch(mr.input_ids, { ...o, numBeams: c.num_beams });
          assert.deepEqual(got.map((r) => r.map((h) => h.tokens)), c.output.map((r) => r.map((h) => h.tokens)), what);
          got.forEach((r, b) => r.forEach((h, j) => assert.ok(Math.abs(h.score - c.output[b][j].score!) < 1e-4, `${what}: score ${h.score} vs ${c.output[b][j].score}`)));
          // generate() returns the best hypothesis of each input.
          if (useCache) assert.deepEqual(await gen.generate(mr.input_ids, { ...o, numBeams: c.num_beams }), c.output.map((r) => r[0].tokens), what);
        }
      }
    } finally {
      await plain.release();
      await adapted.release();
    }
  });

  test(`${name}: beam search with one beam equals greedy decoding (with and without processors, with the LoRA)`, async () => {
    const { model } = await loadModel(path.join(FIX, 'hf', name), 'seq2seq');
    const gold = JSON.parse(fs.readFileSync(path.join(FIX, 'hf', name, 'golden.json'), 'utf8'));
    const mr = ref.models[name];
    for (const gen of [new Seq2SeqGenerator(model), new Seq2SeqGenerator(model, goldenAdapters(model, gold))]) {
      for (const extra of [{}, { noRepeatNgramSize: 2, minNewTokens: 3 }, { forcedBosTokenId: 7 }]) {
        for (const stopTokens of [mr.cases[0].eos_token_id, [model.config.eosTokenIds[0]]]) {
          const o = { maxNewTokens: 9, stopTokens, ...extra };
          const greedy = await gen.generate(mr.input_ids, o);
          const beams = await gen.beamSearch(mr.input_ids, { ...o, numBeams: 1 });
          // Greedy pads finished rows; the beam hypothesis ends at its end token.
          const trimmed = greedy.map((r) => { const e = r.findIndex((t) => stopTokens.includes(t)); return e < 0 ? r : [...r.slice(0, e), stopTokens[0]]; });
          assert.deepEqual(beams.map((h) => h[0].tokens), trimmed, JSON.stringify({ name, extra, stopTokens }));
        }
      }
      await gen.release();
    }
  });
}

test('no-repeat n-gram bans (HF NoRepeatNGramLogitsProcessor, hand-checked) and option errors', async () => {
  assert.deepEqual(bannedNgramTokens([0, 5, 6, 5], 2), [6]);
  assert.deepEqual(bannedNgramTokens([0, 5, 6, 5, 6, 5], 3), [6]);
  assert.deepEqual(bannedNgramTokens([0, 5, 6], 3), []);
  assert.deepEqual(bannedNgramTokens([0, 5], 1), [0, 5]);
  assert.deepEqual(bannedNgramTokens([0], 3), []);
  const { model } = await loadModel(path.join(FIX, 'hf', 'bart-tiny'), 'seq2seq');
  const gen = new Seq2SeqGenerator(model);
  await assert.rejects(gen.beamSearch([[5, 6]], { maxNewTokens: 4, numBeams: 2, numReturnSequences: 3 }), /num_return_sequences \(3\) must be between 1 and num_beams \(2\)/);
  await assert.rejects(gen.generate([[5, 6]], { maxNewTokens: 4, numBeams: 2, doSample: true }), /beam sampling/);
  await assert.rejects(gen.generate([[5, 999]], { maxNewTokens: 4 }), /outside the vocabulary/);
  await gen.release();
});

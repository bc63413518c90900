// GroupRank (src/retrieval/grouprank.ts): the answer extraction equals the
// official one transcribed in Python (tools/reference/grouprank_parse.py →
// test/fixtures/grouprank_parse.json); windows, the averaging over windows and
// passes, and the first-stage fallback for an unreadable window (counted).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { grouprankExtract, grouprankRerank, grouprankScores, grouprankUser, grouprankWindows } from '../src/retrieval/grouprank.ts';

const FIX = JSON.parse(fs.readFileSync(new URL('./fixtures/grouprank_parse.json', import.meta.url), 'utf8'));

test('answer extraction equals the official code on hand-written completions (tags, ```json, repairs, failures)', () => {
  for (const c of FIX.cases) assert.deepEqual(grouprankExtract(c.completion), c.parsed, JSON.stringify(c.completion));
  assert.ok(FIX.cases.some((c: any) => c.parsed === null) && FIX.cases.some((c: any) => c.parsed !== null));
});

test('scores /10 by window position; keys outside the window or non-numbers make the answer unreadable', () => {
  assert.deepEqual([...grouprankScores('<answer>{"[1]": 5, "[2]": 9}</answer>', 2)!], [[0, 0.5], [1, 0.9]]);
  assert.equal(grouprankScores('<answer>{"[3]": 5}</answer>', 2), null);
  assert.equal(grouprankScores('<answer>{"[1]": "high"}</answer>', 2), null);
});

test('windows of 20 with stride 10 over 100 candidates: 10 windows, the last ones shorter', () => {
  const w = grouprankWindows(100, 20, 10);
  assert.equal(w.length, 10);
  assert.deepEqual(w[0], [0, 20]);
  assert.deepEqual(w[9], [90, 100]);
  assert.throws(() => grouprankWindows(10, 0, 1), /≥ 1/);
});

test('scores averaged over windows and passes; an unreadable window scored by the first stage and counted', async () => {
  const hidden = [0.1, 0.9, 0.5, 0.3, 0.7, 0.2]; // a scripted model: the hidden score of each candidate
  const orders = [[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0]];
  let calls = 0;
  const r = await grouprankRerank(6, { groupSize: 4, stride: 2, passes: 2, order: (p) => orders[p] }, async (shown) => {
    calls++;
    return new Map(shown.map((d, j) => [j, hidden[d]]));
  });
  assert.equal(r.windows, 6);
  assert.equal(calls, 6);
  assert.equal(r.malformed, 0);
  for (let i = 0; i < 6; i++) assert.ok(Math.abs(r.scores[i] - hidden[i]) < 1e-12, 'a consistent model: the mean is its score');
  const bad = await grouprankRerank(3, { groupSize: 3, stride: 3, passes: 1, order: () => [2, 0, 1] }, async () => null);
  assert.equal(bad.malformed, 1);
  assert.deepEqual(Array.from(bad.scores), [1, 2 / 3, 1 / 3], 'first-stage order: candidate 0 best');
});

test('the prompt numbers the documents [1]. … and asks for the JSON answer', () => {
  const u = grouprankUser('cats', ['a\ncat', 'a dog']);
  assert.match(u, /Query:\ncats\nDocuments:\n\[1\]\. a cat\n\n\[2\]\. a dog\n\n/);
  assert.match(u, /scores as values for all 2 documents/);
});

test('the reward (our reading: nDCG of the answer order + 0.5 × the distribution term): 0 when unreadable or partial, 1.5 for a perfect answer', async () => {
  const { grouprankReward } = await import('../src/retrieval/grouprank.ts');
  const labels = [0, 2, 1];
  assert.equal(grouprankReward('<answer>{"[1]": 0, "[2]": 10, "[3]": 5}</answer>', labels), 1.5);
  assert.equal(grouprankReward('<answer>{"[1]": 0, "[2]": 10}</answer>', labels), 0, 'a document left unscored');
  assert.equal(grouprankReward('no answer', labels), 0);
  // Reversed order: nDCG by hand = (0 + 1/log2(3) + 2/log2(4)) / (2 + 1/log2(3) + 0); distribution 1 − (1 + 1 + 0)/3.
  const rev = grouprankReward('<answer>{"[1]": 10, "[2]": 0, "[3]": 5}</answer>', labels);
  const want = (1 / Math.log2(3) + 2 / 2) / (2 + 1 / Math.log2(3)) + 0.5 * (1 - 2 / 3);
  assert.ok(Math.abs(rev - want) < 1e-12, `${rev} vs ${want}`);
});

// Rank-R1's reward and answer parse (src/retrieval/rank_r1.ts) against the
// official regular expression run by Python's re (tools/reference/rank_r1_reward.py
// → test/fixtures/rank_r1_reward.json), and the prompt's shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { rankR1Answer, rankR1Choice, rankR1Messages, rankR1Reward } from '../src/retrieval/rank_r1.ts';

const FIX = JSON.parse(fs.readFileSync(new URL('./fixtures/rank_r1_reward.json', import.meta.url), 'utf8'));

test('reward 1 iff the <think>…</think> <answer>[k]</answer> format holds and k is relevant, as the official regex decides', () => {
  for (const c of FIX.cases) {
    assert.equal(rankR1Reward(c.completion, [FIX.label]), c.reward, JSON.stringify(c.completion));
    assert.equal(rankR1Answer(c.completion, { lowercase: true }), c.inference, JSON.stringify(c.completion));
  }
  assert.ok(FIX.cases.some((c: any) => c.reward === 1) && FIX.cases.some((c: any) => c.reward === 0));
  assert.equal(rankR1Reward('<think>x</think> <answer>[2]</answer>', ['[3]', '[2]']), 1, 'any relevant label counts');
});

test('the answer as a document index: [k] within 1..n, else unreadable', () => {
  assert.equal(rankR1Choice('<think>x</think> <answer>[3]</answer>', 20), 2);
  assert.equal(rankR1Choice('<think>x</think> <answer>[21]</answer>', 20), null);
  assert.equal(rankR1Choice('<think>x</think> <answer>[0]</answer>', 20), null);
  assert.equal(rankR1Choice('<answer>[3]</answer>', 20), null);
});

test('the setwise prompt: system turn with the tags, documents labelled [1]: … [n]: one a line', () => {
  const [sys, user] = rankR1Messages('cats', ['a cat', 'a dog']);
  assert.equal(sys.role, 'system');
  assert.match(sys.content, /<think> reasoning process here <\/think> <answer> answer here <\/answer>/);
  assert.match(user.content, /^Given the query: "cats", which of the following documents is most relevant\?\n\[1\]: a cat\n\[2\]: a dog\nAfter completing/);
});

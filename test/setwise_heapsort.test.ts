// Setwise heapsort (src/retrieval/setwise.ts) with a scripted chooser that
// answers by a fixed total order (hidden scores): its top k equals a brute-force
// sort, and its whole order and prompt count equal llm-rankers' heapsort
// transcribed in Python (tools/reference/setwise_heapsort.py →
// test/fixtures/setwise_heapsort.json), also when some answers are unreadable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { setwiseHeapsort } from '../src/retrieval/setwise.ts';

const FIX = JSON.parse(fs.readFileSync(new URL('./fixtures/setwise_heapsort.json', import.meta.url), 'utf8'));

for (const c of FIX.cases) {
  test(`heapsort n=${c.n}, ${c.numChild + 1} docs per prompt, top ${c.k}${c.malformedEvery ? `, every ${c.malformedEvery}th answer unreadable` : ''}: ${c.prompts} prompts`, async () => {
    const scores: number[] = c.scores;
    let asked = 0;
    const r = await setwiseHeapsort(scores.map((_, i) => i), { numChild: c.numChild, k: c.k }, async (docs) => {
      assert.ok(docs.length >= 2 && docs.length <= c.numChild + 1, `a prompt shows ${docs.length} documents`);
      asked++;
      if (c.malformedEvery && asked % c.malformedEvery === 0) return null;
      let best = 0;
      docs.forEach((d, j) => { if (scores[d] > scores[docs[best]]) best = j; });
      return best;
    });
    assert.equal(r.prompts, c.prompts);
    assert.equal(r.malformed, c.malformed);
    assert.deepEqual(r.order, c.order);
    assert.deepEqual([...r.order].sort((a, b) => a - b), scores.map((_, i) => i), 'a permutation of the input');
    if (!c.malformedEvery) {
      const brute = scores.map((_, i) => i).sort((a, b) => scores[b] - scores[a]).slice(0, c.k);
      assert.deepEqual(r.order.slice(0, c.k), brute);
      assert.ok(r.prompts < c.n * Math.log2(c.n), 'fewer prompts than a comparison sort');
    }
  });
}

test('setwise refuses bad settings', async () => {
  await assert.rejects(setwiseHeapsort([1, 2], { numChild: 0, k: 1 }, async () => 0), /children/);
  await assert.rejects(setwiseHeapsort([1, 2], { numChild: 2, k: 0 }, async () => 0), /k must/);
});

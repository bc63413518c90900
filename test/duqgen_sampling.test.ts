// DUQGen's allocation and softmax sampling equal a NumPy transcription of the
// official code (tools/reference/duqgen_sampling.py: np.random.seed per
// SEED_LIST, np.random.choice without replacement, MMR), for the same
// embeddings, centroids and assignment; NumPy's legacy generator bit for bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { allocateSamples, sampleDocuments } from '../src/duqgen/sampling.ts';
import { NumpyRandomState } from '../src/util/numpy_rng.ts';

const fx = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, 'fixtures/duqgen/sampling.json'), 'utf8'));

test('NumPy legacy RandomState: random_sample and choice(replace=False, p) (values printed by NumPy 2.4)', () => {
  const r = new NumpyRandomState(35);
  assert.deepEqual([r.randomSample(), r.randomSample(), r.randomSample()], [0.45805494822409054, 0.30834960696491165, 0.23148704503556228]);
  assert.deepEqual(new NumpyRandomState(35).choiceWithoutReplacement([0.5, 0.2, 0.1, 0.1, 0.05, 0.05], 4), [0, 4, 1, 3]);
  assert.throws(() => new NumpyRandomState(1).choiceWithoutReplacement([0.5, 0.5, 0], 3), /fewer non-zero/);
  assert.throws(() => new NumpyRandomState(1).choiceWithoutReplacement([0.5, 0.4], 1), /do not sum to 1/);
});

test('allocation: 1 + ⌊(N − K)·|C|/|D|⌋ per cluster, leftovers to the largest (hand-checked); exactly N where the official [-0::] slice would add K', () => {
  // sizes: c0 5, c1 3, c2 2 (|D| = 10); N = 7, K = 3: 1 + ⌊4·0.5⌋ = 3, 1 + ⌊4·0.3⌋ = 2, 1 + ⌊4·0.2⌋ = 1 → 6, one left → the largest (c0)
  const assign = [0, 0, 1, 2, 0, 1, 0, 2, 1, 0];
  assert.deepEqual([...allocateSamples(assign, 7, 3)], [[2, 1], [1, 2], [0, 4]]);
  // N = 13: 1 + ⌊10·0.2⌋ = 3, 1 + ⌊10·0.3⌋ = 4, 1 + ⌊10·0.5⌋ = 6 → 13, none left (the official slice [-0::] would add one to every cluster: 16)
  assert.deepEqual([...allocateSamples(assign, 13, 3)], [[2, 3], [1, 4], [0, 6]]);
  // K = 1 (one cluster: 1 + ⌊(N − 1)·1⌋ = N, none left)
  assert.deepEqual([...allocateSamples(assign.map(() => 0), 4, 1)], [[0, 4]]);
  // N = K: one each
  assert.deepEqual([...allocateSamples(assign, 3, 3)], [[2, 1], [1, 1], [0, 1]]);
});

for (const [i, c] of (fx.cases as any[]).entries()) {
  test(`equals the NumPy transcription of the official code: case ${i} (${c.embeddings.length} docs, K ${c.n_clusters}, N ${c.n_train}, λ ${c.lambda})`, () => {
    const dim = c.embeddings[0].length;
    const r = sampleDocuments({
      embeddings: Float64Array.from(c.embeddings.flat()),
      dim,
      centroids: c.centroids,
      assignment: c.assignment,
      nTrain: c.n_train,
      nClusters: c.n_clusters,
      lambda: c.lambda,
    });
    assert.deepEqual([...r.allocation], c.allocation, 'allocation, in the official order (ascending size)');
    assert.deepEqual(r.sampled, c.sampled);
    assert.deepEqual(r.capped, []);
  });
}

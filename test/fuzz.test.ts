// Hostile files, fuzzed (test/helpers/fuzz.ts, fuzz_targets.ts): 10,000 seeded
// cases for each reader of a user's file — safetensors, adapter_config.json,
// a Hugging Face config.json, tokenizer.json, a tfjs model.json with shards,
// JSONL data. Each case loads or throws a FileFormatError naming the file; no
// other exception, no hang, no allocation beyond the file's size. The counts
// are printed. More cases: scripts/fuzz.ts (npm run fuzz).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeStats, fuzz } from './helpers/fuzz.ts';
import { TARGETS } from './helpers/fuzz_targets.ts';

const RUNS = 10_000;
const SEED = Number(process.env.LORAKIT_FUZZ_SEED ?? 20240607);

for (const target of TARGETS) {
  test(`fuzz ${target.name}: ${RUNS} hostile files (seed ${SEED}) load or fail naming the file`, async (t) => {
    const s = await fuzz(target, { numRuns: RUNS, seed: SEED });
    t.diagnostic(describeStats(s));
    for (const [p, n] of s.problems.slice(0, 5)) t.diagnostic(`  ${n} × ${p}`);
    assert.equal(s.loaded + s.rejected, RUNS);
    assert.ok(s.loaded > 0 && s.rejected > 0, 'the cases reach both outcomes');
  });
}

// Longer fuzzing than the default suite (test/fuzz.test.ts): every reader of a
// user's file, N seeded cases each.
//
//   npx tsx scripts/fuzz.ts [--runs 100000] [--seed 1] [--target safetensors]
import { describeStats, fuzz } from '../test/helpers/fuzz.ts';
import { TARGETS } from '../test/helpers/fuzz_targets.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}
const runs = Number(arg('runs') ?? 100_000), seed = Number(arg('seed') ?? 1), only = arg('target');
let failed = 0;
for (const t of TARGETS.filter((x) => !only || x.name === only)) {
  try {
    const s = await fuzz(t, { numRuns: runs, seed });
    console.log(describeStats(s));
    for (const [p, n] of s.problems.slice(0, 8)) console.log(`    ${String(n).padStart(6)} × ${p}`);
  } catch (e) {
    failed++;
    console.log(`${t.name}: FAILED\n${(e as Error).message}`);
  }
}
process.exit(failed ? 1 : 0);

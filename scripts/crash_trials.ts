// More crash trials than the default suite runs (test/crash_safety.test.ts):
// chains of `lorakit train` runs killed with SIGKILL at random moments and at
// every injected point inside checkpoint writes, each resumed with --resume;
// every chain must end with the uninterrupted run's adapter bytes and every
// step in metrics.jsonl.
//
//   npx tsx scripts/crash_trials.ts [--chains 10] [--kills 10] [--injected 3] [--seed 1]
import { injectedKillChain, KILL_POINTS, randomKillChain, setupCrashRuns, summarize, type ChainResult } from '../test/helpers/crash_trials.ts';

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const chains = arg('chains', 10), kills = arg('kills', 10), injected = arg('injected', 3), seed = arg('seed', 1);

const s = await setupCrashRuns();
console.log(`uninterrupted run: ${s.totalSteps} steps, trained in ${s.trainMs.toFixed(0)} ms; ${chains} random chains of up to ${kills} kills, ${injected} rounds of the ${KILL_POINTS.length} injected points (seed ${seed})`);
const results: ChainResult[] = [];
for (let c = 0; c < chains; c++) {
  const r = await randomKillChain(s, kills, seed + c);
  results.push(r);
  console.log(`random chain ${c + 1} (seed ${seed + c}): ${summarize(r)}`);
}
for (let c = 0; c < injected; c++) {
  const r = await injectedKillChain(s, seed + 1000 + c);
  results.push(r);
  console.log(`injected round ${c + 1}: ${summarize(r)}`);
}
const trials = results.flatMap((r) => r.trials);
const phases = new Map<string, number>();
for (const t of trials) phases.set(t.phase, (phases.get(t.phase) ?? 0) + 1);
const bad = results.filter((r) => !r.identical || r.missingSteps.length || r.duplicateSteps.length);
console.log(`\n${trials.length} kills (${[...phases].map(([k, v]) => `${v} ${k}`).join(', ')}) in ${results.length} chains, ${results.reduce((n, r) => n + r.runs, 0)} runs: ${bad.length ? `${bad.length} chains LOST something` : 'every chain ended with the uninterrupted adapter bytes and every step logged'}`);
process.exit(bad.length ? 1 : 0);

// Group-normalized advantages of GRPO: each prompt's G rewards become
// (r − mean) / (std + eps) within the group, std the unbiased (N−1) standard
// deviation as TRL's GRPOTrainer (torch .std()) computes it, eps 1e-4 (TRL's).
// A group whose rewards are all equal gets advantage 0: it teaches nothing.

export function groupAdvantages(rewards: readonly number[], groupSize: number, eps = 1e-4): Float32Array {
  if (!(Number.isInteger(groupSize) && groupSize >= 2)) throw new Error(`GRPO needs at least 2 completions per prompt (got ${groupSize}): the advantage compares a completion with its group`);
  if (rewards.length % groupSize !== 0) throw new Error(`GRPO: ${rewards.length} rewards are not whole groups of ${groupSize}`);
  const out = new Float32Array(rewards.length);
  for (let s = 0; s < rewards.length; s += groupSize) {
    const g = rewards.slice(s, s + groupSize);
    for (const r of g) if (!Number.isFinite(r)) throw new Error(`GRPO: a reward is ${r}; rewards must be finite numbers`);
    const mean = g.reduce((a, b) => a + b, 0) / groupSize;
    const std = Math.sqrt(g.reduce((a, r) => a + (r - mean) ** 2, 0) / (groupSize - 1));
    for (let i = 0; i < groupSize; i++) out[s + i] = (g[i] - mean) / (std + eps);
  }
  return out;
}

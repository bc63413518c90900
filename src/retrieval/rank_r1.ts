// Rank-R1's setwise prompt, answer parsing and reward (Zhuang et al. 2025,
// arXiv 2503.06034), as in the official code — ielab/llm-rankers,
// Rank-R1/prompts/prompt_setwise-R1.toml (system / user prompt, "[{num}]: "
// document prefix, "\n" separator, the answer pattern), Rank-R1/train_grpo.py
// (reward_func_setwise: 1 iff the pattern is found and its answer, stripped,
// is the ground-truth label "[k]"; else 0) and Rank-R1/run_setwise.py
// (inference: the pattern searched in the lowercased completion).

export const RANK_R1_SYSTEM =
  'A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The assistant first thinks about the reasoning process in the mind and then provides the user with the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>.';

/** The user turn: the query and the documents labelled [1]…[n]. */
export function rankR1User(query: string, docs: readonly string[]): string {
  const list = docs.map((d, i) => `[${i + 1}]: ${d}`).join('\n');
  return `Given the query: "${query}", which of the following documents is most relevant?\n${list}\nAfter completing the reasoning process, please provide only the label of the most relevant document to the query, enclosed in square brackets, within the answer tags. For example, if the third document is the most relevant, the answer should be: <think> reasoning process here </think> <answer>[3]</answer>.`;
}

export function rankR1Messages(query: string, docs: readonly string[]): { role: string; content: string }[] {
  return [
    { role: 'system', content: RANK_R1_SYSTEM },
    { role: 'user', content: rankR1User(query, docs) },
  ];
}

/** The official pattern: `<think>.*?</think>\s*<answer>(.*?)</answer>`, searched anywhere, `.` matching newlines. */
const PATTERN = /<think>[\s\S]*?<\/think>\s*<answer>([\s\S]*?)<\/answer>/;

/** The answer text of a completion ("[3]"), stripped; null when the format does not hold. */
export function rankR1Answer(completion: string, o: { lowercase?: boolean } = {}): string | null {
  const m = PATTERN.exec(o.lowercase ? completion.toLowerCase() : completion);
  return m ? m[1].trim() : null;
}

/** 1 iff the format holds and the answer is one of the relevant labels ("[k]", 1-based), else 0. */
export function rankR1Reward(completion: string, relevant: readonly string[]): number {
  const a = rankR1Answer(completion);
  return a !== null && relevant.includes(a) ? 1 : 0;
}

/** The 0-based index the answer names among `n` documents, or null (no format, or not a label [1]…[n]). */
export function rankR1Choice(completion: string, n: number): number | null {
  const a = rankR1Answer(completion, { lowercase: true });
  const m = a === null ? null : /^\[(\d+)\]$/.exec(a);
  if (!m) return null;
  const k = Number(m[1]);
  return k >= 1 && k <= n ? k - 1 : null;
}

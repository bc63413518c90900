// GroupRank (arXiv 2511.11653; AQ-MedAI/Diver Reranker/rerank_groupwise.py,
// read for the prompt, the answer extraction and the aggregation): windows of
// `groupSize` candidates, `stride` apart, each in one prompt; the model gives
// every document an integer 0–10 in a JSON answer; scores / 10 are averaged
// per document over the windows and passes that showed it (the official code
// shuffles the candidates before each pass; seeded here).
//
// One deliberate difference, asked by the issue: a window whose answer cannot
// be read scores its documents by the first stage's order (top of the window
// 1, then (m − r)/m), where the official code gives them 0; such windows are
// counted.

/** The official system prompt's scoring instructions (condensed to the scale the answer uses). */
export const GROUPRANK_SYSTEM = `Your task is to evaluate and rank documents based on how well they help answer the given query. Follow this evaluation priority:
1. PRIMARY: Usefulness & Helpfulness - Does the document provide actionable information, solutions, or direct answers that help address the user's needs?
2. SECONDARY: Relevance - Does the document contain information related to the query topic?
Scoring Scale (0-10):
- 9-10: Extremely helpful, directly answers the query with actionable information
- 7-8: Very helpful, provides substantial useful information for the query
- 5-6: Moderately helpful, contains some useful information but incomplete
- 3-4: Minimally helpful, limited useful information despite topic relevance
- 1-2: Barely helpful, mentions related topics but provides little useful information
- 0: Not helpful at all, cannot assist with answering the query
`;

export function grouprankUser(query: string, docs: readonly string[]): string {
  const passages = docs.map((d, i) => `[${i + 1}]. ${d.replace(/\n+/g, ' ')}\n\n`).join('');
  const n = docs.length;
  return `I will provide you ${n} documents, each indicated by a numerical identifier []. Score these documents based on their Usefulness and Relevance to the query.
Query:
${query}
Documents:
${passages}
## Final Output Format
You must structure your response in exactly two parts: provide your brief reasoning process first, then output final scores in JSON format like below, with document IDs as string keys and integer scores as values for all ${n} documents. 
The reasoning process and answer are enclosed within <reason> </reason> and <answer> </answer> tags, respectively. Do NOT output anything outside the specified tags. Follow this exact format:
<reason> 
[Analyze each document's usefulness and relevance to the query, explaining your scoring rationale]
</reason>
<answer> 
\`\`\`json
{"[1]": 5, "[2]": 3, "[3]": 8}
\`\`\` 
</answer>
`;
}

/**
 * The answer's JSON object as the official extraction finds it: the <answer>
 * part if any; the last \`\`\`json block, else the last {...}; "[7]]" → "[7]";
 * a missing closing brace added. null when nothing parses.
 */
export function grouprankExtract(completion: string): Record<string, unknown> | null {
  let s = completion;
  const a = /<answer>([\s\S]*?)<\/answer>/.exec(s);
  if (a) s = a[1].trim();
  const blocks = [...s.matchAll(/(?:```json\s*)([\s\S]+?)(?:\s*```)/g)];
  let j: string;
  if (blocks.length) j = blocks[blocks.length - 1][1].trim();
  else {
    const objs = [...s.matchAll(/\{[\s\S]*?\}/g)];
    if (!objs.length) return null;
    j = objs[objs.length - 1][0];
  }
  j = j.trim().replace(/(\[\d+\])\]/g, '$1');
  if ((j.match(/\{/g) ?? []).length > (j.match(/\}/g) ?? []).length) j += '}';
  j = j.replace(/\s+/g, ' ').trim();
  try {
    const v = JSON.parse(j);
    return v && typeof v === 'object' && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

/** Scores in [0, 1] (the answer's / 10) by 0-based position in a window of `m`; null when the answer is unreadable or names no document of the window. */
export function grouprankScores(completion: string, m: number): Map<number, number> | null {
  const obj = grouprankExtract(completion);
  if (!obj) return null;
  const out = new Map<number, number>();
  for (const [k, v] of Object.entries(obj)) {
    const i = /^\s*\[?\s*(\d+)\s*\]?\s*$/.exec(k);
    if (!i || typeof v !== 'number' || !Number.isFinite(v)) return null;
    const idx = Number(i[1]) - 1;
    if (idx < 0 || idx >= m) return null;
    out.set(idx, v / 10);
  }
  return out.size ? out : null;
}

/** Windows [start, end) of `size` over n candidates, `stride` apart (the official range(0, n, interval)). */
export function grouprankWindows(n: number, size: number, stride: number): [number, number][] {
  if (!(Number.isInteger(size) && size >= 1 && Number.isInteger(stride) && stride >= 1)) throw new Error(`GroupRank: group size and stride must be integers ≥ 1, got ${size}, ${stride}`);
  const out: [number, number][] = [];
  for (let s = 0; s < n; s += stride) out.push([s, Math.min(s + size, n)]);
  return out;
}

/**
 * The reranker's score of each of n candidates (first-stage order 0..n−1):
 * `score(window)` answers a window (indices into the candidates, in the order
 * shown); each pass shows the candidates in an order from `order(pass)`.
 * A document's score is the mean over the windows that scored it.
 */
export async function grouprankRerank(
  n: number,
  o: { groupSize: number; stride: number; passes: number; order: (pass: number) => number[] },
  score: (shown: number[]) => Promise<Map<number, number> | null>,
): Promise<{ scores: Float64Array; windows: number; malformed: number }> {
  const sum = new Float64Array(n), count = new Float64Array(n);
  let windows = 0, malformed = 0;
  for (let p = 0; p < o.passes; p++) {
    const order = o.order(p);
    for (const [s, e] of grouprankWindows(n, o.groupSize, o.stride)) {
      const shown = order.slice(s, e);
      windows++;
      let got = await score(shown);
      if (!got) {
        malformed++;
        // The first stage's order within the window: its best 1, then (m − r)/m.
        const byFirst = shown.map((d, j) => [d, j] as const).sort((a, b) => a[0] - b[0]);
        got = new Map(byFirst.map(([, j], r) => [j, (shown.length - r) / shown.length]));
      }
      for (const [j, v] of got) {
        sum[shown[j]] += v;
        count[shown[j]]++;
      }
    }
  }
  // A document no window scored (a partial answer) keeps 0, as in the official average over what was scored.
  return { scores: sum.map((x, i) => (count[i] ? x / count[i] : 0)), windows, malformed };
}

/**
 * GroupRank's training reward, OUR READING of the paper: its RL reward code is
 * not released. 0 when the answer is unreadable or does not score every one
 * of the m documents; else nDCG@m of the documents ordered by the answer's
 * scores (ties: shown order; gain = label, discount log2(rank + 1), as
 * trec_eval) plus 0.5 × a distribution term, 1 − mean |s_i − g_i| with s the
 * score / 10 and g the label / the window's largest label (0 if none).
 */
export function grouprankReward(completion: string, labels: readonly number[]): number {
  const m = labels.length;
  const s = grouprankScores(completion, m);
  if (!s || s.size !== m) return 0;
  const order = [...Array(m).keys()].sort((a, b) => s.get(b)! - s.get(a)! || a - b);
  const dcg = (idx: number[]) => idx.reduce((acc, d, r) => acc + labels[d] / Math.log2(r + 2), 0);
  const ideal = dcg([...Array(m).keys()].sort((a, b) => labels[b] - labels[a]));
  const ndcg = ideal > 0 ? dcg(order) / ideal : 0;
  const top = Math.max(...labels);
  const dist = 1 - labels.reduce((acc, l, i) => acc + Math.abs(s.get(i)! - (top > 0 ? l / top : 0)), 0) / m;
  return ndcg + 0.5 * dist;
}

// Setwise heapsort (Zhuang et al. 2024, "A Setwise Approach…"; ielab/llm-rankers
// llmrankers/setwise.py, heapify / heapSort, the inference Rank-R1 uses): a
// max-heap in which each node has `numChild` children; a prompt shows a node
// and its children (numChild + 1 documents: 20 for Rank-R1's 19 children) and
// the model names the most relevant, which moves up. The heap is built, then
// the root is swapped to the end k times (re-heapified between), so the top k
// are found with about k·log_c(n) prompts rather than a full sort. The result
// is the array reversed: the k found first, in order, then the rest of the heap
// in reverse array order (as llm-rankers returns it).
//
// An answer the model gets wrong in form (null) keeps the parent where it is,
// as llm-rankers does (CHARACTERS.index fails → best_ind 0), and is counted.

/** The 0-based index of the most relevant of `docs`, or null when the answer could not be read. */
export type SetwiseChooser<T> = (docs: T[]) => Promise<number | null>;

export interface SetwiseResult<T> {
  order: T[];
  /** Prompts the chooser answered. */
  prompts: number;
  /** Answers that could not be read (the parent kept its place). */
  malformed: number;
}

export async function setwiseHeapsort<T>(items: readonly T[], o: { numChild: number; k: number }, choose: SetwiseChooser<T>): Promise<SetwiseResult<T>> {
  const c = o.numChild;
  if (!(Number.isInteger(c) && c >= 1)) throw new Error(`setwise: the number of children must be an integer ≥ 1 (documents per prompt − 1), got ${c}`);
  if (!(Number.isInteger(o.k) && o.k >= 1)) throw new Error(`setwise: k must be an integer ≥ 1, got ${o.k}`);
  const arr = items.slice();
  let prompts = 0, malformed = 0;
  const heapify = async (n: number, i: number): Promise<void> => {
    // Iterative sift-down: one prompt per level while the node has children.
    for (;;) {
      const first = c * i + 1;
      if (first >= n) return;
      const inds = [i];
      for (let j = first; j < Math.min(c * (i + 1) + 1, n); j++) inds.push(j);
      prompts++;
      const best = await choose(inds.map((j) => arr[j]));
      if (best === null) malformed++;
      const largest = best !== null && best >= 0 && best < inds.length ? inds[best] : i;
      if (largest === i) return;
      [arr[i], arr[largest]] = [arr[largest], arr[i]];
      i = largest;
    }
  };
  const n = arr.length;
  for (let i = Math.floor(n / c); i >= 0; i--) await heapify(n, i);
  let ranked = 0;
  for (let i = n - 1; i > 0; i--) {
    [arr[i], arr[0]] = [arr[0], arr[i]];
    if (++ranked === o.k) break;
    await heapify(i, 0);
  }
  return { order: arr.reverse(), prompts, malformed };
}

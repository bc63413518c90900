// Sentence splitting for extractive summarization: a rule-based splitter in
// the spirit of Punkt's orthographic heuristics, without a trained model.
// A sentence ends at . ! ? or an ellipsis (with any closing quotes or
// brackets) followed by whitespace, unless the period belongs to
//   - a title or reference abbreviation (Mr. Dr. St. vs. e.g. Fig. No. 5 ...),
//   - a single-letter initial (John F. Kennedy),
//   - a list number opening the sentence ("1. First"),
//   - an abbreviation that can also end a sentence (etc. Inc. U.S.) when the
//     next word is not a common sentence opener,
// or the next word starts in lower case. Decimals (3.14, $1.5) and dotted
// words (U.S.-made) never split, since no whitespace follows their period.
// Blank lines always end a sentence; single newlines do too unless
// `newlines: 'space'` (for hard-wrapped text).

/** Abbreviations after which a period never ends a sentence. Lower case, without the final period. */
const TITLES = new Set([
  'mr', 'mrs', 'ms', 'messrs', 'dr', 'prof', 'rev', 'hon', 'gen', 'sen', 'rep', 'gov', 'pres', 'capt', 'col', 'lt',
  'sgt', 'maj', 'cmdr', 'adm', 'st', 'mt', 'ft', 'vs', 'v', 'e.g', 'i.e', 'cf', 'viz', 'fig', 'figs', 'eq', 'eqs', 'ref',
  'refs', 'sec', 'ch', 'vol', 'vols', 'pp', 'approx', 'dept', 'est', 'jan', 'feb', 'mar', 'apr', 'jun', 'jul', 'aug',
  'sep', 'sept', 'oct', 'nov', 'dec', 'tab', 'art', 'para', 'op',
]);

/** Abbreviations before a number ("No. 5", "p. 12"). */
const BEFORE_NUMBER = new Set(['no', 'nos', 'p', 'art', 'sec', 'ch', 'vol', 'fig', 'eq', 'tab', 'nr']);

/** Abbreviations that may also end a sentence. */
const MAYBE_FINAL = new Set(['etc', 'inc', 'ltd', 'co', 'corp', 'jr', 'sr', 'al', 'bros', 'llc', 'plc', 'a.m', 'p.m', 'u.s', 'u.k', 'u.n', 'd.c', 'ph.d']);

/** Words that open sentences often; after a MAYBE_FINAL abbreviation they decide for a boundary. */
const OPENERS = new Set([
  'the', 'a', 'an', 'we', 'i', 'it', 'its', 'this', 'that', 'these', 'those', 'there', 'here', 'he', 'she', 'they',
  'you', 'but', 'and', 'or', 'in', 'on', 'for', 'as', 'our', 'my', 'his', 'her', 'their', 'if', 'when', 'while',
  'however', 'so', 'yet', 'at', 'to', 'with', 'what', 'how', 'why', 'who', 'all', 'no', 'not', 'let', 'now', 'then',
  'today', 'thus', 'also', 'both', 'each', 'many', 'most', 'some', 'after', 'before', 'since', 'because', 'although',
  'during', 'by', 'from', 'of', 'one', 'two', 'last', 'next', 'finally', 'first', 'second', 'moreover', 'furthermore',
]);

export interface SplitOptions {
  /** 'boundary' (default): a newline ends a sentence; 'space': only blank lines do (hard-wrapped text). */
  newlines?: 'boundary' | 'space';
}

/** The word before position `end` (exclusive), back to whitespace or an opening bracket/quote. */
function wordBefore(text: string, end: number): string {
  let i = end;
  while (i > 0 && !/[\s("'“‘[{«]/.test(text[i - 1])) i--;
  return text.slice(i, end);
}

function isBoundary(para: string, punctStart: number, nextStart: number, sentenceStart: number): boolean {
  const punct = para.slice(punctStart, nextStart).trim();
  const next = para.slice(nextStart).match(/^\S+/)?.[0] ?? '';
  const firstLetter = next.replace(/^[("'“‘[{«¿¡-]+/, '')[0] ?? '';
  const lowerNext = firstLetter !== '' && firstLetter !== firstLetter.toUpperCase() && firstLetter === firstLetter.toLowerCase();
  if (lowerNext) return false; // "e.g. something", "Really? yes", "wait... and"
  if (!punct.startsWith('.') || punct.startsWith('..') || punct.startsWith('…')) return true; // ! ? and ellipses before a capital
  const word = wordBefore(para, punctStart);
  const bare = word.toLowerCase();
  const nextIsNumber = /^\d/.test(firstLetter);
  if (TITLES.has(bare)) return false;
  if (BEFORE_NUMBER.has(bare) && nextIsNumber) return false;
  if (/^[A-Z]$/.test(word)) return false; // an initial
  if (/^\d+$/.test(word) && para.slice(sentenceStart, punctStart).trim() === word) return false; // "1. First"
  const nextWord = next.replace(/^[("'“‘[{«]+/, '').replace(/[^A-Za-z].*$/, '').toLowerCase();
  if (MAYBE_FINAL.has(bare) || /^([a-z]\.)+[a-z]$/i.test(word)) return OPENERS.has(nextWord); // etc. / U.S. / e.g. forms
  return true;
}

/** Splits one paragraph (no blank lines inside). */
function splitParagraph(para: string, out: string[]): void {
  const re = /(?:\.{2,}|…|[.!?]+)[\p{Pf}"'”’)\]}»]*(?=\s)/gu;
  let start = 0;
  for (const m of para.matchAll(re)) {
    const punctStart = m.index!, end = punctStart + m[0].length;
    let nextStart = end;
    while (nextStart < para.length && /\s/.test(para[nextStart])) nextStart++;
    if (nextStart >= para.length) break;
    if (isBoundary(para, punctStart, nextStart, start)) {
      const s = para.slice(start, end).trim();
      if (s) out.push(s);
      start = nextStart;
    }
  }
  const rest = para.slice(start).trim();
  if (rest) out.push(rest);
}

/** Splits text into sentences (trimmed, none empty). */
export function splitSentences(text: string, opts: SplitOptions = {}): string[] {
  const out: string[] = [];
  const blocks = opts.newlines === 'space' ? text.split(/\n[ \t]*\n/).map((p) => p.replace(/\s*\n\s*/g, ' ')) : text.split(/\n/);
  for (const b of blocks) splitParagraph(b.replace(/[ \t\r\f\v]+/g, ' '), out);
  return out;
}

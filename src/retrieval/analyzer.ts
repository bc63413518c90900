// How BM25 turns text into terms: lowercase, split into word tokens, drop
// stopwords. 'ascii' tokens are [a-z0-9]+ (the CISI and XQuAD-R en-en
// baselines); 'unicode' tokens are letters/digits/underscore of any script
// (Python's \w+, for German and other languages). The default stopword list
// is Lucene's ENGLISH_STOP_WORDS_SET (33 words: EnglishAnalyzer, Anserini).

export const LUCENE_STOPWORDS = [
  'a', 'an', 'and', 'are', 'as', 'at', 'be', 'but', 'by', 'for', 'if', 'in', 'into', 'is', 'it', 'no', 'not', 'of', 'on', 'or',
  'such', 'that', 'the', 'their', 'then', 'there', 'these', 'they', 'this', 'to', 'was', 'will', 'with',
];

export type TokenPattern = 'ascii' | 'unicode';

export interface AnalyzerConfig {
  tokens: TokenPattern;
  /** Terms dropped after lowercasing. */
  stopwords: string[];
}

export const DEFAULT_ANALYZER: AnalyzerConfig = { tokens: 'ascii', stopwords: LUCENE_STOPWORDS };

export function analyzer(c: AnalyzerConfig): (text: string) => string[] {
  const re = c.tokens === 'ascii' ? /[a-z0-9]+/g : /[\p{L}\p{N}_]+/gu;
  const stop = new Set(c.stopwords);
  return (text) => {
    const out: string[] = [];
    for (const m of text.toLowerCase().matchAll(re)) if (!stop.has(m[0])) out.push(m[0]);
    return out;
  };
}

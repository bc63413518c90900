// Four short labelled reviews tokenized for the bundled USE model: the tiny
// training set the per-method USE tests share.
import { UseTokenizer } from '../../src/tokenize/sentencepiece.ts';

export function tinyReviews(): { ids: number[]; label: number }[] {
  const tok = UseTokenizer.fromVocabFile();
  return ['A wonderful, moving film.', 'Terrible plot and wooden dialogue.', 'Loved it!', 'Not great, far too long.'].map((t, i) => ({ ids: tok.encode(t), label: i % 2 }));
}

// The Porter stemmer exactly as Google's rouge-score runs it: NLTK's
// PorterStemmer() in its default NLTK_EXTENSIONS mode (rouge-score's
// tokenizers.py constructs it without a mode). That mode differs from Martin
// Porter's published algorithm in a handful of places, each marked [NLTK]
// below: a table of irregular forms, words of ≤ 2 letters left alone, 'ies'
// and 'ied' on four-letter words, step 1c's y → i only after a consonant that
// is not the whole stem, 'alli' handled before 'bli', and two extra step-2
// rules ('fulli', 'logi'). Checked word by word against NLTK 3.8 in
// test/summarize_rouge.test.ts.

/** [NLTK] irregular forms, looked up before any rule. */
const IRREGULAR: Record<string, string> = {
  sky: 'sky', skies: 'sky', dying: 'die', lying: 'lie', tying: 'tie', news: 'news',
  innings: 'inning', inning: 'inning', outings: 'outing', outing: 'outing',
  cannings: 'canning', canning: 'canning', howe: 'howe', proceed: 'proceed', exceed: 'exceed', succeed: 'succeed',
};

const isVowelLetter = (c: string) => c === 'a' || c === 'e' || c === 'i' || c === 'o' || c === 'u';

/** Porter's consonant: not a vowel letter, and 'y' only when it follows a vowel (or starts the word). */
function isConsonant(w: string, i: number): boolean {
  const c = w[i];
  if (isVowelLetter(c)) return false;
  if (c === 'y') return i === 0 ? true : !isConsonant(w, i - 1);
  return true;
}

/** m in [C](VC)^m[V]: the number of vowel→consonant transitions. */
function measure(stem: string): number {
  let m = 0;
  for (let i = 1; i < stem.length; i++) if (!isConsonant(stem, i - 1) && isConsonant(stem, i)) m++;
  return m;
}

function containsVowel(stem: string): boolean {
  for (let i = 0; i < stem.length; i++) if (!isConsonant(stem, i)) return true;
  return false;
}

function endsDoubleConsonant(w: string): boolean {
  return w.length >= 2 && w[w.length - 1] === w[w.length - 2] && isConsonant(w, w.length - 1);
}

/** *o: ends consonant-vowel-consonant, the last not w, x or y; [NLTK] also a two-letter vowel-consonant word. */
function endsCvc(w: string): boolean {
  const n = w.length;
  if (n >= 3 && isConsonant(w, n - 3) && !isConsonant(w, n - 2) && isConsonant(w, n - 1) && !'wxy'.includes(w[n - 1])) return true;
  return n === 2 && !isConsonant(w, 0) && isConsonant(w, 1);
}

type Rule = [suffix: string, replacement: string, condition: ((stem: string) => boolean) | null];

/** The first rule whose suffix matches decides: its replacement if the condition holds, else the word unchanged. */
function applyRules(word: string, rules: Rule[]): string {
  for (const [suffix, replacement, condition] of rules) {
    if (word.endsWith(suffix)) {
      const stem = word.slice(0, word.length - suffix.length);
      return condition === null || condition(stem) ? stem + replacement : word;
    }
  }
  return word;
}

const positive = (stem: string) => measure(stem) > 0;
const overOne = (stem: string) => measure(stem) > 1;

function step1a(w: string): string {
  if (w.endsWith('ies') && w.length === 4) return w.slice(0, -3) + 'ie'; // [NLTK] dies → die, flies → fli
  return applyRules(w, [['sses', 'ss', null], ['ies', 'i', null], ['ss', 'ss', null], ['s', '', null]]);
}

function step1b(w: string): string {
  if (w.endsWith('ied')) return w.slice(0, -3) + (w.length === 4 ? 'ie' : 'i'); // [NLTK] died → die, spied → spi
  if (w.endsWith('eed')) {
    const stem = w.slice(0, -3);
    return measure(stem) > 0 ? stem + 'ee' : w;
  }
  let stem: string | null = null;
  for (const suffix of ['ed', 'ing']) {
    if (w.endsWith(suffix)) {
      const s = w.slice(0, w.length - suffix.length);
      if (containsVowel(s)) {
        stem = s;
        break;
      }
    }
  }
  if (stem === null) return w;
  if (stem.endsWith('at') || stem.endsWith('bl') || stem.endsWith('iz')) return stem + 'e';
  if (endsDoubleConsonant(stem)) return 'lsz'.includes(stem[stem.length - 1]) ? stem : stem.slice(0, -1);
  return measure(stem) === 1 && endsCvc(stem) ? stem + 'e' : stem;
}

function step1c(w: string): string {
  // [NLTK] y → i only after a consonant that is not the whole stem (happy → happi, enjoy and by stay).
  return applyRules(w, [['y', 'i', (stem) => stem.length > 1 && isConsonant(stem, stem.length - 1)]]);
}

function step2(w: string): string {
  // [NLTK] 'alli' → 'al' first, then step 2 again on the result.
  if (w.endsWith('alli') && positive(w.slice(0, -4))) return step2(w.slice(0, -4) + 'al');
  return applyRules(w, [
    ['ational', 'ate', positive], ['tional', 'tion', positive], ['enci', 'ence', positive], ['anci', 'ance', positive],
    ['izer', 'ize', positive], ['bli', 'ble', positive], ['alli', 'al', positive], ['entli', 'ent', positive],
    ['eli', 'e', positive], ['ousli', 'ous', positive], ['ization', 'ize', positive], ['ation', 'ate', positive],
    ['ator', 'ate', positive], ['alism', 'al', positive], ['iveness', 'ive', positive], ['fulness', 'ful', positive],
    ['ousness', 'ous', positive], ['aliti', 'al', positive], ['iviti', 'ive', positive], ['biliti', 'ble', positive],
    ['fulli', 'ful', positive], // [NLTK]
    ['logi', 'log', () => positive(w.slice(0, -3))], // [NLTK] the 'l' counts with the stem (geologi → geolog)
  ]);
}

function step3(w: string): string {
  return applyRules(w, [
    ['icate', 'ic', positive], ['ative', '', positive], ['alize', 'al', positive], ['iciti', 'ic', positive],
    ['ical', 'ic', positive], ['ful', '', positive], ['ness', '', positive],
  ]);
}

function step4(w: string): string {
  return applyRules(w, [
    ['al', '', overOne], ['ance', '', overOne], ['ence', '', overOne], ['er', '', overOne], ['ic', '', overOne],
    ['able', '', overOne], ['ible', '', overOne], ['ant', '', overOne], ['ement', '', overOne], ['ment', '', overOne],
    ['ent', '', overOne], ['ion', '', (s) => overOne(s) && (s.endsWith('s') || s.endsWith('t'))], ['ou', '', overOne],
    ['ism', '', overOne], ['ate', '', overOne], ['iti', '', overOne], ['ous', '', overOne], ['ive', '', overOne], ['ize', '', overOne],
  ]);
}

function step5a(w: string): string {
  if (!w.endsWith('e')) return w;
  const stem = w.slice(0, -1), m = measure(stem);
  return m > 1 || (m === 1 && !endsCvc(stem)) ? stem : w;
}

function step5b(w: string): string {
  return w.endsWith('ll') && measure(w.slice(0, -1)) > 1 ? w.slice(0, -1) : w;
}

/** Stems one word (lowercased first), as nltk.stem.porter.PorterStemmer().stem does. */
export function porterStem(word: string): string {
  const w = word.toLowerCase();
  if (Object.hasOwn(IRREGULAR, w)) return IRREGULAR[w];
  if (w.length <= 2) return w; // [NLTK]
  return step5b(step5a(step4(step3(step2(step1c(step1b(step1a(w))))))));
}

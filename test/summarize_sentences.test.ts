// The sentence splitter on hand-checked cases: abbreviations, initials,
// numbers and decimals, list markers, quotes, ellipses, newlines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitSentences } from '../src/summarize/sentences.ts';

const cases: [string, string[]][] = [
  ['Mr. Smith went to Washington. He arrived at 5 p.m. on Monday.', ['Mr. Smith went to Washington.', 'He arrived at 5 p.m. on Monday.']],
  ['Dr. Jones and Prof. Lee met St. Peter. They talked.', ['Dr. Jones and Prof. Lee met St. Peter.', 'They talked.']],
  ['John F. Kennedy spoke in 1961. The speech was short.', ['John F. Kennedy spoke in 1961.', 'The speech was short.']],
  ['The deficit was $3.5 billion in 2020. It grew 2.7% after that.', ['The deficit was $3.5 billion in 2020.', 'It grew 2.7% after that.']],
  ['See Fig. 3 and Eq. 2 for details. Results in Table 1 agree.', ['See Fig. 3 and Eq. 2 for details.', 'Results in Table 1 agree.']],
  ['He lives at No. 10 Downing Street. Visitors come daily.', ['He lives at No. 10 Downing Street.', 'Visitors come daily.']],
  ['We bought apples, pears, etc. The bill was small.', ['We bought apples, pears, etc.', 'The bill was small.']],
  ['We bought apples, pears, etc. and went home.', ['We bought apples, pears, etc. and went home.']],
  ['The U.S. Army grew. The U.S. The end.', ['The U.S. Army grew.', 'The U.S.', 'The end.']],
  ['Many methods exist, e.g. LoRA and DoRA. Both are cheap.', ['Many methods exist, e.g. LoRA and DoRA.', 'Both are cheap.']],
  ['Smith et al. Proposed nothing.', ['Smith et al. Proposed nothing.']],
  ['Smith et al. The paper follows.', ['Smith et al.', 'The paper follows.']],
  ['Is it done? Yes! It is.', ['Is it done?', 'Yes!', 'It is.']],
  ['"Stop." Then he left. (It was late.) Nobody followed.', ['"Stop."', 'Then he left.', '(It was late.)', 'Nobody followed.']],
  ['Wait... and then? Nothing... Silence followed.', ['Wait... and then?', 'Nothing...', 'Silence followed.']],
  ['1. First item is here. 2. Second item follows.', ['1. First item is here.', '2. Second item follows.']],
  ['Version 2.0 shipped. It works.', ['Version 2.0 shipped.', 'It works.']],
  ['first line without a period\nsecond line. Third sentence.', ['first line without a period', 'second line.', 'Third sentence.']],
  ['   ', []],
];

test('sentence splitting: abbreviations, initials, numbers, quotes, ellipses, list markers, newlines', () => {
  for (const [text, expected] of cases) assert.deepEqual(splitSentences(text), expected, JSON.stringify(text));
});

test("newlines: 'space' joins hard-wrapped lines and keeps blank lines as paragraph ends", () => {
  const text = 'The Congress met in\nthe capital. It voted\non the budget\n\nA new paragraph starts';
  assert.deepEqual(splitSentences(text, { newlines: 'space' }), ['The Congress met in the capital.', 'It voted on the budget', 'A new paragraph starts']);
  assert.deepEqual(splitSentences(text), ['The Congress met in', 'the capital.', 'It voted', 'on the budget', 'A new paragraph starts']);
});

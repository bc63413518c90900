// A six-record causal-LM set (prompt/completion pairs and one plain text) for the CLI,
// crash and recipe tests on the tiny decoders.
export const STORY: ({ prompt: string; completion: string } | { text: string })[] = [
  { prompt: 'once upon a time', completion: 'there lived a king' },
  { prompt: 'what is this', completion: 'a good movie' },
  { prompt: 'who was there', completion: 'the queen and the king' },
  { text: 'hello world, i love music' },
  { prompt: 'where is it', completion: 'far away' },
  { prompt: 'how are you', completion: 'fine, thanks' },
];

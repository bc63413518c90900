// Cross-entropy of logits against Hugging Face labels, computed directly from
// the logits as an oracle for lorakit's graph losses.

/**
 * Mean −log softmax(logits)[label] over labels ≠ −100. `logits` is [B, T, V]
 * with T = labels[0].length. `shift` = 1 gives the causal-LM loss (logits[:, t]
 * predicts labels[:, t + 1]); 0 scores each position against its own label
 * (seq2seq, whose decoder inputs are already shifted).
 */
export function labelCrossEntropy(logits: Float32Array, labels: number[][], V: number, shift: 0 | 1 = 0): number {
  const T = labels[0].length;
  let sum = 0, n = 0;
  labels.forEach((row, b) => {
    for (let t = 0; t + shift < T; t++) {
      const y = row[t + shift];
      if (y === -100) continue;
      const o = (b * T + t) * V;
      let mx = -Infinity;
      for (let v = 0; v < V; v++) mx = Math.max(mx, logits[o + v]);
      let z = 0;
      for (let v = 0; v < V; v++) z += Math.exp(logits[o + v] - mx);
      sum += mx + Math.log(z) - logits[o + y];
      n++;
    }
  });
  return sum / n;
}

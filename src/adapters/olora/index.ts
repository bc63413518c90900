// OLoRA init (Büyükakyüz 2024; PEFT `olora_init`): thin QR of W0 [out, in],
//   B = Q[:, :r],  A = R[:r, :],  W_res = W0 − s·B·A.
// Q's first r columns depend only on W0's first r columns; lorakit uses
// modified Gram-Schmidt, so column signs may differ from LAPACK's Householder
// QR (the product B·A, hence the model, is the same).
import type { LoraInit } from '../types.ts';
import { qrColumns } from '../../linalg/qr.ts';
import { residualOf } from '../pissa/index.ts';

export const olora: LoraInit = {
  matches: (v) => v === 'olora',
  init({ r, scaling, W, out: m, in: n }) {
    if (r > Math.min(m, n)) throw new Error(`OLoRA: r=${r} exceeds min(out, in) = ${Math.min(m, n)}`);
    const Q = new Float64Array(m * r);
    for (let i = 0; i < m; i++) for (let j = 0; j < r; j++) Q[i * r + j] = W[i * n + j];
    qrColumns(Q, m, r);
    const A = new Float32Array(r * n), B = Float32Array.from(Q);
    for (let k = 0; k < r; k++) for (let j = 0; j < n; j++) {
      let d = 0;
      for (let i = 0; i < m; i++) d += Q[i * r + k] * W[i * n + j];
      A[k * n + j] = d;
    }
    return { A, B, residual: residualOf(W, A, B, scaling, m, n, r) };
  },
};

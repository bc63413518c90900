// Environment for the PyTorch peers. This workplace sets OPENBLAS_CORETYPE=Haswell
// (and OPENBLAS_L2_SIZE) for old OpenBLAS builds, which holds torch to AVX2
// kernels (~27 vs ~48 GFLOP/s measured on the same 1024×768×3072 matmul, results
// checked against float64). The peers run with both unset, so PyTorch gets
// OpenBLAS's own (best) kernel; OPENBLAS_VERBOSE makes it name the kernel.
// LORAKIT_PEER_KEEP_OPENBLAS_ENV=1 keeps the machine's setting.

export function peerEnv(threads: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OPENBLAS_VERBOSE: '2' };
  if (!process.env.LORAKIT_PEER_KEEP_OPENBLAS_ENV) {
    delete env.OPENBLAS_CORETYPE;
    delete env.OPENBLAS_L2_SIZE;
  }
  return env;
}

/** The kernel OpenBLAS reported on the peer's stderr. */
export function openblasCore(stderr: string): string {
  return /Core: (\S+)/.exec(stderr)?.[1] ?? 'unknown';
}

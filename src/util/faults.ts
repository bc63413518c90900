// Fault injection for crash-safety tests: LORAKIT_FAULT names points in the
// code where this process should die (SIGKILL, as `kill -9` would) or a write
// should fail as on a full disk (ENOSPC), so tests hit exact moments, such as
// the middle of a checkpoint write, that a randomly timed kill only hits by
// chance. Unset (always, outside tests) it costs one lookup per point.
//
//   LORAKIT_FAULT="<point>@<n>[:kill|:enospc],..."   the n-th time (1-based) <point> is reached
//
// Points: 'write:<file name>' (half the bytes written, then the fault: a torn
// file), 'checkpoint:written' (files complete, not yet renamed),
// 'checkpoint:renamed' (before `latest` moves), 'checkpoint:latest' (before
// pruning), 'checkpoint:pruning' (an old checkpoint half deleted).

export type FaultAction = 'kill' | 'enospc';

interface Fault { point: string; at: number; action: FaultAction }

let faults: Fault[] | null = null;
const hits = new Map<string, number>();

function parse(spec: string): Fault[] {
  return spec.split(',').filter(Boolean).map((s) => {
    const m = /^(.+)@(\d+)(?::(kill|enospc))?$/.exec(s.trim());
    if (!m) throw new Error(`LORAKIT_FAULT: '${s}' is not <point>@<n>[:kill|:enospc]`);
    return { point: m[1], at: Number(m[2]), action: (m[3] ?? 'kill') as FaultAction };
  });
}

/** The action due at this pass through `point`, if LORAKIT_FAULT names it (counts passes). */
export function faultDue(point: string): FaultAction | null {
  faults ??= parse(process.env.LORAKIT_FAULT ?? '');
  if (!faults.length) return null;
  const n = (hits.get(point) ?? 0) + 1;
  hits.set(point, n);
  return faults.find((f) => f.point === point && f.at === n)?.action ?? null;
}

/** An error as a full disk gives it (code ENOSPC). */
export function enospc(what: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`ENOSPC: no space left on device, ${what}`), { code: 'ENOSPC', errno: -28, syscall: 'write' });
}

/** Dies or throws here when LORAKIT_FAULT says so. */
export function faultPoint(point: string): void {
  const action = faultDue(point);
  if (action) faultAct(action, point);
}

/** Carries out a due fault: SIGKILL to this process, or an ENOSPC error. */
export function faultAct(action: FaultAction, point: string): void {
  if (action === 'kill') {
    process.kill(process.pid, 'SIGKILL');
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10_000); // nothing more runs while the signal lands
  }
  if (action === 'enospc') throw enospc(point);
}

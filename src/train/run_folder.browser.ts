// run_folder.ts in a browser bundle (package.json "browser"): a web page has
// no folder for checkpoints and metrics.jsonl, so a run stays in memory.

import type * as Node from './run_folder.ts';

export type ResumedFrom = Node.ResumedFrom;

export class RunFolder {
  static open(dir: string, _o: { resume: boolean }): Node.RunFolder {
    throw new Error(
      `FitOptions.outDir ('${dir}'): checkpoints and metrics.jsonl go to a folder, which a web page does not have. ` +
        'Leave outDir out in a browser: the run stays in memory, onStep and onEval report its progress, and the trained tensors are the live parameters',
    );
  }
}

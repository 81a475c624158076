// --show-trajectory: the draft block converging, as in the CLLM paper's animation. Tokens that reached
// their fixed point (accepted) in green, still-changing guesses in yellow. Live on a terminal, one line
// per step otherwise.
import chalk from 'chalk';
import type { StepTrace } from '../engine/generate.js';
import type { Model } from '../engine/model.js';
import { escapeControl } from './terminal.js';

export interface TrajectoryView {
  live: boolean;
  step: (trace: StepTrace) => void | Promise<void>;
}

/** Live frames are held this long at least, so that the convergence can be watched; decode time excludes it. */
const FRAME_MS = 60;

export function trajectoryView(model: Model, out: NodeJS.WriteStream): TrajectoryView {
  const live = Boolean(out.isTTY);
  // Control characters would move the cursor and break the frame: newlines show as ⏎, the rest as \xNN.
  const piece = (t: number) => escapeControl(model.tokenText(t, { renderSpecial: true }).replace(/\n/g, '⏎'));
  let drawnLines = 0;

  const step = (trace: StepTrace) => {
    const converged = trace.predicted.slice(0, trace.accepted).map(piece);
    const changing = trace.predicted.slice(trace.accepted).map(piece);
    const header = `step ${String(trace.step).padStart(4)}  pos ${String(trace.position).padStart(5)}  accepted ${trace.accepted}/${trace.fed.length}`;
    if (!live) {
      out.write(`${header}  ${JSON.stringify(converged.join(''))} | ${JSON.stringify(changing.join(''))}\n`);
      return;
    }
    // A block wider than the terminal loses its last guesses, so that the frame stays one line.
    const width = (out.columns || 80) - 1;
    let shown = 0;
    let used = 0;
    const all = [...converged, ...changing];
    while (shown < all.length && used + all[shown].length <= width) used += all[shown++].length;
    const block = chalk.bgGreen.black(converged.slice(0, shown).join('')) + chalk.yellow(changing.slice(0, Math.max(0, shown - converged.length)).join(''));
    // Move back over the previous frame and redraw it in place.
    out.write((drawnLines ? `\x1b[${drawnLines}A` : '') + `\r\x1b[2K${chalk.bold(header)}\n\r\x1b[2K${block}\n`);
    drawnLines = 2;
    return new Promise<void>((resolve) => setTimeout(resolve, FRAME_MS));
  };

  return { live, step };
}

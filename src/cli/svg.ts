// What cllm's hand-drawn SVG charts share (the bench report's, bench/frontier.ts's): drawn by hand so that a
// chart stays one self-contained file that opens offline, with no charting dependency.

export const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export interface Frame {
  width: number;
  height: number;
  margin: { left: number; right: number; top: number; bottom: number };
}

/** A tick at a pixel coordinate along its axis. */
export interface Tick {
  at: number;
  label: string;
}

/**
 * The plot area's two axes, a grid line and label at each y tick, a label at each x tick, and the axis
 * titles. Its classes (axis, grid) are styled by the page or the SVG that holds it.
 */
export function axes({ width: W, height: H, margin: M }: Frame, x: { ticks: Tick[]; title: string }, y: { ticks: Tick[]; title: string }): string {
  return [
    `<line x1="${M.left}" y1="${H - M.bottom}" x2="${W - M.right}" y2="${H - M.bottom}" class="axis"/>`,
    `<line x1="${M.left}" y1="${M.top}" x2="${M.left}" y2="${H - M.bottom}" class="axis"/>`,
    ...y.ticks.map((t) => `<line x1="${M.left}" x2="${W - M.right}" y1="${t.at}" y2="${t.at}" class="grid"/><text x="${M.left - 6}" y="${t.at + 4}" text-anchor="end">${esc(t.label)}</text>`),
    ...x.ticks.map((t) => `<text x="${t.at}" y="${H - M.bottom + 16}" text-anchor="middle">${esc(t.label)}</text>`),
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 8}" text-anchor="middle">${esc(x.title)}</text>`,
    `<text transform="translate(14 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(y.title)}</text>`,
  ].join('');
}

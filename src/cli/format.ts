// Numbers as people read them.

export function humanCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(2)} ${units[i]}`;
}

/** "model 60%, suffix-match 31%, token-recycling 9%": where generated tokens came from, out of `total`. */
export function originShares(counts: Record<string, number>, total: number): string {
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([origin, n]) => `${origin} ${((100 * n) / total).toFixed(0)}%`)
    .join(', ');
}

// The source tree keeps the shape the README draws: the decoder depends on nothing outside src/engine/ (but
// the GGUF check it runs on a model file), no module imports itself in a circle, and files stay short.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = fileURLToPath(new URL('../src/', import.meta.url));
const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => join(src, f));

/** The modules a file imports, type-only imports included (a circle of types is still a circle to read). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^(?:import|export) [^;]*? from '(\.{1,2}\/[^']+)';/gms)].map((m) => resolve(dirname(file), m[1]).replace(/\.js$/, '.ts'));
}

const graph = new Map(files.map((f) => [f, importsOf(f)]));
const name = (file: string) => relative(src, file);

describe('source layout', () => {
  it('resolves every relative import to a file in src/', () => {
    for (const [file, imports] of graph) for (const target of imports) expect(graph.has(target), `${name(file)} imports ${name(target)}`).toBe(true);
  });

  it('has no import circles', () => {
    const circles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        circles.push([...path.slice(path.indexOf(file)), file].map(name).join(' -> '));
        return;
      }
      state.set(file, 'open');
      for (const target of graph.get(file) ?? []) visit(target, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of files) visit(file, []);
    expect(circles).toEqual([]);
  });

  it('keeps the decoder free of the commands, the tasks and the downloads', () => {
    const outside = [...graph]
      .filter(([file]) => name(file).startsWith('engine/'))
      .flatMap(([file, imports]) => imports.filter((t) => !name(t).startsWith('engine/') && name(t) !== 'model-files/gguf-check.ts').map((t) => `${name(file)} -> ${name(t)}`));
    expect(outside).toEqual([]);
  });

  it('keeps every file under 300 lines, but the GGUF checker', () => {
    const long = files.filter((f) => name(f) !== 'model-files/gguf-check.ts' && readFileSync(f, 'utf8').split('\n').length > 300).map(name);
    expect(long).toEqual([]);
  });
});

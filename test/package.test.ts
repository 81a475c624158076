// cllm as a package others install: `npm pack`, installed into a scratch project, imported by its name,
// with its types. The install skips the native build (minutes; CI's `npm ci` covers it) and borrows this
// checkout's addon instead.
import { execFileSync } from 'node:child_process';
import { readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { scratchDir } from './support/cli.js';
import { fixtureModel } from './support/models.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const project = scratchDir('cllm-package-');
const npm = (args: string[], cwd: string) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

const USE = `
import { Model, Sequence, complete, buildInfo, samplingSettings } from 'cllm';

const model = await Model.load(process.argv[2]);
const context = model.createContext({ contextSize: 256 });
const sequence = new Sequence(context);
const prompt = Array.from(model.tokenize('Once upon a time'));
const texts = {};
for (const decoder of ['ar', 'jacobi', 'auto']) {
  sequence.reset();
  let streamed = '';
  const stream = model.textStream();
  const { result, stats } = await complete(sequence, prompt, {
    decoder, block: 8, maxTokens: 24, sampling: samplingSettings({ temperature: 0.8, seed: 3 }),
    onTokens: (tokens) => { streamed += tokens.map((t) => stream.push(t)).join(''); },
  });
  texts[decoder] = { text: model.detokenize(result.tokens), streamed: streamed + stream.flush(), steps: stats.steps };
}
model.dispose();
console.log(JSON.stringify({ backend: buildInfo().backend, texts }));
`;

const TYPED = `
import { Model, complete, Sequence, type GenerateOptions, type GenerationStats } from 'cllm';
export async function first(path: string): Promise<GenerationStats> {
  const model = await Model.load(path);
  const options: GenerateOptions = { decoder: 'auto', maxTokens: 4 };
  const { stats } = await complete(new Sequence(model.createContext()), [1], options);
  model.dispose();
  return stats;
}
`;

describe('the npm package', () => {
  beforeAll(() => {
    npm(['pack', '--ignore-scripts', '--pack-destination', project, root], root);
    const tarball = readdirSync(project).find((f) => f.endsWith('.tgz'))!;
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'scratch', type: 'module', private: true }));
    npm(['install', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', `./${tarball}`], project);
    symlinkSync(join(root, 'build'), join(project, 'node_modules/cllm/build'));
  }, 300_000);

  it('imports by its name and generates the same text with every decoder, streamed as returned', () => {
    writeFileSync(join(project, 'use.mjs'), USE);
    const { backend, texts } = JSON.parse(execFileSync(process.execPath, ['use.mjs', fixtureModel], { cwd: project, encoding: 'utf8' }));
    expect(backend).toMatch(/cpu|cuda/);
    expect(texts.ar.text.length).toBeGreaterThan(0);
    for (const decoder of ['ar', 'jacobi', 'auto']) {
      expect(texts[decoder].text).toBe(texts.ar.text);
      expect(texts[decoder].streamed).toBe(texts.ar.text);
    }
  });

  it('ships its types', () => {
    writeFileSync(join(project, 'typed.ts'), TYPED);
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noEmit: true, skipLibCheck: true, types: [] }, files: ['typed.ts'] }));
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    expect(() => execFileSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8', stdio: 'pipe' })).not.toThrow();
  });

  it('puts the cllm command on the path', () => {
    const version = execFileSync(join(project, 'node_modules/.bin/cllm'), ['--version'], { encoding: 'utf8' }).trim();
    expect(version).toBe(JSON.parse(npm(['pkg', 'get', 'version'], root)));
  });
});

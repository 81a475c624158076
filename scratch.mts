import { Model } from './src/engine/model.ts';
import { Sequence } from './src/engine/sequence.ts';
import { complete } from './src/engine/jacobi.ts';
const m = await Model.load('../shared/models/stories260K.gguf');
const ctx = m.createContext({ contextSize: 512, threads: 2 });
let decodeMs = 0, rbMs = 0, n = 0;
const ev = { size: ctx.size, isEndOfGeneration: (t: number) => ctx.isEndOfGeneration(t),
  decode: async (t: any, s: number, o: any) => { const t0 = performance.now(); const r = await ctx.decode(t, s, o); decodeMs += performance.now() - t0; n++; return r; },
  rollback: (p: number) => { const t0 = performance.now(); ctx.rollback(p); rbMs += performance.now() - t0; } };
const seq = new Sequence(ev as any);
const toks = Array.from(m.tokenize('Once upon a time'));
for (const b of [1, 4, 16]) {
  for (let rep = 0; rep < 3; rep++) {
    decodeMs = 0; rbMs = 0; n = 0; seq.reset();
    const { stats } = await complete(seq, toks, { block: b, maxTokens: 128 });
    console.log(b, stats.decodeMs.toFixed(1), 'decode', decodeMs.toFixed(1), 'rollback', rbMs.toFixed(2), 'passes', n, (decodeMs / n).toFixed(3), 'ms/pass');
  }
}

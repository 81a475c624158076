// A model spread over two ggml-rpc-server processes on loopback decodes exactly as it does locally, Jacobi
// included. The servers are built from the pinned source with the addon (build/bin/ggml-rpc-server); each
// test file starts its own on free ports and stops them.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { complete, firstDivergence } from '../src/engine/generate.js';
import { Model } from '../src/engine/model.js';
import { STORY_OPENERS } from '../src/tasks/prompt-sets.js';
import { Sequence } from '../src/engine/sequence.js';
import { fixtureModel, haveStories, storiesModel } from './support/models.js';

const SERVER = resolve(import.meta.dirname, '../build/bin/ggml-rpc-server');
const PROMPTS = STORY_OPENERS.slice(0, 6);
const MAX_TOKENS = 64;

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => done(port));
    });
    server.on('error', fail);
  });
}

async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((done) => {
      const socket = createConnection({ host: '127.0.0.1', port }, () => {
        socket.end();
        done(true);
      });
      socket.on('error', () => done(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`ggml-rpc-server did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((done) => child.once('exit', () => done()));
}

/** Greedy AR output locally, then AR and Jacobi over RPC: every output must equal the local one. */
async function compareOverRpc(path: string, rpc: string[]): Promise<{ runs: number; tokens: number; differences: string[] }> {
  const local = await Model.load(path);
  const remote = await Model.load(path, { rpc });
  const localSequence = new Sequence(local.createContext({ contextSize: 256, threads: 1 }));
  const remoteSequence = new Sequence(remote.createContext({ contextSize: 256, threads: 1 }));
  const differences: string[] = [];
  let runs = 0;
  let tokens = 0;
  try {
    for (const [i, prompt] of PROMPTS.entries()) {
      const promptTokens = Array.from(local.tokenize(prompt));
      localSequence.reset();
      const reference = (await complete(localSequence, promptTokens, { decoder: 'ar', maxTokens: MAX_TOKENS, margins: true })).result;
      for (const options of [{ decoder: 'ar' as const }, { decoder: 'jacobi' as const, block: 4 }, { decoder: 'jacobi' as const, block: 16 }]) {
        remoteSequence.reset();
        const result = (await complete(remoteSequence, promptTokens, { ...options, maxTokens: MAX_TOKENS })).result;
        runs++;
        tokens += result.tokens.length;
        const d = firstDivergence(reference, result.tokens);
        if (d) differences.push(`prompt ${i} ${options.decoder} ${'block' in options ? options.block : ''}: token ${d.index} is ${d.got}, local ${d.expected}`);
      }
    }
  } finally {
    local.dispose();
    remote.dispose();
  }
  return { runs, tokens, differences };
}

describe.skipIf(!existsSync(SERVER))('a model spread over two RPC servers on loopback', () => {
  const servers: ChildProcess[] = [];
  const endpoints: string[] = [];

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const child = spawn(SERVER, ['-H', '127.0.0.1', '-p', String(port), '-t', '1'], { stdio: 'ignore' });
      servers.push(child);
      endpoints.push(`127.0.0.1:${port}`);
      await waitForPort(port);
    }
  }, 30_000);

  afterAll(async () => {
    for (const child of servers) child.kill('SIGTERM');
    await Promise.all(servers.map(exited));
    expect(servers.every((child) => child.exitCode !== null || child.signalCode !== null)).toBe(true);
  });

  it('registers each server as a GPU-type device', async () => {
    const model = await Model.load(fixtureModel, { rpc: endpoints });
    try {
      const { native } = await import('../src/engine/addon.js');
      const rpcDevices = native().buildInfo().devices.filter((d) => endpoints.includes(d.description));
      expect(rpcDevices.map((d) => d.description).sort()).toEqual([...endpoints].sort());
      expect(rpcDevices.every((d) => d.gpu)).toBe(true);
    } finally {
      model.dispose();
    }
  });

  for (const { name, path, skip } of [
    { name: 'stories260K', path: storiesModel, skip: !haveStories },
    { name: 'the random fixture', path: fixtureModel, skip: false },
  ]) {
    it.skipIf(skip)(`decodes ${name} as locally: AR and Jacobi blocks 4 and 16, ${PROMPTS.length} prompts x ${MAX_TOKENS} tokens`, async () => {
      const { runs, tokens, differences } = await compareOverRpc(path, endpoints);
      console.log(`${name} over RPC: ${runs} runs (${tokens} tokens) compared with local AR; ${differences.length} differ`);
      expect(tokens).toBeGreaterThan(runs * 8);
      expect(differences).toEqual([]);
    }, 300_000);
  }

  it('names an RPC server it cannot reach, in one line', async () => {
    const port = await freePort();
    await expect(Model.load(fixtureModel, { rpc: [`127.0.0.1:${port}`] })).rejects.toThrow(new RegExp(`^cannot reach the RPC server 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\)`));
  });
});

// cllm pull against a hub look-alike on loopback: redirects to a CDN with X-Linked-Size/X-Linked-Etag, Range
// requests, cut connections, tokens; first the engine's pullModel, then the command as a user runs it.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, relative, sep } from 'node:path';
import pty from 'node-pty';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cachePath } from '../src/model-files/cache.js';
import { pullModel, resolveModelSpec, type PullProgress } from '../src/model-files/pull.js';
import { parseModelSpec } from '../src/model-files/spec.js';
import { fixtureModel } from './support/models.js';
import { cllm, scratchDir } from './support/cli.js';

const scratch = scratchDir('cllm-pull-');

/** 3 MiB and a bit of deterministic, incompressible bytes (an xorshift stream). */
function fixtureBytes(length: number): Buffer {
  const words = new Uint32Array(Math.ceil(length / 4));
  let x = 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return Buffer.from(words.buffer).subarray(0, length);
}

const CONTENT = fixtureBytes(3 * 1024 * 1024 + 4321);
const SHA256 = createHash('sha256').update(CONTENT).digest('hex');
const CUT = 1024 * 1024 + 123;
const TOKEN = 'hf_test_token';

/** What the servers do; each test starts from the defaults. */
interface Plan {
  /** Responses of the CDN that end, with the socket destroyed, after CUT bytes. */
  cuts: number;
  /** Send CUT bytes, then nothing more until the client goes away. */
  stall: boolean;
  /** Answer Range requests with the whole file (200). */
  ignoreRange: boolean;
  /** The hub answers 401 unless this token comes with the request. */
  requireToken: boolean;
  linkedEtag: string;
  /** Where the hub redirects: a path on the hub's own server, or another origin. */
  cdn: 'same' | 'other';
}

interface Seen {
  server: 'hub' | 'cdn';
  method: string;
  path: string;
  range?: string;
  authorization?: string;
}

const defaults = (): Plan => ({ cuts: 0, stall: false, ignoreRange: false, requireToken: false, linkedEtag: `"${SHA256}"`, cdn: 'same' });
let plan = defaults();
let seen: Seen[] = [];
let hub: Server;
let otherCdn: Server;
let hubBase: string;
let otherCdnBase: string;
let cache: string;

function handler(server: Seen['server']) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    seen.push({ server, method: req.method ?? '', path, range: req.headers.range, authorization: req.headers.authorization });
    if (path.startsWith('/cdn/')) return serveFile(req, res, {});
    if (path === '/models/fixture.gguf') return void res.writeHead(200, { 'content-length': String(readFileSync(fixtureModel).length) }).end(readFileSync(fixtureModel));
    if (path.startsWith('/plain/') && path.endsWith('.gguf')) return serveFile(req, res, { etag: `W/"${SHA256}"` });
    const resolved = /^\/[\w.-]+\/[\w.-]+\/resolve\/[\w.-]+\/(.+)$/.exec(path);
    if (!resolved || resolved[1].includes('missing')) return void res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end('not found');
    if (plan.requireToken && req.headers.authorization !== `Bearer ${TOKEN}`) return void res.writeHead(401, { 'x-error-code': 'GatedRepo' }).end('unauthorized');
    const cdn = plan.cdn === 'same' ? '' : otherCdnBase;
    res.writeHead(302, { location: `${cdn}/cdn/${SHA256}`, 'x-linked-size': String(CONTENT.length), 'x-linked-etag': plan.linkedEtag, etag: plan.linkedEtag });
    res.end();
  };
}

function serveFile(req: IncomingMessage, res: ServerResponse, headers: Record<string, string>): void {
  const range = plan.ignoreRange ? null : /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = range ? Number(range[1]) : 0;
  if (start >= CONTENT.length) return void res.writeHead(416, { 'content-range': `bytes */${CONTENT.length}` }).end();
  const body = CONTENT.subarray(start);
  const rangeHeaders = range ? { 'content-range': `bytes ${start}-${CONTENT.length - 1}/${CONTENT.length}` } : {};
  res.writeHead(range ? 206 : 200, { ...headers, ...rangeHeaders, 'content-length': String(body.length), 'accept-ranges': 'bytes' });
  if (req.method === 'HEAD') return void res.end();
  if (plan.stall) return void res.write(body.subarray(0, CUT));
  if (plan.cuts > 0) {
    plan.cuts--;
    return void res.write(body.subarray(0, CUT), () => res.socket?.destroy());
  }
  res.end(body);
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  hub = createServer(handler('hub'));
  otherCdn = createServer(handler('cdn'));
  hubBase = await listen(hub);
  otherCdnBase = await listen(otherCdn);
});

afterAll(() => {
  for (const server of [hub, otherCdn]) {
    server.closeAllConnections();
    server.close();
  }
});

let cacheCount = 0;
beforeEach(() => {
  plan = defaults();
  seen = [];
  cache = join(scratch, `cache-${++cacheCount}`);
});

const sha256Of = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');
const gets = () => seen.filter((s) => s.method === 'GET');
/** Where each GET of the CDN started: 0 without a Range header, N for "bytes=N-". */
const cdnRangeStarts = () => gets().filter((s) => s.path.startsWith('/cdn')).map((s) => Number(/^bytes=(\d+)-$/.exec(s.range ?? 'bytes=0-')?.[1]));

/** Runs the engine with the hub at HF_ENDPOINT and the given token variables, restoring the environment after. */
async function withHubEnv<T>(env: Record<string, string | undefined>, body: () => Promise<T>): Promise<T> {
  const keys = ['HF_ENDPOINT', 'HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', ...Object.keys(env)];
  const saved = Object.fromEntries(keys.map((k) => [k, process.env[k]]));
  Object.assign(process.env, { HF_ENDPOINT: hubBase });
  delete process.env.HF_TOKEN;
  delete process.env.HUGGING_FACE_HUB_TOKEN;
  for (const [k, v] of Object.entries(env)) if (v !== undefined) process.env[k] = v;
  try {
    return await body();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe('model specs and the cache layout', () => {
  it('parses hf: specs with a revision and subfolders, and URLs, into paths under the cache', () => {
    const hubSpec = parseModelSpec('hf:org/repo@v1.0/sub/dir/model-Q4_K_M.gguf');
    expect(hubSpec).toEqual({ kind: 'hf', repo: 'org/repo', revision: 'v1.0', file: 'sub/dir/model-Q4_K_M.gguf' });
    expect(cachePath(hubSpec, '/c')).toBe('/c/hf/org/repo/v1.0/sub/dir/model-Q4_K_M.gguf');
    expect(cachePath(parseModelSpec('hf:org/repo/m.gguf'), '/c')).toBe('/c/hf/org/repo/main/m.gguf');
    expect(cachePath(parseModelSpec('https://example.com:8443/a/my%20model.gguf?sig=1'), '/c')).toBe('/c/url/example.com_8443/a/my model.gguf');
  });

  it('refuses hostile or malformed specs as usage errors, and keeps URL paths inside the cache', () => {
    for (const spec of ['hf:a/b/../../x.gguf', 'hf:../b/x.gguf', 'hf:a/..@main/x.gguf', 'hf:a/b@../x.gguf', 'hf:a/b/sub\\..\\x.gguf', 'hf:a/b', 'hf:a/b/model.safetensors', 'ftp://h/x.gguf', 'hf:a/b@1@2/x.gguf']) {
      expect(() => parseModelSpec(spec), spec).toThrow(expect.objectContaining({ name: 'CllmError', exitCode: 2 }));
    }
    for (const spec of ['http://h/%2e%2e/%2e%2e/x.gguf', 'http://h/a%2F..%2F..%2Fx.gguf', 'http://h/..%2f..%2fx.gguf', 'http://h/a/%2E./x.gguf']) {
      const path = cachePath(parseModelSpec(spec), '/c');
      expect(relative('/c/url/h', path).split(sep), `${spec} -> ${path}`).not.toContain('..');
    }
  });

  it('returns a local path unchanged', async () => {
    expect(await resolveModelSpec('models/x.gguf', { cacheDir: cache })).toBe('models/x.gguf');
    expect(existsSync(cache)).toBe(false);
  });
});

describe('pullModel', () => {
  it('follows the hub redirect, checks size and sha256, reports progress, and then hits the cache', async () => {
    const progress: PullProgress[] = [];
    const result = await withHubEnv({}, () => pullModel('hf:org/repo/sub/model.gguf', { cacheDir: cache, onProgress: (p) => progress.push({ ...p }) }));
    expect(result).toEqual({ path: join(cache, 'hf/org/repo/main/sub/model.gguf'), cached: false, size: CONTENT.length, verified: true });
    expect(sha256Of(result.path)).toBe(SHA256);
    expect(gets().map((s) => s.path)).toEqual(['/org/repo/resolve/main/sub/model.gguf', `/cdn/${SHA256}`]);
    expect(progress[0]).toMatchObject({ file: 'model.gguf', receivedBytes: 0, totalBytes: CONTENT.length, resumedFrom: 0 });
    expect(progress.at(-1)).toMatchObject({ receivedBytes: CONTENT.length });
    expect(readdirSync(join(cache, 'hf/org/repo/main/sub'))).toEqual(['model.gguf']);

    seen = [];
    const again = await withHubEnv({}, () => resolveModelSpec('hf:org/repo/sub/model.gguf', { cacheDir: cache }));
    expect(again).toBe(result.path);
    expect(seen).toEqual([]);
  });

  it('sends the token to the hub only, never to a CDN on another origin', async () => {
    plan.requireToken = true;
    plan.cdn = 'other';
    const { path } = await withHubEnv({ HF_TOKEN: TOKEN }, () => pullModel('hf:org/repo@abc123/model.gguf', { cacheDir: cache }));
    expect(sha256Of(path)).toBe(SHA256);
    expect(gets().map((s) => [s.server, s.authorization])).toEqual([['hub', `Bearer ${TOKEN}`], ['cdn', undefined]]);
  });

  it('takes the token from HUGGING_FACE_HUB_TOKEN too, and says to set HF_TOKEN without one', async () => {
    plan.requireToken = true;
    await withHubEnv({ HUGGING_FACE_HUB_TOKEN: TOKEN }, () => pullModel('hf:org/repo/model.gguf', { cacheDir: cache }));
    await expect(withHubEnv({}, () => pullModel('hf:org/gated/model.gguf', { cacheDir: cache }))).rejects.toThrow(/access denied \(401.*set HF_TOKEN/);
  });

  it('keeps the part file when the connection is cut, and the next pull resumes it with a Range request', async () => {
    plan.cuts = 1;
    const spec = 'hf:org/repo/model.gguf';
    const path = join(cache, 'hf/org/repo/main/model.gguf');
    await expect(withHubEnv({}, () => pullModel(spec, { cacheDir: cache, retries: 0 }))).rejects.toThrow(/connection was lost.*pull again to resume/);
    expect(existsSync(path)).toBe(false);
    // What reached the disk: the client may lose the last chunks in flight when the socket goes.
    const kept = statSync(`${path}.part`).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(CUT);

    seen = [];
    const progress: PullProgress[] = [];
    const result = await withHubEnv({}, () => pullModel(spec, { cacheDir: cache, onProgress: (p) => progress.push({ ...p }) }));
    expect(gets().map((s) => s.range)).toEqual([`bytes=${kept}-`, `bytes=${kept}-`]);
    expect(progress[0]).toMatchObject({ receivedBytes: kept, resumedFrom: kept });
    expect(result.verified).toBe(true);
    expect(sha256Of(path)).toBe(SHA256);
    expect(existsSync(`${path}.part`)).toBe(false);
  });

  it('resumes a cut connection by itself within one pull', async () => {
    plan.cuts = 2;
    const { path } = await withHubEnv({}, () => pullModel('hf:org/repo/model.gguf', { cacheDir: cache }));
    expect(sha256Of(path)).toBe(SHA256);
    const starts = cdnRangeStarts();
    expect(starts).toHaveLength(3);
    expect(starts[0]).toBe(0);
    expect(starts[1]).toBeGreaterThan(0);
    expect(starts[2]).toBeGreaterThan(starts[1]);
  });

  it('starts over when the server answers a Range request with the whole file', async () => {
    const path = join(cache, 'hf/org/repo/main/model.gguf');
    mkdirSync(join(cache, 'hf/org/repo/main'), { recursive: true });
    writeFileSync(`${path}.part`, Buffer.alloc(1000, 7));
    plan.ignoreRange = true;
    await withHubEnv({}, () => pullModel('hf:org/repo/model.gguf', { cacheDir: cache }));
    expect(sha256Of(path)).toBe(SHA256);
  });

  it('finishes a complete part file on a 416, and starts over when the part is longer than the file', async () => {
    const dir = join(cache, 'hf/org/repo/main');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'complete.gguf.part'), CONTENT);
    writeFileSync(join(dir, 'long.gguf.part'), Buffer.concat([CONTENT, Buffer.from('junk')]));
    const complete = await withHubEnv({}, () => pullModel('hf:org/repo/complete.gguf', { cacheDir: cache }));
    expect(complete.verified).toBe(true);
    expect(gets().filter((s) => s.server === 'hub' && s.path.startsWith('/cdn'))).toHaveLength(1);
    const long = await withHubEnv({}, () => pullModel('hf:org/repo/long.gguf', { cacheDir: cache }));
    expect(sha256Of(long.path)).toBe(SHA256);
  });

  it('deletes a download whose sha256 is wrong, with one line naming both hashes', async () => {
    const wrong = 'a'.repeat(64);
    plan.linkedEtag = `W/"${wrong}"`;
    const error = await withHubEnv({}, () => pullModel('hf:org/repo/model.gguf', { cacheDir: cache })).catch((err: Error) => err);
    expect((error as Error).message).toMatch(new RegExp(`^model\\.gguf: sha256 mismatch: expected ${wrong}, got ${SHA256}; the download was deleted$`));
    expect(readdirSync(join(cache, 'hf/org/repo/main'))).toEqual([]);
  });

  it('pulls a plain URL, checking Content-Length and a sha256 ETag', async () => {
    const result = await pullModel(`${hubBase}/plain/dir/file.gguf`, { cacheDir: cache });
    const port = new URL(hubBase).port;
    expect(result).toEqual({ path: join(cache, `url/127.0.0.1_${port}/plain/dir/file.gguf`), cached: false, size: CONTENT.length, verified: true });
    expect(sha256Of(result.path)).toBe(SHA256);
  });

  it('says when the server cannot be reached, or another pull holds the file', async () => {
    const closed = createServer();
    const base = await listen(closed);
    await new Promise((resolve) => closed.close(resolve));
    await expect(pullModel(`${base}/x.gguf`, { cacheDir: cache })).rejects.toThrow(/^cannot reach 127\.0\.0\.1:\d+: ECONNREFUSED$/);

    const path = cachePath(parseModelSpec(`${hubBase}/plain/locked.gguf`), cache);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(`${path}.lock`, String(process.pid));
    await expect(pullModel(`${hubBase}/plain/locked.gguf`, { cacheDir: cache })).rejects.toThrow(/another cllm \(pid \d+\) is downloading locked\.gguf/);
    writeFileSync(`${path}.lock`, '999999999'); // a process that is gone
    await pullModel(`${hubBase}/plain/locked.gguf`, { cacheDir: cache });
    expect(existsSync(`${path}.lock`)).toBe(false);
  });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `cllm pull ...` in a child process (asynchronously: the servers live in this one). */
function pull(args: string[], env: Record<string, string> = {}, onSpawn?: (child: ReturnType<typeof spawn>) => void): Promise<Run> {
  const child = spawn(process.execPath, [cllm, 'pull', ...args], {
    env: { ...process.env, HF_TOKEN: '', HUGGING_FACE_HUB_TOKEN: '', HF_ENDPOINT: hubBase, CLLM_CACHE: cache, NO_COLOR: '1', ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  onSpawn?.(child);
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('cllm pull', () => {
  it('prints only the path on stdout, and a second pull hits the cache without a request', async () => {
    const first = await pull(['hf:org/repo/model.gguf']);
    const path = join(cache, 'hf/org/repo/main/model.gguf');
    expect(first).toMatchObject({ code: 0, stdout: `${path}\n` });
    expect(first.stderr).toMatch(/^pulled model\.gguf: 3\.00 MiB in [\d.]+ s, sha256 checked\n$/);
    expect(sha256Of(path)).toBe(SHA256);

    seen = [];
    expect(await pull(['hf:org/repo/model.gguf'])).toEqual({ code: 0, stdout: `${path}\n`, stderr: '' });
    expect(seen).toEqual([]);
  });

  it('takes the cache folder from --cache-dir over CLLM_CACHE', async () => {
    const dir = join(scratch, 'flag-cache');
    const { code, stdout } = await pull(['--cache-dir', dir, `${hubBase}/plain/m.gguf`]);
    expect(code).toBe(0);
    expect(stdout.trim().startsWith(join(dir, 'url/127.0.0.1_'))).toBe(true);
    expect(existsSync(cache)).toBe(false);
  });

  it('resumes after a cut connection with a Range request', async () => {
    plan.cuts = 1;
    const { code, stdout } = await pull(['hf:org/repo/model.gguf']);
    expect(code).toBe(0);
    const starts = cdnRangeStarts();
    expect(starts).toHaveLength(2);
    expect(starts[1]).toBeGreaterThan(0);
    expect(starts[1]).toBeLessThanOrEqual(CUT);
    expect(sha256Of(stdout.trim())).toBe(SHA256);
  });

  it('sends HF_TOKEN to HF_ENDPOINT, and without it says to set it, in one line', async () => {
    plan.requireToken = true;
    const denied = await pull(['hf:org/gated/model.gguf']);
    expect(denied.code).toBe(1);
    expect(denied.stdout).toBe('');
    expect(denied.stderr).toMatch(/^cllm: hf:org\/gated\/model\.gguf: access denied \(401 Unauthorized\): .*set HF_TOKEN[^\n]*\n$/);
    const allowed = await pull(['hf:org/gated/model.gguf'], { HF_TOKEN: TOKEN });
    expect(allowed.code).toBe(0);
    expect(gets().filter((s) => s.path.includes('/resolve/')).at(-1)?.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('reports a missing file in one line', async () => {
    const { code, stdout, stderr } = await pull(['hf:org/repo/missing.gguf']);
    expect({ code, stdout }).toEqual({ code: 1, stdout: '' });
    expect(stderr).toMatch(/^cllm: hf:org\/repo\/missing\.gguf: not found \(404\): check the repository, revision and file name\n$/);
  });

  it('fails a sha256 mismatch in one line and leaves no file', async () => {
    plan.linkedEtag = `"${'b'.repeat(64)}"`;
    const { code, stderr } = await pull(['hf:org/repo/model.gguf']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^cllm: model\.gguf: sha256 mismatch: expected b{64}, got [0-9a-f]{64}; the download was deleted\n$/);
    expect(readdirSync(join(cache, 'hf/org/repo/main'))).toEqual([]);
  });

  it('refuses a hostile spec as a usage error, writing nothing', async () => {
    const { code, stdout, stderr } = await pull(['hf:a/b/../../x.gguf']);
    expect({ code, stdout }).toEqual({ code: 2, stdout: '' });
    expect(stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(existsSync(cache)).toBe(false);
  });

  it('keeps the part file on Ctrl-C, exits 130, and resumes on the next pull', async () => {
    plan.stall = true;
    const part = join(cache, 'hf/org/repo/main/model.gguf.part');
    const interrupted = await pull(['hf:org/repo/model.gguf'], {}, async (child) => {
      while (!existsSync(part) || statSync(part).size < CUT) await new Promise((r) => setTimeout(r, 20));
      child.kill('SIGINT');
    });
    expect(interrupted.code).toBe(130);
    expect(interrupted.stderr).toMatch(/^cllm: interrupted: the partial download of hf:org\/repo\/model\.gguf is kept; pull again to resume\n$/);
    expect(statSync(part).size).toBe(CUT);

    plan.stall = false;
    seen = [];
    const resumed = await pull(['hf:org/repo/model.gguf']);
    expect(resumed.code).toBe(0);
    expect(gets().at(-1)?.range).toBe(`bytes=${CUT}-`);
    expect(sha256Of(resumed.stdout.trim())).toBe(SHA256);
  });

  it('shows a progress bar with percent, bytes, speed and ETA on a terminal', async () => {
    const term = pty.spawn(process.execPath, [cllm, 'pull', 'hf:org/repo/model.gguf'], {
      cols: 150,
      rows: 10,
      env: { ...process.env, HF_TOKEN: '', HUGGING_FACE_HUB_TOKEN: '', HF_ENDPOINT: hubBase, CLLM_CACHE: cache, NO_COLOR: '1' } as Record<string, string>,
    });
    let screen = '';
    term.onData((d) => (screen += d));
    const code = await new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
    expect(code).toBe(0);
    expect(screen.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')).toMatch(/model\.gguf \S+ \d+% [\d.]+ \w*B\/3\.00 MiB .*ETA/);
  });
});

describe('-m with a model to pull', () => {
  it('pulls the model on first use, then loads it from the cache', async () => {
    const child = (args: string[]) =>
      new Promise<Run>((resolve) => {
        const c = spawn(process.execPath, [cllm, ...args], { env: { ...process.env, CLLM_CACHE: cache, NO_COLOR: '1' } });
        let stdout = '';
        let stderr = '';
        c.stdout.on('data', (d) => (stdout += d));
        c.stderr.on('data', (d) => (stderr += d));
        c.on('close', (code) => resolve({ code, stdout, stderr }));
      });
    const url = `${hubBase}/models/fixture.gguf`;
    const info = await child(['info', '-m', url, '--json']);
    expect(info.stderr).toBe('');
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout).path).toBe(join(cache, `url/127.0.0.1_${new URL(hubBase).port}/models/fixture.gguf`));
    seen = [];
    const run = await child(['run', '-m', url, '--temp', '0', '--max-tokens', '4', '--raw', 'hello']);
    expect(run.code).toBe(0);
    expect(seen).toEqual([]);
  });
});

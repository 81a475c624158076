// Downloads GGUF models from the Hugging Face hub or a plain URL into a local cache, resumably and verified,
// so that `-m hf:ORG/REPO/FILE.gguf` works like a local path. Only a complete, checked file ever gets its
// final name: the bytes arrive in FILE.part, which a later pull resumes with an HTTP Range request.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { CllmError } from '../engine/errors.js';
import { cachePath, defaultCacheDir, inFileSystem, lock, sizeOf, syncFile } from './cache.js';
import { announcedSize, contentRange, nonNegativeInteger, sha256FromEtag } from './http-headers.js';
import { describeSource, isRemoteSpec, parseModelSpec, type ModelSource } from './spec.js';

export interface PullProgress {
  /** The file's name, without its folders. */
  file: string;
  /** Bytes on disk so far, those of a resumed download included. */
  receivedBytes: number;
  /** The file's size, when the server tells it. */
  totalBytes?: number;
  /** Bytes that were already on disk when this download started. */
  resumedFrom: number;
}

export interface PullOptions {
  /** The cache folder; default: $CLLM_CACHE, else $XDG_CACHE_HOME/cllm, else ~/.cache/cllm. */
  cacheDir?: string;
  onProgress?: (progress: PullProgress) => void;
  /** Aborting keeps the partial download for a later pull to resume. */
  signal?: AbortSignal;
  /** How many times a connection cut mid-file is resumed at once before giving up (default 3). */
  retries?: number;
}

export interface PullResult {
  path: string;
  /** True when the file was already in the cache, and nothing was downloaded. */
  cached: boolean;
  /** The file's size in bytes. */
  size: number;
  /** True when the download was checked against a sha256 the server gave. */
  verified: boolean;
}
const HUB = 'https://huggingface.co';
const MAX_REDIRECTS = 10;
const DEFAULT_RETRIES = 3;

/** A local path as it is; an hf: or http(s) spec pulled into the cache (once) and its local path. */
export async function resolveModelSpec(spec: string, options: PullOptions = {}): Promise<string> {
  if (!isRemoteSpec(spec)) return spec;
  return (await pullModel(spec, options)).path;
}

/** Downloads a model into the cache unless it is there already. */
export async function pullModel(spec: string | ModelSource, options: PullOptions = {}): Promise<PullResult> {
  const source = typeof spec === 'string' ? parseModelSpec(spec) : spec;
  const path = cachePath(source, options.cacheDir ?? defaultCacheDir());
  const cached = await sizeOf(path);
  if (cached !== undefined) return { path, cached: true, size: cached, verified: false };
  await inFileSystem(path, () => mkdir(dirname(path), { recursive: true }));
  const unlock = await lock(path);
  try {
    // Another process may have finished it between the check above and taking the lock.
    const finished = await sizeOf(path);
    if (finished !== undefined) return { path, cached: true, size: finished, verified: false };
    const { size, verified } = await downloadWithResumes(remoteOf(source), path, options);
    await inFileSystem(path, () => rename(partOf(path), path));
    return { path, cached: false, size, verified };
  } finally {
    await unlock();
  }
}

interface Remote {
  url: URL;
  name: string;
  hub: boolean;
  /** The Authorization header and the only origin it may be sent to. */
  authorization?: { origin: string; header: string };
}

function remoteOf(source: ModelSource): Remote {
  if (source.kind === 'url') return { url: source.url, name: source.url.href, hub: false };
  const endpoint = hubEndpoint();
  const path = source.file.split('/').map(encodeURIComponent).join('/');
  const url = new URL(`${endpoint.href.replace(/\/+$/, '')}/${source.repo}/resolve/${encodeURIComponent(source.revision)}/${path}`);
  const token = process.env.HF_TOKEN || process.env.HUGGING_FACE_HUB_TOKEN;
  const authorization = token ? { origin: endpoint.origin, header: `Bearer ${token}` } : undefined;
  return { url, name: describeSource(source), hub: true, authorization };
}

function hubEndpoint(): URL {
  const value = process.env.HF_ENDPOINT || HUB;
  try {
    return new URL(value);
  } catch {
    throw new CllmError(`HF_ENDPOINT is not a URL: "${value}"`, 2);
  }
}

const partOf = (path: string) => `${path}.part`;

/** Resumes at once after a connection cut mid-file, as long as each try gets further. */
async function downloadWithResumes(remote: Remote, path: string, options: PullOptions): Promise<{ size: number; verified: boolean }> {
  for (let resumesLeft = options.retries ?? DEFAULT_RETRIES; ; resumesLeft--) {
    const before = (await sizeOf(partOf(path))) ?? 0;
    try {
      return await downloadOnce(remote, path, options);
    } catch (err) {
      const progressed = ((await sizeOf(partOf(path))) ?? 0) > before;
      if (!(err instanceof DownloadCut) || !progressed || resumesLeft <= 0 || options.signal?.aborted) throw err;
    }
  }
}

/** A connection lost mid-file: the part file is kept, and pulling again resumes it. */
class DownloadCut extends CllmError {}

interface Expected {
  size?: number;
  sha256?: string;
}

async function downloadOnce(remote: Remote, path: string, options: PullOptions): Promise<{ size: number; verified: boolean }> {
  const part = partOf(path);
  const offset = (await sizeOf(part)) ?? 0;
  const { response, linked } = await openDownload(remote, offset, options.signal);
  if (response.status === 416 && offset > 0) {
    await response.body?.cancel();
    const size = linked.size ?? contentRange(response)?.size;
    // Asked for the bytes after the end: the part is complete if its size is the file's, else it is stale.
    if (size === offset) return finish(part, { ...linked, size }, await hashOf(part, linked.sha256));
    return startOver(remote, path, options);
  }
  if (response.status === 206 && contentRange(response)?.start !== offset) {
    await response.body?.cancel();
    if (offset === 0) throw new CllmError(`${remote.name}: the server sent a part of the file that was not asked for`);
    return startOver(remote, path, options);
  }
  if (response.status !== 200 && response.status !== 206) throw await statusError(remote, response);
  // A 200 to a Range request is the whole file again: the server cannot resume.
  const resumedFrom = response.status === 206 ? offset : 0;
  const expected: Expected = { size: linked.size ?? announcedSize(response), sha256: linked.sha256 ?? sha256FromEtag(response.headers.get('etag')) };
  const hash = resumedFrom > 0 ? await hashOf(part, expected.sha256) : expected.sha256 ? createHash('sha256') : undefined;
  await receive(response, part, { resumedFrom, expected, hash, name: basename(path), remote }, options);
  return finish(part, expected, hash);
}

async function startOver(remote: Remote, path: string, options: PullOptions): Promise<{ size: number; verified: boolean }> {
  await inFileSystem(path, () => rm(partOf(path), { force: true }));
  return downloadOnce(remote, path, options);
}

/**
 * GETs the file, following redirects by hand: the hub puts the file's size and sha256 on its redirect to the
 * CDN, and the token must go to the hub alone.
 */
async function openDownload(remote: Remote, offset: number, signal?: AbortSignal): Promise<{ response: Response; linked: Expected }> {
  const linked: Expected = {};
  let url = remote.url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const response = await request(remote, url, offset, signal);
    linked.size ??= nonNegativeInteger(response.headers.get('x-linked-size'));
    linked.sha256 ??= sha256FromEtag(response.headers.get('x-linked-etag'));
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) return { response, linked };
    await response.body?.cancel();
    url = new URL(location, url);
  }
  throw new CllmError(`${remote.name}: more than ${MAX_REDIRECTS} redirects`);
}

async function request(remote: Remote, url: URL, offset: number, signal?: AbortSignal): Promise<Response> {
  // Identity encoding, so that Content-Length and Range count the file's own bytes.
  const headers: Record<string, string> = { 'user-agent': 'cllm', 'accept-encoding': 'identity' };
  if (offset > 0) headers.range = `bytes=${offset}-`;
  if (remote.authorization && url.origin === remote.authorization.origin) headers.authorization = remote.authorization.header;
  try {
    return await fetch(url, { headers, redirect: 'manual', signal });
  } catch (err) {
    if (signal?.aborted) throw interrupted(remote);
    throw new CllmError(`cannot reach ${url.host}: ${networkReason(err)}`);
  }
}

function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

function interrupted(remote: Remote): CllmError {
  return new CllmError(`interrupted: the partial download of ${remote.name} is kept; pull again to resume`, 130);
}

async function statusError(remote: Remote, response: Response): Promise<CllmError> {
  await response.body?.cancel();
  const status = `${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
  // The hub answers 401 for a private or missing repository without a token, and 403 for a gated one.
  if (remote.hub && (response.status === 401 || response.status === 403)) {
    const advice = remote.authorization
      ? 'check that HF_TOKEN can read the repository, and accept its terms on its page if it is gated'
      : 'if the repository is private or gated, set HF_TOKEN to a token from https://huggingface.co/settings/tokens';
    return new CllmError(`${remote.name}: access denied (${status}): ${advice}`);
  }
  if (response.status === 404) return new CllmError(`${remote.name}: not found (404): check the ${remote.hub ? 'repository, revision and file name' : 'URL'}`);
  if (response.status === 401 || response.status === 403) return new CllmError(`${remote.name}: access denied (${status})`);
  return new CllmError(`${remote.name}: the server answered ${status}`);
}

interface Receiving {
  resumedFrom: number;
  expected: Expected;
  hash?: Hash;
  name: string;
  remote: Remote;
}

// Each chunk is on disk before the next is read, so that whatever a cut leaves in the part file was hashed and
// counted, and a resume starts exactly where the file ends.
async function receive(response: Response, part: string, how: Receiving, options: PullOptions): Promise<void> {
  let receivedBytes = how.resumedFrom;
  const report = () => options.onProgress?.({ file: how.name, receivedBytes, totalBytes: how.expected.size, resumedFrom: how.resumedFrom });
  report();
  const file = await inFileSystem(part, () => open(part, how.resumedFrom > 0 ? 'a' : 'w'));
  try {
    for await (const chunk of bodyOf(response)) {
      await inFileSystem(part, () => file.write(chunk));
      how.hash?.update(chunk);
      receivedBytes += chunk.length;
      report();
    }
  } catch (err) {
    if (options.signal?.aborted) throw interrupted(how.remote);
    if (err instanceof CllmError) throw err;
    throw new DownloadCut(`${how.remote.name}: the connection was lost (${networkReason(err)}); pull again to resume`);
  } finally {
    await file.close();
  }
}

// fetch gives a 200 or 206 a body always; Node's web streams are async iterable, which the DOM types don't say.
function bodyOf(response: Response): AsyncIterable<Uint8Array> {
  return response.body as unknown as NodeReadableStream<Uint8Array>;
}

/** Checks the finished part file's size and sha256; a wrong file is deleted, so that the next pull starts over. */
async function finish(part: string, expected: Expected, hash: Hash | undefined): Promise<{ size: number; verified: boolean }> {
  const size = (await sizeOf(part)) ?? 0;
  const name = basename(part.replace(/\.part$/, ''));
  if (expected.size !== undefined && size < expected.size) {
    throw new DownloadCut(`${name}: the download ended after ${size} of ${expected.size} bytes; pull again to resume`);
  }
  if (expected.size !== undefined && size > expected.size) {
    await rm(part, { force: true });
    throw new CllmError(`${name}: got ${size} bytes, expected ${expected.size}; the download was deleted, pull again to start over`);
  }
  const got = hash?.digest('hex');
  if (expected.sha256 && got !== expected.sha256) {
    await rm(part, { force: true });
    throw new CllmError(`${name}: sha256 mismatch: expected ${expected.sha256}, got ${got}; the download was deleted`);
  }
  await inFileSystem(part, () => syncFile(part));
  return { size, verified: Boolean(expected.sha256) };
}

/** A hash of the part file so far, so that a resumed download is checked whole; none when there is no sha256. */
async function hashOf(part: string, sha256: string | undefined): Promise<Hash | undefined> {
  if (!sha256) return undefined;
  const hash = createHash('sha256');
  // Not piped: a Hash used as a stream digests itself when the stream ends, and the download goes on after.
  await inFileSystem(part, async () => {
    for await (const chunk of createReadStream(part)) hash.update(chunk);
  });
  return hash;
}

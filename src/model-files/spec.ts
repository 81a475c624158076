// What `-m` names when it is not a local file: hf:ORG/REPO[@REVISION]/FILE.gguf or an http(s) URL, parsed
// strictly, since its parts become folder names in the cache.
import { CllmError } from '../engine/errors.js';

export type ModelSource =
  | { kind: 'hf'; repo: string; revision: string; file: string }
  | { kind: 'url'; url: URL };
// A repository owner, name or revision: what the hub allows, which also rules out "." and "..".
const HUB_NAME = /^[\w][\w.-]*$/;
const SPEC_HELP = 'hf:ORG/REPO[@REVISION]/FILE.gguf or an http(s):// URL';

export function isRemoteSpec(spec: string): boolean {
  return /^(hf:|https?:\/\/)/i.test(spec);
}

/** Parses hf:ORG/REPO[@REVISION]/FILE.gguf or an http(s) URL; anything malformed is a usage error. */
export function parseModelSpec(spec: string): ModelSource {
  if (/^hf:/i.test(spec)) return parseHubSpec(spec, spec.slice(3));
  if (/^https?:\/\//i.test(spec)) return parseUrlSpec(spec);
  throw badSpec(spec, `expected ${SPEC_HELP}`);
}

function parseHubSpec(spec: string, rest: string): ModelSource {
  const [owner, repoAndRevision, ...fileParts] = rest.split('/');
  if (!repoAndRevision || fileParts.length === 0) throw badSpec(spec, `name the file: ${SPEC_HELP}`);
  const [name, revision = 'main', ...extra] = repoAndRevision.split('@');
  if (extra.length > 0) throw badSpec(spec, `"${repoAndRevision}" has more than one @`);
  for (const part of [owner, name, revision]) {
    if (!HUB_NAME.test(part) || part.includes('..')) throw badSpec(spec, `"${part}" is not a valid repository or revision name`);
  }
  const badPart = fileParts.find((part) => !isSafeSegment(part));
  if (badPart !== undefined) throw badSpec(spec, `"${badPart}" is not a valid part of a file path`);
  const file = fileParts.join('/');
  if (!/\.gguf$/i.test(file)) {
    throw badSpec(spec, 'cllm runs GGUF files; a safetensors checkpoint needs converting with llama.cpp\'s convert_hf_to_gguf.py first');
  }
  return { kind: 'hf', repo: `${owner}/${name}`, revision, file };
}

function parseUrlSpec(spec: string): ModelSource {
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    throw badSpec(spec, 'not a valid URL');
  }
  if (urlPathSegments(url).length === 0) throw badSpec(spec, 'the URL names no file');
  return { kind: 'url', url };
}

function isSafeSegment(part: string): boolean {
  return part !== '' && part !== '.' && part !== '..' && !/[\\\x00-\x1f]/.test(part);
}

function badSpec(spec: string, why: string): CllmError {
  return new CllmError(`bad model "${spec}": ${why}`, 2);
}

/** A URL's path as file names: decoded, so that they read well, then made harmless. */
export function urlPathSegments(url: URL): string[] {
  return url.pathname
    .split('/')
    .filter((part) => part !== '')
    .map((part) => safeName(decodeOrKeep(part)));
}

function decodeOrKeep(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

export function safeName(part: string): string {
  const cleaned = part.replace(/[/\\\x00-\x1f]/g, '_');
  return cleaned === '.' || cleaned === '..' ? cleaned.replace(/\./g, '_') : cleaned;
}

export function describeSource(source: ModelSource): string {
  return source.kind === 'hf' ? `hf:${source.repo}${source.revision === 'main' ? '' : `@${source.revision}`}/${source.file}` : source.url.href;
}

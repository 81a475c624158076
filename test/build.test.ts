// The native build's own failure messages: one readable paragraph, no cmake or compiler spew.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const script = fileURLToPath(new URL('../scripts/build-native.mjs', import.meta.url));

function build(env: Record<string, string>) {
  // A PATH holding only node: no cmake, no compiler, no git.
  const bin = mkdtempSync(join(tmpdir(), 'cllm-path-'));
  symlinkSync(process.execPath, join(bin, 'node'));
  return spawnSync(process.execPath, [script], { encoding: 'utf8', env: { PATH: bin, ...env } });
}

describe('native build errors', () => {
  it('says that CMake is missing and how to get it', () => {
    const { status, stderr } = build({});
    expect(status).toBe(1);
    expect(stderr).toMatch(/cllm: native build failed\.\nCMake was not found on PATH\. .*apt-get install cmake/);
  });

  it('rejects an unknown CLLM_GPU before building anything', () => {
    const { status, stderr } = build({ CLLM_GPU: 'vulkan' });
    expect(status).toBe(1);
    expect(stderr).toMatch(/CLLM_GPU must be cpu, cuda or metal, not "vulkan"\./);
  });

  it('says when CLLM_LLAMA_CPP_DIR is not a llama.cpp checkout', () => {
    const { status, stderr } = spawnSync(process.execPath, [script], { encoding: 'utf8', env: { ...process.env, CLLM_LLAMA_CPP_DIR: '/nonexistent' } });
    expect(status).toBe(1);
    expect(stderr).toMatch(/CLLM_LLAMA_CPP_DIR=\/nonexistent is not a llama.cpp checkout \(no include\/llama.h\)\./);
  });
});

// The native build's own failure messages: one readable paragraph, no cmake or compiler spew.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { scratchDir } from './support/cli.js';

const scratch = scratchDir('cllm-build-');
const script = fileURLToPath(new URL('../scripts/build-native.mjs', import.meta.url));

function build(env: Record<string, string>) {
  // A PATH holding only node: no cmake, no compiler, no git.
  const bin = mkdtempSync(join(scratch, 'cllm-path-'));
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

describe('the backend the build picks itself', () => {
  // A PATH with node and, as asked, stand-ins for nvidia-smi and nvcc; a toolkit folder with or without cuBLAS.
  function detect({ gpu = false, nvcc = false, cublas = false, env = {} as Record<string, string> } = {}) {
    const bin = mkdtempSync(join(scratch, 'cllm-path-'));
    symlinkSync(process.execPath, join(bin, 'node'));
    const toolkit = mkdtempSync(join(scratch, 'cllm-cuda-'));
    mkdirSync(join(toolkit, 'bin'));
    mkdirSync(join(toolkit, 'lib64'));
    const script = (file: string, body: string) => writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    if (gpu) script(join(bin, 'nvidia-smi'), 'echo "NVIDIA H100 80GB HBM3"');
    if (nvcc) script(join(toolkit, 'bin', 'nvcc'), 'echo "Cuda compilation tools, release 13.0"');
    if (cublas) writeFileSync(join(toolkit, 'lib64', 'libcublas.so.13'), '');
    const result = spawnSync(process.execPath, [script_, '--detect'], { encoding: 'utf8', env: { PATH: `${bin}:/usr/bin:/bin`, CUDA_HOME: toolkit, ...env } });
    return { status: result.status, stdout: result.stdout.trim(), toolkit };
  }
  const script_ = script;
  const onLinux = process.platform === 'linux';

  it.runIf(onLinux)('builds for the CPU where no NVIDIA GPU is found, and says so', () => {
    const { status, stdout } = detect({ nvcc: true, cublas: true });
    expect(status).toBe(0);
    expect(stdout).toMatch(/^cpu: no NVIDIA GPU found: nvidia-smi lists none; CLLM_GPU=cuda forces a CUDA build$/);
  });

  it.runIf(onLinux)('builds for CUDA where a GPU, nvcc and cuBLAS are all present', () => {
    const { stdout, toolkit } = detect({ gpu: true, nvcc: true, cublas: true });
    expect(stdout).toBe(`cuda: NVIDIA H100 80GB HBM3, ${join(toolkit, 'bin', 'nvcc')}, cuBLAS in ${join(toolkit, 'lib64')}`);
  });

  it.runIf(onLinux)('says that cuBLAS is missing, and how to point the build at the wheels', () => {
    const { stdout } = detect({ gpu: true, nvcc: true });
    expect(stdout).toMatch(/^cpu: NVIDIA H100 80GB HBM3 and nvcc found, but not cuBLAS\. .*pip install nvidia-cublas nvidia-cuda-runtime.*CLLM_CUBLAS_DIR/);
    const wheel = mkdtempSync(join(scratch, 'cllm-cublas-'));
    mkdirSync(join(wheel, 'lib'));
    writeFileSync(join(wheel, 'lib', 'libcublas.so.13'), '');
    expect(detect({ gpu: true, nvcc: true, env: { CLLM_CUBLAS_DIR: wheel } }).stdout).toMatch(new RegExp(`^cuda: .*cuBLAS in ${join(wheel, 'lib')}$`));
  });

  // The build also looks in /usr/local/cuda, which a test cannot hide.
  it.runIf(onLinux && !existsSync('/usr/local/cuda/bin/nvcc'))('says that the CUDA toolkit is missing', () => {
    expect(detect({ gpu: true }).stdout).toMatch(/^cpu: NVIDIA H100 80GB HBM3 found, but no CUDA toolkit \(nvcc is not on PATH/);
  });

  it('lets CLLM_GPU decide', () => {
    expect(detect({ env: { CLLM_GPU: 'cuda' } }).stdout).toBe('cuda: CLLM_GPU');
  });
});

describe('the batch-invariance patch for ggml-cuda', () => {
  const llama = fileURLToPath(new URL('../deps/llama.cpp/', import.meta.url));
  const patch = fileURLToPath(new URL('../native/patches/ggml-cuda-batch-invariant.patch', import.meta.url));

  it.runIf(existsSync(join(llama, 'ggml')))('applies to the pinned llama.cpp', () => {
    const source = readFileSync(join(llama, 'ggml/src/ggml-cuda/ggml-cuda.cu'), 'utf8');
    // A CUDA build applies it in place; else it must still apply cleanly.
    const args = source.includes('ggml_backend_cuda_set_batch_invariant') ? ['apply', '--check', '--reverse', patch] : ['apply', '--check', patch];
    const check = spawnSync('git', args, { cwd: llama, encoding: 'utf8' });
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
  });
});

#!/usr/bin/env node
// Builds the native addon: fetches the pinned llama.cpp (unless CLLM_LLAMA_CPP_DIR points at a checkout),
// then configures and builds with cmake-js. The build folder is kept, so a change to native/ recompiles
// only the addon, never llama.cpp.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, platform, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { llamaCpp } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

function fail(paragraph) {
  console.error(`\ncllm: native build failed.\n${paragraph}\n`);
  process.exit(1);
}

function hasCommand(cmd, args = ['--version']) {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

function git(cwd, ...args) {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function headCommit(dir) {
  try {
    return git(dir, 'rev-parse', 'HEAD');
  } catch {
    return 'unknown';
  }
}

// The npm package node-llama-cpp ships llama.cpp as a git bundle; only that file is used.
function fetchPinnedLlamaCpp(dest) {
  if (existsSync(join(dest, 'CMakeLists.txt')) && headCommit(dest) === llamaCpp.commit) return;
  if (!hasCommand('git')) fail('git is needed to unpack the pinned llama.cpp source. Install git and run `npm install` again.');
  console.log(`cllm: fetching llama.cpp ${llamaCpp.commit.slice(0, 10)} from the npm package ${llamaCpp.bundle}`);
  const tmp = mkdtempSync(join(tmpdir(), 'cllm-llama-'));
  try {
    const npm = platform() === 'win32' ? 'npm.cmd' : 'npm';
    const packed = spawnSync(npm, ['pack', llamaCpp.bundle, '--silent', '--pack-destination', tmp], { encoding: 'utf8' });
    if (packed.status !== 0) {
      fail(`Could not download ${llamaCpp.bundle} from the npm registry (${(packed.stderr || '').trim().split('\n').pop()}). ` +
        'Check the network, or set CLLM_LLAMA_CPP_DIR to a llama.cpp checkout of your own.');
    }
    const tarball = join(tmp, packed.stdout.trim().split('\n').pop());
    execFileSync('tar', ['xzf', tarball, '-C', tmp, 'package/llama/gitRelease.bundle']);
    rmSync(dest, { recursive: true, force: true });
    execFileSync('git', ['clone', '--quiet', '--no-checkout', join(tmp, 'package/llama/gitRelease.bundle'), dest]);
    git(dest, '-c', 'advice.detachedHead=false', 'checkout', '--quiet', llamaCpp.commit);
    const got = headCommit(dest);
    if (got !== llamaCpp.commit) fail(`The llama.cpp bundle holds ${got}, not the pinned ${llamaCpp.commit}.`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function gpuBackend() {
  const gpu = (process.env.CLLM_GPU || (platform() === 'darwin' ? 'metal' : 'cpu')).toLowerCase();
  if (!['cpu', 'cuda', 'metal'].includes(gpu)) fail(`CLLM_GPU must be cpu, cuda or metal, not "${gpu}".`);
  return gpu;
}

function cmakeDefines(llamaDir, gpu) {
  const defines = {
    LLAMA_CPP_DIR: llamaDir,
    CLLM_LLAMA_CPP_COMMIT: headCommit(llamaDir),
    CLLM_BACKEND: gpu,
    GGML_CUDA: gpu === 'cuda' ? 'ON' : 'OFF',
    GGML_METAL: gpu === 'metal' ? 'ON' : 'OFF',
    // Exact Jacobi: without llamafile's tinyBLAS, a matmul over a block of tokens computes each output with
    // the same dot-product kernel as one token does, so a block's logits equal one-token decoding's bit for
    // bit. tinyBLAS (used for 2+ tokens) sums in another order; it is faster, and CLLM_FAST_KERNELS=1 keeps it.
    GGML_LLAMAFILE: process.env.CLLM_FAST_KERNELS === '1' ? 'ON' : 'OFF',
  };
  if (process.env.CMAKE_CUDA_ARCHITECTURES) defines.CMAKE_CUDA_ARCHITECTURES = process.env.CMAKE_CUDA_ARCHITECTURES;
  if (hasCommand('ccache')) {
    // Relative paths let a fresh clone in another folder reuse the cache.
    process.env.CCACHE_BASEDIR ??= root;
    process.env.CCACHE_NOHASHDIR ??= '1';
    defines.CMAKE_C_COMPILER_LAUNCHER = 'ccache';
    defines.CMAKE_CXX_COMPILER_LAUNCHER = 'ccache';
    if (gpu === 'cuda') defines.CMAKE_CUDA_COMPILER_LAUNCHER = 'ccache';
  }
  return defines;
}

function main() {
  const gpu = gpuBackend();
  if (!hasCommand('cmake')) {
    fail('CMake was not found on PATH. cllm compiles llama.cpp from source and needs CMake 3.14 or newer ' +
      '(Debian/Ubuntu: `apt-get install cmake`; macOS: `brew install cmake`), then run `npm install` again.');
  }
  if (!['c++', 'g++', 'clang++'].some((cxx) => hasCommand(cxx))) {
    fail('No C++ compiler was found (c++, g++ or clang++). Install one with C++17 support ' +
      '(Debian/Ubuntu: `apt-get install build-essential`; macOS: `xcode-select --install`), then run `npm install` again.');
  }
  const llamaDir = resolve(process.env.CLLM_LLAMA_CPP_DIR || join(root, 'deps', 'llama.cpp'));
  if (process.env.CLLM_LLAMA_CPP_DIR) {
    if (!existsSync(join(llamaDir, 'include', 'llama.h'))) fail(`CLLM_LLAMA_CPP_DIR=${llamaDir} is not a llama.cpp checkout (no include/llama.h).`);
  } else {
    fetchPinnedLlamaCpp(llamaDir);
  }

  const defines = cmakeDefines(llamaDir, gpu);
  const jobs = Number(process.env.CMAKE_BUILD_PARALLEL_LEVEL) || availableParallelism();
  const cmakeJs = join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
  const args = ['--directory', root, '--out', join(root, 'build'), '--config', 'Release', '--parallel', String(jobs)];
  for (const [k, v] of Object.entries(defines)) args.push(`--CD${k}=${v}`);
  console.log(`cllm: building the addon (${gpu}, ${jobs} jobs)`);
  for (const step of ['configure', 'build']) {
    const run = spawnSync(process.execPath, [cmakeJs, step, '--log-level', 'warn', ...args], { stdio: 'inherit' });
    if (run.status !== 0) {
      fail(`cmake-js ${step} exited with code ${run.status}. The compiler output above names the first error. ` +
        (gpu === 'cuda' ? 'A CUDA build needs the CUDA toolkit with cuBLAS (nvcc on PATH). ' : '') +
        'A stale build folder can be cleared with `rm -rf build`; CLLM_GPU=cpu forces a CPU-only build.');
    }
  }
}

main();

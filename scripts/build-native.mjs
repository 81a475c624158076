#!/usr/bin/env node
// Builds the native addon: fetches the pinned llama.cpp (unless CLLM_LLAMA_CPP_DIR points at a checkout),
// then configures and builds with cmake-js. The build folder is kept, so a change to native/ recompiles
// only the addon, never llama.cpp.
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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

function firstLine(cmd, args) {
  const run = spawnSync(cmd, args, { encoding: 'utf8' });
  return run.status === 0 ? run.stdout.trim().split('\n')[0] : undefined;
}

const cudaHomes = () => [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda'].filter(Boolean);

function findNvcc() {
  const candidates = ['nvcc', ...cudaHomes().map((home) => join(home, 'bin', 'nvcc'))];
  return candidates.find((nvcc) => hasCommand(nvcc));
}

// cuBLAS comes with a full CUDA toolkit, or separately (say, the nvidia-cublas wheel), named by CLLM_CUBLAS_DIR.
function findCublas(nvcc) {
  const toolkit = nvcc === 'nvcc' ? undefined : dirname(dirname(nvcc));
  const roots = [process.env.CLLM_CUBLAS_DIR, toolkit, ...cudaHomes()].filter(Boolean);
  for (const dir of roots) {
    for (const lib of ['lib64', 'lib', 'targets/x86_64-linux/lib', 'targets/sbsa-linux/lib']) {
      const libDir = join(dir, lib);
      if (!existsSync(libDir)) continue;
      const found = readdirSync(libDir).find((f) => /^libcublas\.so(\.\d+)*$/.test(f));
      if (found) return { root: dir, lib: join(libDir, found) };
    }
  }
  return undefined;
}

// CLLM_GPU picks the backend; else Metal on macOS, CUDA where an NVIDIA GPU, nvcc and cuBLAS are all
// present, and the CPU otherwise, saying why in one line.
function gpuBackend() {
  const forced = process.env.CLLM_GPU?.toLowerCase();
  if (forced) {
    if (!['cpu', 'cuda', 'metal'].includes(forced)) fail(`CLLM_GPU must be cpu, cuda or metal, not "${forced}".`);
    return { gpu: forced, why: 'CLLM_GPU' };
  }
  if (platform() === 'darwin') return { gpu: 'metal', why: 'macOS' };
  const gpuName = firstLine('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader']);
  if (!gpuName) return { gpu: 'cpu', why: 'no NVIDIA GPU found: nvidia-smi lists none; CLLM_GPU=cuda forces a CUDA build' };
  const nvcc = findNvcc();
  if (!nvcc) return { gpu: 'cpu', why: `${gpuName} found, but no CUDA toolkit (nvcc is not on PATH, nor in $CUDA_HOME/bin or /usr/local/cuda/bin)` };
  const cublas = findCublas(nvcc);
  if (!cublas) {
    return {
      gpu: 'cpu',
      why: `${gpuName} and nvcc found, but not cuBLAS. Install it with the CUDA toolkit, or as wheels ` +
        '(pip install nvidia-cublas nvidia-cuda-runtime) and set CLLM_CUBLAS_DIR to the folder that holds its include/ and lib/',
    };
  }
  return { gpu: 'cuda', why: `${gpuName}, ${nvcc === 'nvcc' ? 'nvcc' : nvcc}, cuBLAS in ${dirname(cublas.lib)}`, native: true, cublas };
}

// Exact Jacobi needs matmuls that compute each token of a block as they would compute it alone. ggml picks
// kernels by batch width, so two small patches of our own add a switch for that, one for the CPU backend
// (which every build has) and one for CUDA; the addon turns them on for exact contexts.
const BATCH_INVARIANT_PATCHES = {
  cpu: { patch: 'ggml-cpu-batch-invariant.patch', source: 'ggml/src/ggml-cpu/ggml-cpu.c', marker: 'ggml_cpu_set_batch_invariant' },
  cuda: { patch: 'ggml-cuda-batch-invariant.patch', source: 'ggml/src/ggml-cuda/ggml-cuda.cu', marker: 'ggml_backend_cuda_set_batch_invariant' },
};

// Returns whether the source has the patch.
function applyBatchInvariantPatch(llamaDir, backend) {
  const { patch, source, marker } = BATCH_INVARIANT_PATCHES[backend];
  const patchPath = join(root, 'native', 'patches', patch);
  if (readFileSync(join(llamaDir, source), 'utf8').includes(marker)) return true;
  let applied = spawnSync('git', ['apply', patchPath], { cwd: llamaDir, encoding: 'utf8' });
  if (applied.error) applied = spawnSync('patch', ['-p1', '-N', '-s', '-i', patchPath], { cwd: llamaDir, encoding: 'utf8' });
  if (applied.status === 0) return true;
  console.warn(`cllm: could not patch ${join(llamaDir, source)} for exact Jacobi (${(applied.stderr || '').trim().split('\n')[0]}); ` +
    (backend === 'cpu' ? 'the CPU falls back to its slower one-token kernels for every pass.' : 'Jacobi will not be exact on this build.'));
  return false;
}

function cmakeDefines(llamaDir, backend) {
  const { gpu } = backend;
  const defines = {
    LLAMA_CPP_DIR: llamaDir,
    CLLM_LLAMA_CPP_COMMIT: headCommit(llamaDir),
    CLLM_BACKEND: gpu,
    GGML_CUDA: gpu === 'cuda' ? 'ON' : 'OFF',
    GGML_METAL: gpu === 'metal' ? 'ON' : 'OFF',
    // llama.cpp's RPC backend: --rpc spreads a model over ggml-rpc-server processes on other machines.
    GGML_RPC: 'ON',
    // ggml's own thread pools instead of OpenMP: a context attaches one, and passes from the JavaScript
    // thread and from the context's thread share its workers (see native/context.cpp).
    GGML_OPENMP: 'OFF',
  };
  // On the CPU, exact Jacobi routes one token through llamafile's tinyBLAS as well (the patch); where the
  // patch cannot be applied, tinyBLAS goes off, and every width takes ggml's one-token dot products instead.
  defines.CLLM_CPU_BATCH_INVARIANT = applyBatchInvariantPatch(llamaDir, 'cpu') ? 'ON' : 'OFF';
  defines.GGML_LLAMAFILE = defines.CLLM_CPU_BATCH_INVARIANT;
  if (gpu === 'cuda') {
    defines.CLLM_CUDA_BATCH_INVARIANT = applyBatchInvariantPatch(llamaDir, 'cuda') ? 'ON' : 'OFF';
    // Only the GPUs present: all of ggml's default architectures take hours to compile.
    const architectures = process.env.CMAKE_CUDA_ARCHITECTURES || (backend.native ? 'native' : undefined);
    if (architectures) defines.CMAKE_CUDA_ARCHITECTURES = architectures;
    const cublas = backend.cublas ?? (process.env.CLLM_CUBLAS_DIR ? findCublas('nvcc') : undefined);
    if (cublas && cublas.root === process.env.CLLM_CUBLAS_DIR) {
      // A cuBLAS outside the toolkit: name its libraries and headers to CMake's FindCUDAToolkit.
      const libDir = dirname(cublas.lib);
      const lt = readdirSync(libDir).find((f) => /^libcublasLt\.so(\.\d+)*$/.test(f));
      defines.CUDA_cublas_LIBRARY = cublas.lib;
      if (lt) defines.CUDA_cublasLt_LIBRARY = join(libDir, lt);
      defines.CMAKE_CUDA_FLAGS = `-I${join(cublas.root, 'include')}`;
      defines.CMAKE_CXX_FLAGS = `-I${join(cublas.root, 'include')}`;
    }
  }
  // Whether a block's logits can equal one-token decoding's: always on the CPU, on CUDA with its patch.
  const exact = gpu === 'cpu' || defines.CLLM_CUDA_BATCH_INVARIANT === 'ON';
  defines.CLLM_EXACT_KERNELS = exact ? 'ON' : 'OFF';
  // Extra definitions for llama.cpp's build, "NAME=VALUE" separated by spaces (GGML_CUDA_FA=OFF, say).
  for (const pair of (process.env.CLLM_CMAKE_ARGS ?? '').split(/\s+/).filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq < 1) fail(`CLLM_CMAKE_ARGS takes NAME=VALUE pairs separated by spaces, not "${pair}".`);
    defines[pair.slice(0, eq).replace(/^-D/, '')] = pair.slice(eq + 1);
  }
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
  const backend = gpuBackend();
  const { gpu } = backend;
  if (process.argv.includes('--detect')) {
    console.log(`${gpu}: ${backend.why}`);
    return;
  }
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

  console.log(`cllm: building for ${gpu === 'cpu' ? 'the CPU' : gpu.toUpperCase()} (${backend.why})`);
  const defines = cmakeDefines(llamaDir, backend);
  const jobs = Number(process.env.CMAKE_BUILD_PARALLEL_LEVEL) || availableParallelism();
  const cmakeJs = join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
  const args = ['--directory', root, '--out', join(root, 'build'), '--config', 'Release', '--parallel', String(jobs)];
  for (const [k, v] of Object.entries(defines)) args.push(`--CD${k}=${v}`);
  console.log(`cllm: building the addon, cllm-chat-template and ggml-rpc-server (${jobs} jobs)`);
  const steps = [['configure'], ['build'], ['build', '--target', 'ggml-rpc-server']];
  if (defines.CLLM_LLAMA_TOOLS === 'ON') steps.push(['build', '--target', 'llama-bench'], ['build', '--target', 'llama-quantize']);
  // CMake and the compiler write hundreds of lines: they go to a log, shown when a step fails (or live with
  // CLLM_VERBOSE_BUILD=1); the terminal gets one line per step.
  const verbose = Boolean(process.env.CLLM_VERBOSE_BUILD);
  const logPath = join(root, 'build', 'build.log');
  mkdirSync(dirname(logPath), { recursive: true });
  writeFileSync(logPath, '');
  for (const step of steps) {
    const started = Date.now();
    const log = openSync(logPath, 'a');
    const run = spawnSync(process.execPath, [cmakeJs, ...step, '--log-level', 'warn', ...args], { stdio: verbose ? 'inherit' : ['ignore', log, log] });
    closeSync(log);
    if (!verbose) console.log(`cllm: ${step.join(' ').replace('--target ', '')}: ${run.status === 0 ? 'done' : 'failed'} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    if (run.status !== 0) {
      if (!verbose) process.stderr.write(readFileSync(logPath, 'utf8').split('\n').slice(-40).join('\n') + '\n');
      fail(`cmake-js ${step[0]} exited with code ${run.status}. The compiler output above names the first error (all of it: ${logPath}). ` +
        (gpu === 'cuda' ? 'A CUDA build needs the CUDA toolkit with cuBLAS (nvcc on PATH). ' : '') +
        'A stale build folder can be cleared with `rm -rf build`; CLLM_GPU=cpu forces a CPU-only build.');
    }
  }
}

main();

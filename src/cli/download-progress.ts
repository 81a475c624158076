// `cllm pull` and `-m hf:...`: a download with a progress bar, which Ctrl-C stops, keeping the part file.
import type cliProgress from 'cli-progress';
import { pullModel, type PullProgress, type PullResult } from '../model-files/pull.js';
import { humanBytes } from './format.js';
import { interruptible, progressBar } from './terminal.js';

/** Pulls a model into the cache (once), with a progress bar on an interactive stderr; Ctrl-C keeps the part file. */
export async function pullWithProgress(spec: string, cacheDir?: string): Promise<PullResult> {
  const progress = downloadProgress();
  const { signal, release } = interruptible();
  try {
    return await pullModel(spec, { cacheDir, onProgress: progress.update, signal });
  } finally {
    progress.stop();
    release();
  }
}

/** A download progress bar on an interactive stderr (percent, bytes, speed, ETA); elsewhere `update` does nothing. */
function downloadProgress(): { update: (progress: PullProgress) => void; stop: () => void } {
  let bar: cliProgress.SingleBar | undefined;
  let file: string | undefined;
  let started = 0;
  const stop = () => {
    bar?.stop();
    bar = undefined;
    file = undefined;
  };
  const update = (progress: PullProgress) => {
    if (progress.file !== file) {
      stop();
      file = progress.file;
      started = Date.now();
      const known = progress.totalBytes !== undefined;
      bar = progressBar(known ? `${file} {bar} {percentage}% {received}/{size} {speed} ETA {eta_formatted}` : `${file} {received} {speed}`);
      bar?.start(progress.totalBytes ?? 0, progress.receivedBytes, payload(progress, started));
      return;
    }
    bar?.update(progress.receivedBytes, payload(progress, started));
  };
  return { update, stop };
}

function payload(progress: PullProgress, started: number): Record<string, string> {
  const seconds = (Date.now() - started) / 1000;
  // Bytes of this session only: a resumed prefix came from the disk, not the network.
  const speed = seconds > 0.5 ? `${humanBytes(Math.round((progress.receivedBytes - progress.resumedFrom) / seconds))}/s` : '';
  return { received: humanBytes(progress.receivedBytes), size: humanBytes(progress.totalBytes ?? 0), speed };
}

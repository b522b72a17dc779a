/**
 * The model's own process. ShortsProcessor forks this file per job so that whatever the model does on
 * the CPU (the reference model spawns ffmpeg; a pure-JS or native model might block), the worker's event
 * loop stays free to renew the BullMQ job lock. It calls the model exactly as the seed defines it:
 * (input stream, output directory): the input is this process's stdin, which the worker feeds straight
 * from object storage. If the worker dies (even SIGKILL) the IPC channel closes and this process aborts
 * the model (killing ffmpeg) and exits, so no orphan keeps burning CPU.
 */
import { FfmpegShortsModel, ModelInputError, ToolError, type FailureCode, type FfmpegShortsModelOptions } from '#libs/shorts-model';

export type RunnerRequest = { outputDir: string; model: FfmpegShortsModelOptions };
export type RunnerMessage =
  | { type: 'progress'; percent: number; stage: string }
  /** The input's duration is known: the worker sets the run's wall-clock budget from it. */
  | { type: 'probed'; durationS: number }
  | { type: 'done'; archivePath: string }
  /** message: safe for the user only when inputError (a ModelInputError); detail: for the log only. */
  | { type: 'error'; inputError: boolean; code?: FailureCode; message: string; detail?: string };

const abort = new AbortController();
const send = (m: RunnerMessage) => {
  if (process.connected) process.send?.(m);
};

process.on('disconnect', () => {
  abort.abort();
  setTimeout(() => process.exit(1), 500).unref();
});

process.once('message', async (req: RunnerRequest) => {
  try {
    const model = new FfmpegShortsModel(req.model);
    const { archivePath } = await model.generate(process.stdin, req.outputDir, {
      signal: abort.signal,
      onProgress: (percent, stage) => send({ type: 'progress', percent, stage }),
      onProbed: (p) => send({ type: 'probed', durationS: p.durationS }),
    });
    send({ type: 'done', archivePath });
  } catch (e) {
    if (e instanceof ModelInputError) send({ type: 'error', inputError: true, code: e.code, message: e.message, detail: e.detail });
    else send({ type: 'error', inputError: false, message: (e as Error).message, detail: e instanceof ToolError ? e.stderr : undefined });
  } finally {
    // The parent may be gone already (a killed worker): disconnecting twice throws ERR_IPC_DISCONNECTED.
    if (process.connected) process.disconnect();
  }
});

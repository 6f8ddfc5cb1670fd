/**
 * The scheduler as a process: `node dist/esm/main.js [options]` (see
 * `MAIN_USAGE`). Prints one JSON line when ready; stops cleanly on SIGINT
 * and SIGTERM (a second signal exits at once).
 * @module
 */
import { MAIN_USAGE, parseMainArgs } from './cli/main-options.js';
import { Scheduler } from './scheduler.js';

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseMainArgs>;
  try {
    parsed = parseMainArgs(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${MAIN_USAGE}`);
    process.exit(2);
  }
  if (parsed.help) {
    process.stdout.write(MAIN_USAGE);
    return;
  }
  const scheduler = await Scheduler.start(parsed.options);
  process.stdout.write(
    `${JSON.stringify({ url: scheduler.url, apiKey: scheduler.apiKey, verificationKey: scheduler.verificationKey, pid: process.pid })}\n`,
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stderr.write(`received ${signal}, finishing the runs in flight (send it again to exit at once)\n`);
    scheduler.close().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`error while stopping: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err) => {
  process.stderr.write(`dispatch scheduler: ${(err as Error).message}\n`);
  process.exit(1);
});

/**
 * `dispatch cancel ID`: cancels a call and its unfinished descendants.
 * @module
 */
import type { Command } from 'commander';
import { api, apiClient, type ApiFlags, type CliContext, type CliIO, print, printJson, withApiFlags } from './common.js';

/** Flags of `dispatch cancel`. */
export interface CancelFlags extends ApiFlags {
  json?: boolean;
}

/**
 * Declares `dispatch cancel` on the program.
 * @example
 * addCancelCommand(program, cli);
 */
export function addCancelCommand(program: Command, cli: CliContext): void {
  withApiFlags(
    program
      .command('cancel')
      .description('cancel a call and its unfinished descendants')
      .argument('<id>', 'dispatch ID')
      .option('--json', 'machine-readable JSON'),
  ).action((id: string, flags: CancelFlags) => cli.done(cancelCommand(id, flags, cli.io)));
}

/**
 * Runs `dispatch cancel`; resolves to the exit code.
 * @example
 * await cancelCommand(id, {}, io);
 */
export async function cancelCommand(id: string, flags: CancelFlags, io: CliIO): Promise<number> {
  const client = apiClient(flags, io);
  const n = await api(() => client.cancel(id));
  if (flags.json) printJson(io, { dispatchId: id, cancelled: n });
  else if (n === 0) print(io, `${id} had already finished: nothing to cancel`);
  else print(io, `cancelled ${id}${n > 1 ? ` and ${n - 1} descendant call(s)` : ''}`);
  return 0;
}

/**
 * `dispatch resume ID`: runs a failed or expired call again from its journal.
 * @module
 */
import type { Command } from 'commander';
import { api, apiClient, type ApiFlags, type CliContext, type CliIO, print, printJson, withApiFlags } from './common.js';
import { callInfoJson } from './format.js';

/** Flags of `dispatch resume`. */
export interface ResumeFlags extends ApiFlags {
  json?: boolean;
}

/**
 * Declares `dispatch resume` on the program.
 * @example
 * addResumeCommand(program, cli);
 */
export function addResumeCommand(program: Command, cli: CliContext): void {
  withApiFlags(
    program
      .command('resume')
      .description('run a failed or expired call again from its journal: the awaits that succeeded are not run again')
      .argument('<id>', 'dispatch ID')
      .option('--json', 'machine-readable JSON'),
  ).action((id: string, flags: ResumeFlags) => cli.done(resumeCommand(id, flags, cli.io)));
}

/**
 * Runs `dispatch resume`; resolves to the exit code.
 * @example
 * await resumeCommand(id, {}, io);
 */
export async function resumeCommand(id: string, flags: ResumeFlags, io: CliIO): Promise<number> {
  const client = apiClient(flags, io);
  const info = await api(() => client.resume(id));
  if (flags.json) printJson(io, callInfoJson(info.raw));
  else print(io, `resumed ${info.function} ${id} from its journal (its successful awaits are not run again)`);
  return 0;
}

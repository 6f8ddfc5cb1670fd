/**
 * `dispatch get ID`: everything about one call — state, status, attempts,
 * input, output or error, parent and children.
 * @module
 */
import type { Command } from 'commander';
import { api, apiClient, type ApiFlags, type CliContext, type CliIO, print, printJson, withApiFlags } from './common.js';
import { callInfoJson, formatCallInfo } from './format.js';

/** Flags of `dispatch get`. */
export interface GetFlags extends ApiFlags {
  json?: boolean;
}

/**
 * Declares `dispatch get` on the program.
 * @example
 * addGetCommand(program, cli);
 */
export function addGetCommand(program: Command, cli: CliContext): void {
  withApiFlags(
    program
      .command('get')
      .description('show a call: state, status, attempts, output or error, parent and children')
      .argument('<id>', 'dispatch ID')
      .option('--json', 'machine-readable JSON'),
  ).action((id: string, flags: GetFlags) => cli.done(getCommand(id, flags, cli.io)));
}

/**
 * Runs `dispatch get`; resolves to the exit code.
 * @example
 * await getCommand(id, { json: true }, io);
 */
export async function getCommand(id: string, flags: GetFlags, io: CliIO): Promise<number> {
  const client = apiClient(flags, io);
  const info = await api(() => client.get(id));
  if (flags.json) printJson(io, callInfoJson(info.raw));
  else print(io, formatCallInfo(info.raw));
  return 0;
}

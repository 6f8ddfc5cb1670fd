/**
 * `dispatch get ID`: everything about one call — state, status, attempts
 * and resumes, input, output or error, parent and children.
 * @module
 */
import type { Command } from 'commander';
import { callSource, type CallSourceFlags } from './call-source.js';
import { type CliContext, type CliIO, print, printJson, withApiFlags } from './common.js';
import { callInfoJson, formatCallInfo } from './format.js';

/** Flags of `dispatch get`. */
export interface GetFlags extends CallSourceFlags {
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
      .description('show a call: state, status, attempts and resumes, output or error, parent and children')
      .argument('<id>', 'dispatch ID')
      .option('--db <path|url>', 'read this database directly (the one a stopped dispatch run left, e.g. .dispatch/dispatch.db) instead of a running scheduler')
      .option('--json', 'machine-readable JSON'),
  ).action((id: string, flags: GetFlags) => cli.done(getCommand(id, flags, cli.io)));
}

/**
 * Runs `dispatch get`; resolves to the exit code.
 * @example
 * await getCommand(id, { json: true }, io);
 */
export async function getCommand(id: string, flags: GetFlags, io: CliIO): Promise<number> {
  const source = await callSource(flags, io);
  try {
    const info = await source.get(id);
    if (flags.json) printJson(io, callInfoJson(info));
    else print(io, formatCallInfo(info));
    return 0;
  } finally {
    await source.close();
  }
}

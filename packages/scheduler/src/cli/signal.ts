/**
 * `dispatch signal ID NAME [JSON]`: delivers a signal to a call (its
 * `dispatch.waitForSignal(NAME)` returns the payload).
 * @module
 */
import type { Command } from 'commander';
import { api, apiClient, type ApiFlags, type CliContext, CliError, type CliIO, print, printJson, withApiFlags } from './common.js';

/** Flags of `dispatch signal`. */
export interface SignalFlags extends ApiFlags {
  json?: boolean;
}

/**
 * Declares `dispatch signal` on the program.
 * @example
 * addSignalCommand(program, cli);
 */
export function addSignalCommand(program: Command, cli: CliContext): void {
  withApiFlags(
    program
      .command('signal')
      .description('send a signal to a call: its dispatch.waitForSignal(NAME) returns the payload (kept until it waits)')
      .argument('<id>', 'dispatch ID of the call')
      .argument('<name>', 'signal name')
      .argument('[json]', 'payload as JSON (default null)')
      .option('--json', 'machine-readable JSON')
      .addHelpText('after', `\nExample:\n  dispatch signal 2Zk8… decision '{"approved":true}'`),
  ).action((id: string, name: string, json: string | undefined, flags: SignalFlags) => cli.done(signalCommand(id, name, json, flags, cli.io)));
}

/**
 * Runs `dispatch signal`; resolves to the exit code.
 * @example
 * await signalCommand(id, 'decision', '{"approved":true}', {}, io);
 */
export async function signalCommand(id: string, name: string, json: string | undefined, flags: SignalFlags, io: CliIO): Promise<number> {
  let payload: unknown = null;
  if (json !== undefined) {
    try {
      payload = JSON.parse(json);
    } catch (err) {
      throw new CliError(`the payload of the signal is not valid JSON (${(err as Error).message}): ${JSON.stringify(json.slice(0, 200))}; quote it for the shell, e.g. '{"approved":true}'`);
    }
  }
  const client = apiClient(flags, io);
  const delivered = await api(() => client.signal(id, name, payload));
  if (flags.json) printJson(io, { dispatchId: id, name, delivered });
  else print(io, delivered ? `signal ${name} delivered to ${id} (it was waiting)` : `signal ${name} kept for ${id} until it waits for it`);
  return 0;
}

/**
 * `dispatch ls`: lists calls, newest first, filtered by state and function,
 * as a table or JSON.
 * @module
 */
import { CALL_STATES, type CallState, callStateOf, isFinishedState, proto, statusName } from '@dispatch/core/protocol';
import type { Command } from 'commander';
import { callSource, type CallSourceFlags } from './call-source.js';
import { CliError, type CliContext, type CliIO, print, printJson, withApiFlags } from './common.js';
import { callInfoJson, humanMs, stateText, table } from './format.js';

/** Flags of `dispatch ls`. */
export interface LsFlags extends CallSourceFlags {
  state?: string[];
  function?: string;
  limit?: string;
  cursor?: string;
  roots?: boolean;
  json?: boolean;
}

const DEFAULT_LIMIT = 20;
const collect = (value: string, previous: string[] = []) => [...previous, value];

/**
 * Declares `dispatch ls` on the program.
 * @example
 * addLsCommand(program, cli);
 */
export function addLsCommand(program: Command, cli: CliContext): void {
  withApiFlags(
    program
      .command('ls')
      .description('list calls, newest first')
      .option('--state <state>', `only these states (${CALL_STATES.join(', ')}); repeatable or comma-separated`, collect)
      .option('--function <name>', 'only calls of this function')
      .option('--limit <n>', 'page size, 1..1000', String(DEFAULT_LIMIT))
      .option('--cursor <cursor>', 'next page (printed at the end of the previous one)')
      .option('--roots', 'only calls without a parent')
      .option('--db <path|url>', 'read this database directly (the one a stopped dispatch run left, e.g. .dispatch/dispatch.db) instead of a running scheduler')
      .option('--json', 'machine-readable JSON'),
  ).action((flags: LsFlags) => cli.done(lsCommand(flags, cli.io)));
}

/**
 * Runs `dispatch ls`; resolves to the exit code.
 * @example
 * await lsCommand({ state: ['failed'], json: true }, io);
 */
export async function lsCommand(flags: LsFlags, io: CliIO): Promise<number> {
  const states = (flags.state ?? []).flatMap((s) => s.split(',')).map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const s of states) {
    if (!CALL_STATES.includes(s as CallState)) throw new CliError(`--state must be one of ${CALL_STATES.join(', ')}, got ${JSON.stringify(s)}`, 2);
  }
  const limit = flags.limit === undefined ? DEFAULT_LIMIT : Number(flags.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new CliError(`--limit must be an integer from 1 to 1000, got ${JSON.stringify(flags.limit)}`, 2);
  const source = await callSource(flags, io);
  let page: Awaited<ReturnType<typeof source.list>>;
  try {
    page = await source.list({
      states: states as CallState[],
      limit,
      ...(flags.function ? { function: flags.function } : {}),
      ...(flags.cursor ? { cursor: flags.cursor } : {}),
      ...(flags.roots ? { rootsOnly: true } : {}),
    });
  } finally {
    await source.close();
  }
  if (flags.json) {
    printJson(io, {
      calls: page.calls.map((c) => {
        const j = callInfoJson(c);
        delete j.input;
        delete j.children;
        return j;
      }),
      nextCursor: page.nextCursor,
      counts: page.counts,
    });
    return 0;
  }
  const now = Date.now();
  const rows = page.calls.map((c) => {
    const state = callStateOf(c.state ?? 0) ?? 'pending';
    const attempts = c.attempts ?? 0;
    return [
      c.dispatchId ?? '',
      c.function ?? '',
      stateText(c),
      isFinishedState(state) || attempts > 0 ? statusName(c.status ?? 0) : '',
      String(attempts),
      String(c.resumes ?? 0),
      `${humanMs(now - (proto.timestampToDate(c.creationTime)?.getTime() ?? now))} ago`,
      c.parentDispatchId ? `child of ${c.parentDispatchId}` : '',
    ];
  });
  if (rows.length === 0) print(io, 'no calls match');
  else print(io, table(['DISPATCH ID', 'FUNCTION', 'STATE', 'STATUS', 'ATTEMPTS', 'RESUMES', 'CREATED', ''], rows));
  print(io, `\n${footer(page.counts, states as CallState[], flags.function)}${page.nextCursor ? `\nmore: dispatch ls --cursor ${page.nextCursor}` : ''}`);
  return 0;
}

/**
 * The count line under the table: the states asked for (all of them, even
 * at 0), or else every state that has calls; of the function asked for.
 */
function footer(counts: Record<CallState, number>, states: readonly CallState[], fn: string | undefined): string {
  const of = fn ? ` (function ${fn})` : '';
  const shown = states.length > 0 ? CALL_STATES.filter((s) => states.includes(s)) : CALL_STATES.filter((s) => counts[s] > 0);
  if (shown.length === 0) return `no calls${of}`;
  return `${shown.map((s) => `${counts[s]} ${s}`).join(' · ')}${of}`;
}

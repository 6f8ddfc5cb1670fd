/**
 * `dispatch schedules`: lists the schedules apps declared, with their next
 * run; `dispatch schedules pause NAME`, `resume NAME`, `remove NAME`.
 * @module
 */
import type { ScheduleInfo } from '@dispatch/core/protocol';
import type { Command } from 'commander';
import { api, apiClient, type ApiFlags, type CliContext, type CliIO, print, printJson, withApiFlags } from './common.js';
import { humanMs, table } from './format.js';

/** Flags of `dispatch schedules`. */
export interface SchedulesFlags extends ApiFlags {
  json?: boolean;
}

/**
 * Declares `dispatch schedules` and its subcommands on the program.
 * @example
 * addSchedulesCommand(program, cli);
 */
export function addSchedulesCommand(program: Command, cli: CliContext): void {
  const schedules = withApiFlags(
    program
      .command('schedules')
      .description('list the schedules apps declared (functions with a cron `schedule`), with their next run; pause, resume or remove one')
      .option('--json', 'machine-readable JSON'),
  ).action((flags: SchedulesFlags) => cli.done(listSchedulesCommand(flags, cli.io)));
  for (const [name, description] of [
    ['pause', 'pause a schedule: its ticks do not run until it is resumed'],
    ['resume', 'resume a paused schedule from its next tick after now (the ticks of the pause are not run)'],
    ['remove', 'remove a schedule (its app declares it again when it next starts, if its code still has it)'],
  ] as const) {
    withApiFlags(
      schedules
        .command(name)
        .description(description)
        .argument('<name>', 'the schedule (the name of the function it calls)')
        .option('--json', 'machine-readable JSON'),
    ).action((scheduleName: string, flags: SchedulesFlags, cmd: Command) =>
      cli.done(scheduleActionCommand(name, scheduleName, { ...(cmd.parent?.opts() ?? {}), ...flags }, cli.io)),
    );
  }
}

/** One schedule as JSON. */
function scheduleJson(s: ScheduleInfo): Record<string, unknown> {
  const { raw: _raw, ...rest } = s;
  return {
    ...rest,
    nextTickTime: s.nextTickTime?.toISOString() ?? null,
    lastTickTime: s.lastTickTime?.toISOString() ?? null,
    createdAt: s.createdAt?.toISOString() ?? null,
    updatedAt: s.updatedAt?.toISOString() ?? null,
  };
}

/** When, for people: the time and how far from now. */
function when(date: Date | null, now: number): string {
  if (!date) return '-';
  const delta = date.getTime() - now;
  return `${date.toISOString()} (${delta >= 0 ? `in ${humanMs(delta)}` : `${humanMs(-delta)} ago`})`;
}

/**
 * Runs `dispatch schedules`; resolves to the exit code.
 * @example
 * await listSchedulesCommand({}, io);
 */
export async function listSchedulesCommand(flags: SchedulesFlags, io: CliIO): Promise<number> {
  const client = apiClient(flags, io);
  const schedules = await api(() => client.listSchedules());
  if (flags.json) {
    printJson(io, { schedules: schedules.map(scheduleJson) });
    return 0;
  }
  if (schedules.length === 0) {
    print(io, 'no schedules: give a function a `schedule` (dispatch.function({ name, schedule: "0 9 * * 1" }, fn)) and start its app');
    return 0;
  }
  const now = Date.now();
  print(
    io,
    table(
      ['NAME', 'CRON', 'TIME ZONE', 'STATE', 'NEXT RUN', 'LAST TICK', 'TICKS', 'ENDPOINT'],
      schedules.map((s) => [
        s.name,
        s.cron,
        s.timeZone || 'UTC',
        s.paused ? 'paused' : 'active',
        s.paused ? '- (paused)' : when(s.nextTickTime, now),
        when(s.lastTickTime, now),
        String(s.ticks) + (s.skippedTicks ? ` (+${s.skippedTicks} missed)` : ''),
        s.endpoint,
      ]),
    ),
  );
  return 0;
}

/**
 * Runs `dispatch schedules pause|resume|remove NAME`; resolves to the exit code.
 * @example
 * await scheduleActionCommand('pause', 'report', {}, io);
 */
export async function scheduleActionCommand(action: 'pause' | 'resume' | 'remove', name: string, flags: SchedulesFlags, io: CliIO): Promise<number> {
  const client = apiClient(flags, io);
  if (action === 'remove') {
    await api(() => client.removeSchedule(name));
    if (flags.json) printJson(io, { name, removed: true });
    else print(io, `removed the schedule ${name} (its app declares it again when it next starts, if its code still has it)`);
    return 0;
  }
  const s = await api(() => (action === 'pause' ? client.pauseSchedule(name) : client.resumeSchedule(name)));
  if (flags.json) printJson(io, scheduleJson(s));
  else if (s.paused) print(io, `paused the schedule ${name}: its ticks do not run until \`dispatch schedules resume ${name}\``);
  else print(io, `the schedule ${name} is active: next run ${when(s.nextTickTime, Date.now())}`);
  return 0;
}

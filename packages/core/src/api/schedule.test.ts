import { describe, expect, it } from 'vitest';
import { Dispatch } from './dispatch.js';
import { dueTicks, nextTickAfter, parseSchedule } from './schedule.js';

const T = Date.parse('2026-01-05T07:59:59.000Z'); // a Monday

describe('schedules: cron expressions', () => {
  it('reads five fields (minutes) and six (seconds first), in UTC or a time zone', () => {
    expect(parseSchedule('*/2 * * * * *', 'f')).toEqual({ cron: '*/2 * * * * *', timeZone: '', missed: 'run-once' });
    expect(nextTickAfter({ cron: '*/2 * * * * *', timeZone: '' }, Date.parse('2026-01-01T00:00:01.500Z'))).toBe(Date.parse('2026-01-01T00:00:02.000Z'));
    expect(nextTickAfter({ cron: '0 9 * * 1', timeZone: '' }, T)).toBe(Date.parse('2026-01-05T09:00:00.000Z'));
    expect(nextTickAfter({ cron: '0 9 * * 1', timeZone: 'Europe/Paris' }, T)).toBe(Date.parse('2026-01-05T08:00:00.000Z'));
    expect(parseSchedule({ cron: ' 0  9 * * 1 ', timeZone: 'Europe/Paris', missed: 'skip' }, 'f')).toEqual({ cron: '0 9 * * 1', timeZone: 'Europe/Paris', missed: 'skip' });
  });

  it('refuses a bad expression, time zone or option with a message naming it', () => {
    expect(() => parseSchedule('61 * * * *', 'report')).toThrow(
      'the schedule of "report" has an invalid cron expression "61 * * * *" (Invalid value for minute: 61); use five fields',
    );
    expect(() => parseSchedule('* * * *', 'report')).toThrow(/invalid cron expression "\* \* \* \*"/);
    expect(() => parseSchedule('* * * * * * *', 'report')).toThrow(/invalid cron expression/);
    expect(() => parseSchedule('0 0 31 2 *', 'report')).toThrow('never matches a date: "0 0 31 2 *"');
    expect(() => parseSchedule({ cron: '* * * * *', timeZone: 'Mars/Olympus' }, 'report')).toThrow('unknown time zone "Mars/Olympus"');
    expect(() => parseSchedule({ cron: '* * * * *', missed: 'all' as 'skip' }, 'report')).toThrow(`missed: "all"; use 'run-once'`);
    expect(() => parseSchedule(42, 'report')).toThrow('must be a cron expression or { cron, timeZone?, missed? }, got number 42');
  });

  it('counts the due ticks and finds the latest and the next', () => {
    const s = { cron: '*/2 * * * * *', timeZone: '' };
    const t0 = Date.parse('2026-01-01T00:00:00.000Z');
    expect(dueTicks(s, t0, t0 + 500)).toEqual({ count: 1, latest: t0, next: t0 + 2_000 });
    expect(dueTicks(s, t0, t0 + 9_000)).toEqual({ count: 5, latest: t0 + 8_000, next: t0 + 10_000 });
    expect(dueTicks(s, t0, t0 + 9_000, 3)).toEqual({ count: 3, latest: t0 + 8_000, next: t0 + 10_000 });
  });

  it('is checked when the function is registered', () => {
    const dispatch = new Dispatch({ env: {} });
    expect(() => dispatch.function({ name: 'bad', schedule: 'every minute' }, () => 1)).toThrow(/the schedule of "bad" has an invalid cron expression "every minute"/);
    expect(dispatch.hasFunction('bad')).toBe(false);
    dispatch.function({ name: 'weekly', schedule: { cron: '0 9 * * 1', timeZone: 'Europe/Paris' }, expiration: '10m' }, () => 1);
    expect(dispatch.schedules).toEqual([{ function: 'weekly', cron: '0 9 * * 1', timeZone: 'Europe/Paris', missed: 'run-once', expirationMs: 600_000 }]);
  });
});

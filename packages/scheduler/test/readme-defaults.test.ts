/**
 * The package README's table of defaults says what `SCHEDULER_DEFAULTS`
 * holds: one row per default, its value as written in the code.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SCHEDULER_DEFAULTS } from '../src/options.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

/** `key → value` of the defaults, nested objects flattened (`backoff.maxMs`). */
function flatten(value: object, prefix = ''): Array<[string, unknown]> {
  return Object.entries(value).flatMap(([k, v]) =>
    v !== null && typeof v === 'object' ? flatten(v as object, `${prefix}${k}.`) : [[`${prefix}${k}`, v] as [string, unknown]],
  );
}

describe('the README of @dispatch/scheduler', () => {
  it('lists every default with its value', () => {
    const rows = new Map(
      [...readme.matchAll(/^\| `([\w.]+)` \| ([^|]+) \|/gm)].map((m) => [m[1]!, m[2]!.trim()] as const),
    );
    for (const [key, value] of flatten(SCHEDULER_DEFAULTS)) {
      const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      const shown = typeof value === 'number' ? `(${literal(value.toLocaleString('en-US'))}|${value})` : literal(`\`${String(value)}\``);
      expect(rows.get(key), key).toMatch(new RegExp(`^${shown}( |$)`));
    }
    expect(rows.get('maxAttempts')).toBe('none');
  });
});

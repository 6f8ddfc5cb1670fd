/**
 * The curated root entry of @dispatch/core: at most 60 runtime names, every
 * one listed (and so documented with an example, which `pnpm lint` checks)
 * in docs/api/core.md; protocol machinery stays in @dispatch/core/protocol.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

describe('@dispatch/core root entry', () => {
  it('exports at most 60 runtime names, each in the API report', async () => {
    const names = Object.keys(await import('@dispatch/core'));
    expect(names.length).toBeGreaterThan(0);
    expect(names.length).toBeLessThanOrEqual(60);
    const report = readFileSync(new URL('../../docs/api/core.md', import.meta.url), 'utf8');
    const rootSection = report.split('\n## ')[1] ?? '';
    expect(rootSection.startsWith('@dispatch/core\n')).toBe(true);
    for (const name of names) expect(rootSection, name).toContain(`- \`${name}\` (`);
  });

  it('keeps protocol machinery out of the root', async () => {
    const root = await import('@dispatch/core');
    const protocol = await import('@dispatch/core/protocol');
    for (const name of ['proto', 'encodeArgs', 'decodeValue', 'signRequest', 'verifyRequest', 'handleEndpointRequest', 'RUN_PATH']) {
      expect(name in root, name).toBe(false);
      expect(name in protocol, name).toBe(true);
    }
  });
});

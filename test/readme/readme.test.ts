/**
 * The README's code, checked: every TypeScript block of README.md is
 * typechecked against the packages' sources (fragments get the names they
 * take for granted from prelude.ts), and the blocks marked
 * `<!-- readme-test: run -->` are run as programs under `dispatch run`, the
 * real CLI and scheduler (build first: `pnpm build`). The convention is in
 * readme-blocks.ts. A failure names the block by its README line.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { requireBuilt } from '../e2e/helpers/processes.js';
import { type CodeBlock, codeBlocks } from './readme-blocks.js';
import { removeRunnable, runUnderDispatch, writeRunnable } from './run-block.js';
import { typecheckBlocks } from './typecheck-blocks.js';

const README = fileURLToPath(new URL('../../README.md', import.meta.url));
const blocks = codeBlocks(readFileSync(README, 'utf8'));
/** A name that does not move when lines are added above: the heading, and the block's rank under it. */
const nameOf = (block: CodeBlock) => {
  const rank = blocks.filter((b) => b.heading === block.heading).indexOf(block) + 1;
  return `"${block.heading}" #${rank}`;
};

describe('README.md', () => {
  let errors: Map<CodeBlock, string[]>;
  beforeAll(() => {
    errors = typecheckBlocks(blocks, {
      file: 'README.md',
      tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)),
      prelude: fileURLToPath(new URL('./prelude.ts', import.meta.url)),
    });
  }, 120_000);

  it('has TypeScript blocks, and at least one runnable program', () => {
    expect(blocks.length).toBeGreaterThan(5);
    expect(blocks.filter((b) => b.run).length).toBeGreaterThan(0);
  });

  for (const block of blocks) {
    const test = block.skip ? it.skip : it;
    test(`block ${nameOf(block)} typechecks`, () => {
      expect(errors.get(block)!.join('\n'), `README.md:${block.line} (${nameOf(block)})`).toBe('');
    });
  }

  for (const block of blocks.filter((b) => b.run && !b.skip)) {
    it(`block ${nameOf(block)} runs under dispatch run: its calls all succeed`, async () => {
      requireBuilt();
      const file = writeRunnable(block.code, `readme-line-${block.line}`);
      try {
        const r = await runUnderDispatch(file);
        const where = `README.md:${block.line} (${nameOf(block)}) under dispatch run:\n${r.output}`;
        expect(r.counts.failed + r.counts.cancelled, where).toBe(0);
        expect(r.counts.succeeded, where).toBeGreaterThan(0);
        expect(r.code, where).toBe(0);
      } finally {
        removeRunnable(file);
      }
    }, 120_000);
  }
});

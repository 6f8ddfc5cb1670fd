// examples/approval-express, end to end: two expenses; the manager approves
// the first through the app's route (a signal), nobody answers the second,
// which is rejected when its wait times out (APPROVAL_TIMEOUT=4s here, 24 h
// by default).
import { beforeAll, describe, expect, it } from 'vitest';
import { ensurePackagesBuilt, type ExampleRun, runExample } from './run-example.js';

describe('examples/approval-express', () => {
  let run: ExampleRun;
  beforeAll(async () => {
    await ensurePackagesBuilt();
    process.env.APPROVAL_TIMEOUT = '4s';
    try {
      run = await runExample('approval-express', 'app.mjs');
    } finally {
      delete process.env.APPROVAL_TIMEOUT;
    }
  }, 180_000);

  it('files two expenses and finishes by itself', () => {
    expect(run.code, run.output).toBe(0);
    expect(run.app.some((l) => /^POST \/expenses → \S+ \(ann\), \S+ \(bob\)$/.test(l))).toBe(true);
    expect(run.summary.asked).toBe(2);
  });

  it('pays the expense the manager approved through POST /expenses/:id/decision', () => {
    expect(run.summary.ann).toEqual({ status: 'paid', by: 'maria', payment: 'payment_1' });
    expect(run.summary.paid).toEqual(['ann']);
    expect(run.app).toContain('pay: 120 EUR paid to ann');
  });

  it('rejects the expense nobody answered once its wait times out', () => {
    expect(run.summary.bob).toEqual({ status: 'rejected', reason: 'timeout' });
    expect(run.summary.rejected).toEqual(['bob']);
    expect(run.app).toContain('reject: bob is told: no decision within 4s');
  });

  it('refuses a second decision: the workflow has finished (409)', () => {
    expect(run.summary.again).toBe(409);
    expect(run.app.some((l) => /decision again → 409: the call \S+ has finished \(succeeded\): it cannot receive the signal "decision"/.test(l))).toBe(true);
  });
});

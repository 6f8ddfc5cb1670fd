// examples/checkout-express, end to end: the README's demo. The email step
// fails three times; the scheduler retries it alone; the card is charged once.
import { beforeAll, describe, expect, it } from 'vitest';
import { ensurePackagesBuilt, type ExampleRun, runExample } from './run-example.js';

describe('examples/checkout-express', () => {
  let run: ExampleRun;
  beforeAll(async () => {
    await ensurePackagesBuilt();
    run = await runExample('checkout-express', 'app.mjs', ['--email-failures', '3']);
  }, 180_000);

  it('posts one order to POST /buy and finishes by itself', () => {
    expect(run.code, run.output).toBe(0);
    expect(run.app.some((l) => /^POST \/buy → checkout \S+$/.test(l))).toBe(true);
    expect(run.summary.status).toBe('OK');
  });

  it('charges the card once, though the email failed three times', () => {
    expect(run.summary.charges).toBe(1);
    expect(run.app.filter((l) => l.startsWith('charge: '))).toHaveLength(1);
    expect(run.summary.attempts).toMatchObject({ chargeCreditCard: 1, sendEmailConfirmation: 4, markOrderAsCompleted: 1 });
  });

  it('shows the retries, from the app and from the scheduler', () => {
    expect(run.app.filter((l) => /^email: attempt \d failed/.test(l))).toHaveLength(3);
    expect(run.app).toContain('email: attempt 4: sent the confirmation of order_456 (receipt_789) to user_123');
    expect(run.cli.filter((l) => l.startsWith('retrying sendEmailConfirmation'))).toHaveLength(3);
    expect(run.cli.some((l) => l.startsWith('retrying chargeCreditCard'))).toBe(false);
  });

  it('completes the order after the email, in order', () => {
    const charge = run.app.findIndex((l) => l.startsWith('charge: '));
    const email = run.app.findIndex((l) => l.startsWith('email: attempt 4'));
    const completed = run.app.indexOf('order: order_456 completed');
    expect(charge).toBeGreaterThanOrEqual(0);
    expect(email).toBeGreaterThan(charge);
    expect(completed).toBeGreaterThan(email);
  });
});

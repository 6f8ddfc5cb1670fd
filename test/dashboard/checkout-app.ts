/**
 * The seed checkout (charge the card, send the confirmation email, mark the
 * order completed) as an app for the dashboard's browser test, served with
 * the core's node server on a free port and driven by a real scheduler.
 *
 * - The email step fails twice (TemporaryError) for every order, then works.
 * - For orders named in `hold`, the email step waits until `release()`:
 *   the checkout stays suspended with a journal to look at (and to cancel).
 * - A user ID containing `<` makes the charge fail for good, with the user ID
 *   in the error message (user data shown by the dashboard).
 */
import { Dispatch, PermanentError, TemporaryError } from '@dispatch/core';
import type { Scheduler } from '@dispatch/scheduler';

export interface CheckoutApp {
  url: string;
  /** Charges made per user (the card must be charged once). */
  charges: Map<string, number>;
  /** Lets the held email steps finish. */
  release(): void;
  close(): Promise<void>;
}

export async function startCheckoutApp(scheduler: Scheduler, options: { hold?: string[] } = {}): Promise<CheckoutApp> {
  const hold = new Set(options.hold ?? []);
  let releaseHeld!: () => void;
  const held = new Promise<void>((resolve) => {
    releaseHeld = resolve;
  });
  const charges = new Map<string, number>();
  const emailAttempts = new Map<string, number>();
  const app = new Dispatch({
    apiKey: scheduler.apiKey,
    apiUrl: scheduler.url,
    verificationKey: scheduler.verificationKey,
    logger: { warn() {}, error() {}, info() {} },
  });

  const chargeCreditCard = app.function(async function chargeCreditCard(userId: string) {
    if (userId.includes('<')) throw new PermanentError(`card declined for ${userId}`);
    charges.set(userId, (charges.get(userId) ?? 0) + 1);
    return `receipt_${charges.size}`;
  });
  const sendEmailConfirmation = app.function(async function sendEmailConfirmation(userId: string, orderId: string, receiptId: string) {
    if (hold.has(orderId)) await held;
    const n = (emailAttempts.get(orderId) ?? 0) + 1;
    emailAttempts.set(orderId, n);
    if (n <= 2) throw new TemporaryError(`smtp.example.com refused the connection (attempt ${n})`);
    return { to: userId, orderId, receiptId };
  });
  const markOrderAsCompleted = app.function(async function markOrderAsCompleted(orderId: string) {
    return { orderId, completedAt: new Date('2025-01-01T00:00:00Z') };
  });
  app.function(async function checkout(userId: string, orderId: string) {
    const receiptId = await chargeCreditCard(userId);
    await sendEmailConfirmation(userId, orderId, receiptId);
    await markOrderAsCompleted(orderId);
    return { orderId, receiptId };
  });

  const server = await app.serve({ host: '127.0.0.1', port: 0 });
  return {
    url: server.url,
    charges,
    release: () => releaseHeld(),
    close: async () => {
      releaseHeld();
      await server.close();
    },
  };
}

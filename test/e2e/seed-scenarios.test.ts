/**
 * The seed scenarios end to end: a real Scheduler (in-memory SQLite) sends
 * signed RunRequests over HTTP to the app's node:http endpoint, through
 * @dispatch/testing.
 */
import { Dispatch, Status, TemporaryError } from '@dispatch/core';
import { startTestScheduler, type TestScheduler } from '@dispatch/testing';
import { afterEach, describe, expect, it } from 'vitest';

const silent = { warn() {}, error() {}, info() {} };
let t: TestScheduler | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const app = () => new Dispatch({ env: {}, logger: silent });

async function until(predicate: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('seed scenarios over real HTTP', () => {
  it('checkout: the email fails twice; the card is charged once and its receipt reaches the email step', async () => {
    const dispatch = app();
    const charges: string[] = [];
    const emails: string[] = [];
    const charge = dispatch.function(async function chargeCreditCard(userId: string) {
      charges.push(userId);
      return `receipt_${charges.length}`;
    });
    const sendEmail = dispatch.function(async function sendEmail(userId: string, orderId: string, receiptId: string) {
      emails.push(receiptId);
      if (emails.length <= 2) throw new TemporaryError(`smtp unavailable for ${userId}`);
      return `emailed ${orderId}`;
    });
    const complete = dispatch.function(async function markOrderAsCompleted(orderId: string) {
      return `completed ${orderId}`;
    });
    const checkout = dispatch.function(async function checkout(userId: string, orderId: string) {
      const receiptId = await charge(userId);
      await sendEmail(userId, orderId, receiptId);
      return await complete(orderId);
    });
    t = await startTestScheduler(dispatch);
    const r = await t.run(checkout, 'user_123', 'order_456');
    expect(r).toMatchObject({ status: Status.OK, value: 'completed order_456' });
    expect(charges).toEqual(['user_123']);
    expect(emails).toEqual(['receipt_1', 'receipt_1', 'receipt_1']);

    const root = await t.get(r.id);
    expect(root.children).toHaveLength(3);
    const [chargeCall, emailCall, completeCall] = await Promise.all(root.children.map((id) => t!.get(id)));
    expect(chargeCall).toMatchObject({ function: 'chargeCreditCard', attempts: 1, output: 'receipt_1', parentId: r.id, rootId: r.id });
    expect(emailCall).toMatchObject({ function: 'sendEmail', attempts: 3, state: 'succeeded' });
    expect((await t.attempts(emailCall!.id)).map((a) => a.statusName)).toEqual(['TEMPORARY_ERROR', 'TEMPORARY_ERROR', 'OK']);
    expect(completeCall).toMatchObject({ function: 'markOrderAsCompleted', attempts: 1 });
    // checkout: first run, then one resume per awaited call; never re-run from scratch.
    const runs = await t.attempts(r.id);
    expect(runs.map((a) => a.outcome)).toEqual(['suspend', 'suspend', 'suspend', 'exit']);
    expect(runs.slice(1).every((a) => a.resume)).toBe(true);
  });

  it('fan-out: one failing send is retried alone', async () => {
    const dispatch = app();
    const sends = new Map<string, number>();
    const send = dispatch.function(async function sendEmailNotification(user: string) {
      const n = (sends.get(user) ?? 0) + 1;
      sends.set(user, n);
      if (user === 'bob' && n < 3) throw new TemporaryError(`mailbox of ${user} busy`);
      return `sent to ${user}`;
    });
    const fetchUsers = dispatch.function(async function fetchUsers() {
      return ['ann', 'bob', 'cid'];
    });
    const notifyAll = dispatch.function(async function notifyAllUsers() {
      const users = await fetchUsers();
      const batch = dispatch.batch();
      for (const user of users) batch.add(send(user));
      return await batch.dispatch();
    });
    t = await startTestScheduler(dispatch);
    const ids = (await t.call(notifyAll)) as string[];
    expect(ids).toHaveLength(3);
    await until(async () => (await Promise.all(ids.map((id) => t!.get(id)))).every((c) => c.state === 'succeeded'), 'the three sends');
    expect(Object.fromEntries(sends)).toEqual({ ann: 1, bob: 3, cid: 1 });
    const calls = await Promise.all(ids.map((id) => t!.get(id)));
    expect(calls.map((c) => [c.function, c.attempts, c.output])).toEqual([
      ['sendEmailNotification', 1, 'sent to ann'],
      ['sendEmailNotification', 3, 'sent to bob'],
      ['sendEmailNotification', 1, 'sent to cid'],
    ]);
    // The batch was dispatched once: exactly three sends exist.
    expect(await t.calls({ function: 'sendEmailNotification' })).toHaveLength(3);
  });

  it('invoices: a gather of generate calls, then uploads, results in order', async () => {
    const dispatch = app();
    const events: string[] = [];
    const generate = dispatch.function(async function generateInvoice(client: string) {
      await new Promise((resolve) => setTimeout(resolve, 60 - client.length * 5)); // finish out of order
      events.push(`generated ${client}`);
      return `/tmp/${client}.pdf`;
    });
    const upload = dispatch.function(async function uploadToS3(path: string) {
      events.push(`uploaded ${path}`);
      return `s3:/${path}`;
    });
    const fetchClients = dispatch.function(async function fetchClients() {
      return ['acme', 'globex', 'initech'];
    });
    const invoices = dispatch.function(async function generateInvoices() {
      const clients = await fetchClients();
      const paths = await dispatch.gather(...clients.map((c) => generate(c)));
      return await dispatch.gather(paths.map((p) => upload(p)));
    });
    t = await startTestScheduler(dispatch);
    const r = await t.run(invoices);
    expect(r.value).toEqual(['s3://tmp/acme.pdf', 's3://tmp/globex.pdf', 's3://tmp/initech.pdf']);
    const lastGenerated = Math.max(...events.map((e, i) => (e.startsWith('generated') ? i : -1)));
    const firstUploaded = events.findIndex((e) => e.startsWith('uploaded'));
    expect(lastGenerated).toBeLessThan(firstUploaded);
    expect(events.filter((e) => e.startsWith('generated'))).toHaveLength(3);
    expect(events.filter((e) => e.startsWith('uploaded'))).toHaveLength(3);
    // fetchClients, three generates in one poll, three uploads in one poll.
    expect((await t.get(r.id)).children).toHaveLength(7);
  });

  it('DNS verification: retried through registerOutputType until the record appears', async () => {
    const dispatch = app();
    class DNSVerification {
      constructor(readonly verified: boolean) {}
    }
    dispatch.registerOutputType(DNSVerification, (v) => (v.verified ? Status.OK : Status.TEMPORARY_ERROR));
    let lookups = 0;
    const marked: string[] = [];
    const waitForDns = dispatch.function(async function waitForDnsRecords(domain: string) {
      lookups++;
      return new DNSVerification(lookups >= 4 && domain === 'example.com');
    });
    const mark = dispatch.function(async function markDomainAsConnected(domain: string) {
      marked.push(domain);
    });
    const connect = dispatch.function(async function connectDomain(domain: string) {
      const verification = await waitForDns(domain);
      await mark(domain);
      return verification;
    });
    t = await startTestScheduler(dispatch);
    const r = await t.run(connect, 'example.com');
    expect(r).toMatchObject({ status: Status.OK, value: { verified: true } });
    expect(lookups).toBe(4);
    expect(marked).toEqual(['example.com']);
    const [dnsId] = (await t.get(r.id)).children;
    expect((await t.attempts(dnsId!)).map((a) => a.statusName)).toEqual(['TEMPORARY_ERROR', 'TEMPORARY_ERROR', 'TEMPORARY_ERROR', 'OK']);
  });
});

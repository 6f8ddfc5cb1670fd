/**
 * Issue 15 in the dashboard, in a real browser (Debian's headless Chromium
 * driven by playwright-core): a call waiting for a signal shows what it
 * waits for and the signals it received; a failed call has a Resume button
 * beside Restart that, after a confirmation, runs it again from its journal
 * (the await that succeeded is not run again). The screenshot of the
 * signals goes to test-artifacts/dashboard/; with
 * DISPATCH_UPDATE_SCREENSHOTS=1 the README's docs/screenshots/signals.png is
 * refreshed.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Dispatch, DispatchClient, PermanentError } from '@dispatch/core';
import { encodeArgs } from '@dispatch/core/protocol';
import { Scheduler } from '@dispatch/scheduler';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ROOT = join(import.meta.dirname, '..', '..');
const ARTIFACTS = join(ROOT, 'test-artifacts', 'dashboard');
const hasChromium = existsSync(CHROMIUM);
const SKIP_REASON = `${CHROMIUM} is absent: install Debian's chromium (apt-get install -y chromium) to run the dashboard's browser test`;
const WAIT_MS = 20_000;
const POLL = { timeout: WAIT_MS };

let scheduler: Scheduler;
let browser: Browser;
let page: Page;
let server: { url: string; close(): Promise<void> };
let client: DispatchClient;
const counts = { review: 0, audit: 0 };
let fixed = false;

async function start(fn: string, args: unknown[]): Promise<string> {
  const [id] = await scheduler.dispatch([{ endpoint: server.url, function: fn, input: encodeArgs(args) }]);
  return id!;
}

describe.skipIf(!hasChromium)(`signals and resume in the dashboard${hasChromium ? '' : ` (skipped: ${SKIP_REASON})`}`, () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    scheduler = await Scheduler.start({ db: ':memory:', port: 0, logLevel: 'silent', backoff: { initialMs: 100, maxMs: 300 } });
    const app = new Dispatch({
      apiKey: scheduler.apiKey,
      apiUrl: scheduler.url,
      verificationKey: scheduler.verificationKey,
      logger: { warn() {}, error() {}, info() {} },
    });
    app.function(async function approveExpense(employee: string, amount: number) {
      const note = await app.waitForSignal<string>('note', { timeout: '1h' });
      const decision = await app.waitForSignal<{ approved: boolean; by: string }>('decision', { timeout: '24h' });
      return { employee, amount, note, decision };
    });
    const review = app.function(async function review(expense: string) {
      counts.review++;
      return `reviewed ${expense}`;
    });
    const audit = app.function(async function audit(expense: string) {
      counts.audit++;
      if (!fixed) throw new PermanentError(`the audit service rejected ${expense}: schema v2 expected`);
      return 'audited';
    });
    app.function(async function closeExpense(expense: string) {
      const r = await review(expense);
      const a = await audit(expense);
      return `${r}, ${a}`;
    });
    server = await app.serve({ host: '127.0.0.1', port: 0 });
    client = new DispatchClient({ apiUrl: scheduler.url, apiKey: scheduler.apiKey });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.setDefaultTimeout(WAIT_MS);
    await page.goto(scheduler.dashboardUrl!);
    await page.fill('#key', scheduler.apiKey);
    await page.click('button[type=submit]');
    await page.locator('#live.on').waitFor();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await scheduler?.close();
  });

  it('shows the signal a call waits for and the signals it received', async () => {
    const id = await start('approveExpense', ['ann', 120]);
    await expect.poll(async () => (await client.get(id)).state, POLL).toBe('suspended');
    expect(await client.signal(id, 'note', 'taxi from the airport, receipt attached')).toBe(true);
    await expect.poll(async () => (await scheduler.get(id)).waitingForSignals ?? [], POLL).toEqual(['decision']);

    await page.goto(`${scheduler.dashboardUrl}#/runs/${id}`);
    await expect.poll(() => page.locator('[data-testid="waiting-for-signals"]').textContent(), POLL).toContain('decision');
    const row = page.locator('[data-testid="signals"] tr[data-signal="note"]');
    await row.waitFor();
    expect(await row.textContent()).toContain('taxi from the airport, receipt attached');
    const path = join(ARTIFACTS, 'signals.png');
    await page.screenshot({ path, fullPage: true });
    if (process.env.DISPATCH_UPDATE_SCREENSHOTS === '1') copyFileSync(path, join(ROOT, 'docs', 'screenshots', 'signals.png'));

    // The decision arrives: the page shows it received, and no wait left.
    await client.signal(id, 'decision', { approved: true, by: 'maria' });
    await expect.poll(() => page.locator('[data-testid="signals"] tr[data-signal]').count(), POLL).toBe(2);
    await expect.poll(() => page.locator('[data-testid="waiting-for-signals"]').count(), POLL).toBe(0);
    expect(await client.result(id, { timeoutMs: WAIT_MS })).toMatchObject({ decision: { approved: true, by: 'maria' } });
  });

  it('resumes a failed call from its journal with the Resume button, after a confirmation', async () => {
    const id = await start('closeExpense', ['exp_7']);
    await expect.poll(async () => (await client.get(id)).state, POLL).toBe('failed');
    expect(counts).toEqual({ review: 1, audit: 1 });
    await page.goto(`${scheduler.dashboardUrl}#/runs/${id}`);
    const resume = page.locator('button[data-action="resume"]');
    await expect.poll(() => resume.isEnabled(), POLL).toBe(true);
    fixed = true; // the fix is deployed
    await resume.click();
    expect(await page.locator('#confirm-title').textContent()).toBe('Resume from the journal?');
    expect(await page.locator('#confirm-text').textContent()).toContain('return their recorded results and are not run again');
    await page.locator('#confirm-yes').click();
    // The dashboard's POST is under way: once audit ran again, the call is no longer the failed one of before.
    await expect.poll(() => counts.audit, POLL).toBe(2);
    const value = await client.result(id, { timeoutMs: WAIT_MS });
    expect(value).toBe('reviewed exp_7, audited');
    expect(counts).toEqual({ review: 1, audit: 2 });
    await expect.poll(() => page.locator('.run-head .badge').first().textContent(), POLL).toBe('succeeded');
    await expect.poll(() => resume.isEnabled(), POLL).toBe(false);
  });
});

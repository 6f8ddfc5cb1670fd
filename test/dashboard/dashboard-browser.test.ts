/**
 * Issue 8's "Must show": the dashboard in a real browser (Debian's headless
 * Chromium driven by playwright-core; no browser download). A scheduler and
 * the seed checkout app (checkout → charge, email, mark completed; the email
 * step fails twice) run in this process. The test signs in, finds the run,
 * sees its three children and the two failed email attempts, reads the
 * journal of a suspended checkout, cancels that run, restarts another after
 * the confirmation, checks that user data shows as text, and looks at the
 * concurrency charts. Screenshots go to test-artifacts/dashboard/; with
 * DISPATCH_UPDATE_SCREENSHOTS=1 the README's docs/dashboard.png is refreshed.
 *
 * Without /usr/bin/chromium (`apt-get install -y chromium`) the tests are
 * reported as skipped, with that reason.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { encodeArgs } from '@dispatch/core/protocol';
import { Scheduler } from '@dispatch/scheduler';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CheckoutApp, startCheckoutApp } from './checkout-app.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ROOT = join(import.meta.dirname, '..', '..');
const ARTIFACTS = join(ROOT, 'test-artifacts', 'dashboard');
const hasChromium = existsSync(CHROMIUM);
const SKIP_REASON = `${CHROMIUM} is absent: install Debian's chromium (apt-get install -y chromium) to run the dashboard's browser test`;
if (!hasChromium) console.warn(`SKIPPED dashboard browser test: ${SKIP_REASON}`);

/** How long a wait for the page or the scheduler may take: long enough for a loaded machine. */
const WAIT_MS = 15_000;
/** Options of every `expect.poll`: vitest's default of 1 s is too short under load. */
const POLL = { timeout: WAIT_MS };

const XSS_USER = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">';

let scheduler: Scheduler;
let app: CheckoutApp;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let okRun: string;
let heldRun: string;
let xssRun: string;
const pageErrors: string[] = []; // uncaught errors of the dashboard's script

async function dispatchCheckout(userId: string, orderId: string): Promise<string> {
  const [id] = await scheduler.dispatch([{ endpoint: app.url, function: 'checkout', input: encodeArgs([userId, orderId]) }]);
  return id!;
}

async function until(check: () => Promise<boolean>, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not true after ${timeoutMs} ms: ${check}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function shot(name: string): Promise<string> {
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

describe.skipIf(!hasChromium)(`the dashboard in headless Chromium${hasChromium ? '' : ` (skipped: ${SKIP_REASON})`}`, () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    scheduler = await Scheduler.start({ db: ':memory:', port: 0, logLevel: 'silent', backoff: { initialMs: 150, maxMs: 400 } });
    app = await startCheckoutApp(scheduler, { hold: ['order_hold'] });

    okRun = await dispatchCheckout('user_123', 'order_456');
    const done = await scheduler.wait(okRun, 30_000);
    expect(done).toMatchObject({ done: true, state: 'succeeded' });
    expect(app.charges.get('user_123')).toBe(1); // charged once despite the retries

    heldRun = await dispatchCheckout('user_789', 'order_hold'); // its email step waits: the checkout stays suspended
    xssRun = await dispatchCheckout(XSS_USER, 'order_xss'); // the charge fails with the user ID in its message
    await scheduler.wait(xssRun, 30_000);
    await until(async () => (await scheduler.get(heldRun)).state === 3); // SUSPENDED

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
    context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on('pageerror', (err) => {
      pageErrors.push(err.message);
      console.error(`page error: ${err.message}`);
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await scheduler?.close();
  });

  it('signs in with the API key (a wrong key is refused) into an HttpOnly session', async () => {
    await page.goto(scheduler.dashboardUrl!);
    expect(new URL(page.url()).pathname).toBe('/dashboard/login');
    await page.fill('#key', 'not-the-key');
    await page.click('button[type=submit]');
    await page.getByText('That is not an API key of this scheduler.').waitFor();
    await page.fill('#key', scheduler.apiKey);
    await page.click('button[type=submit]');
    await page.locator('table.runs tbody tr[data-id]').first().waitFor();
    expect(new URL(page.url()).pathname).toBe('/dashboard/');
    const [cookie] = await context.cookies();
    expect(cookie).toMatchObject({ name: 'dispatch_dashboard', httpOnly: true, sameSite: 'Lax', path: '/dashboard' });
    await page.locator('#live.on').waitFor(); // the event stream is connected
  });

  it('lists the runs with counts per state, filterable by function and state', async () => {
    const chip = (state: string) => page.locator(`[data-state="${state}"] .n`);
    await expect.poll(() => chip('succeeded').textContent(), POLL).toBe('1');
    expect(await chip('suspended').textContent()).toBe('1');
    expect(await chip('failed').textContent()).toBe('1');
    expect(await chip('all').textContent()).toBe('3');

    await page.getByLabel('Function').fill('checkout');
    await expect.poll(() => page.url(), POLL).toContain('function=checkout');
    await expect.poll(() => page.locator('tr[data-id]').count(), POLL).toBe(3);
    await page.locator('[data-state="succeeded"]').click();
    await expect.poll(() => page.locator('tr[data-id]').count(), POLL).toBe(1);
    expect(await page.locator('tr[data-id]').getAttribute('data-id')).toBe(okRun);

    await page.getByLabel('Function').fill('sendEmailConfirmation');
    await page.locator('[data-state="all"]').click();
    await page.locator('input[type=checkbox]').uncheck(); // children too
    await expect.poll(() => page.locator('tr[data-id]').count(), POLL).toBe(2); // the finished one and the held one
    await page.getByLabel('Created').selectOption('15m');
    await expect.poll(() => page.url(), POLL).toContain('time=15m');
    await expect.poll(() => page.locator('tr[data-id]').count(), POLL).toBe(2);
    await shot('runs');
  });

  it("finds the checkout and shows its three children and the email step's two failed attempts", async () => {
    await page.goto(`${scheduler.dashboardUrl}#/runs`);
    await page.locator(`tr[data-id="${okRun}"]`).click();
    await page.locator('.run-head h1', { hasText: 'checkout' }).waitFor();
    const root = page.locator(`.tree > li[data-call="${okRun}"]`);
    const children = root.locator(':scope > ul > li');
    await expect.poll(() => children.count(), POLL).toBe(3);
    expect(await children.locator(':scope > .node .fn').allTextContents()).toEqual([
      'chargeCreditCard',
      'sendEmailConfirmation',
      'markOrderAsCompleted',
    ]);
    expect(await page.locator('pre.value').first().textContent()).toContain('"order_456"');
    // A checkout that never failed: one attempt, and its resumes counted apart.
    const field = (label: string) => page.locator('dl.kv dt', { hasText: new RegExp(`^${label}$`) }).locator('xpath=following-sibling::dd[1]');
    expect(await field('Attempts').textContent()).toBe('1');
    expect(await field('Resumes').textContent()).toBe('3');
    expect(await page.locator('[data-testid=attempts] tbody tr td:first-child').allTextContents()).toEqual(['attempt 1', 'resume 1', 'resume 2', 'resume 3']);
    expect(await root.locator(':scope > .node .meta').textContent()).toBe('1 attempt · 3 resumes');

    await children.nth(1).locator('.fn').first().click();
    await page.locator('.run-head h1', { hasText: 'sendEmailConfirmation' }).waitFor();
    const attempts = page.locator('[data-testid=attempts] tbody tr');
    await expect.poll(() => attempts.count(), POLL).toBe(3);
    const failed = page.locator('[data-testid=attempts] tr[data-outcome=retry]');
    expect(await failed.count()).toBe(2);
    expect(await page.locator('[data-testid=attempts] h2').textContent()).toBe('Runs: 3 attempts');
    expect(await failed.locator('.error-box .name').allTextContents()).toEqual(['TemporaryError', 'TemporaryError']);
    expect(await failed.nth(1).locator('.msg').textContent()).toBe('smtp.example.com refused the connection (attempt 2)');
    expect(await page.locator('.timeline .bar').count()).toBe(3);
    const path = await shot('run');
    if (process.env.DISPATCH_UPDATE_SCREENSHOTS === '1') copyFileSync(path, join(ROOT, 'docs', 'dashboard.png'));
    await failed.first().locator('summary', { hasText: 'stack' }).click();
    expect(await failed.first().locator('pre').textContent()).toContain('TemporaryError: smtp.example.com refused the connection (attempt 1)');
    await shot('run-stack');
  });

  it('shows the journal of a suspended checkout, then cancels that run', async () => {
    await page.goto(`${scheduler.dashboardUrl}#/runs/${heldRun}`);
    const ops = page.locator('[data-testid=journal] tbody tr');
    await expect.poll(() => ops.count(), POLL).toBe(2);
    expect(await ops.nth(0).getAttribute('data-state')).toBe('done');
    expect(await ops.nth(0).textContent()).toContain('chargeCreditCard');
    expect(await ops.nth(0).textContent()).toContain('"receipt_2"');
    expect(await ops.nth(1).getAttribute('data-state')).toBe('waiting');
    expect(await ops.nth(1).textContent()).toContain('sendEmailConfirmation');
    await shot('journal');

    await page.locator('[data-action=cancel]').click();
    expect(await page.locator('#confirm-title').textContent()).toBe('Cancel this run?');
    await page.locator('#confirm-yes').click();
    await page.locator('.run-head .badge.cancelled').waitFor();
    expect((await scheduler.get(heldRun)).state).toBe(6); // CANCELLED
    expect(await page.locator('[data-action=cancel]').isDisabled()).toBe(true);
  });

  it('restarts a run only after a confirmation that says side effects may repeat', async () => {
    await page.goto(`${scheduler.dashboardUrl}#/runs/${okRun}`);
    await page.locator('[data-action=restart]').click();
    expect(await page.locator('#confirm-text').textContent()).toContain('Side effects may repeat');
    await page.getByRole('button', { name: 'Keep it' }).click();
    expect((await scheduler.get(okRun)).state).toBe(4); // still SUCCEEDED, not restarted

    await page.goto(`${scheduler.dashboardUrl}#/runs/${xssRun}`);
    await page.locator('.run-head .badge.failed').waitFor();
    const before = (await scheduler.get(xssRun)).attempts ?? 0;
    await page.locator('[data-action=restart]').click();
    await page.locator('#confirm-yes').click();
    await expect.poll(async () => (await scheduler.get(xssRun)).attempts ?? 0, POLL).toBeGreaterThan(before);
  });

  it('shows inputs and errors as text: a <script> in them does not run', async () => {
    await page.goto(`${scheduler.dashboardUrl}#/runs/${xssRun}`);
    await page.locator('pre.value').first().waitFor();
    expect(await page.locator('pre.value').first().textContent()).toContain('<script>window.__xss=1</script>');
    const error = page.locator('.error-box .msg').last();
    await expect.poll(() => error.textContent(), POLL).toBe(`card declined for ${XSS_USER}`);
    await page.goto(`${scheduler.dashboardUrl}#/runs?roots=0`);
    await page.locator('td.err', { hasText: '<img src=x' }).first().waitFor();
    expect(await page.evaluate(() => (globalThis as { __xss?: number }).__xss)).toBeUndefined();
    expect(await page.locator('#app script, #app img').count()).toBe(0);
    await shot('user-data');
  });

  it('shows each function’s adaptive limit and in-flight count with a chart', async () => {
    await page.goto(`${scheduler.dashboardUrl}#/concurrency`);
    const email = page.locator('.card[data-function=sendEmailConfirmation]');
    await email.waitFor();
    expect(Number(await email.locator('.limit-value').textContent())).toBeLessThan(16); // halved by the failures
    expect(await email.locator('svg.chart path.limit').count()).toBe(1);
    expect(await email.locator('.circuit').textContent()).toBe('circuit closed: calls are sent');
    expect(await page.locator('.card').count()).toBe(4);
    await shot('concurrency');
  });

  it('ran every page above without an uncaught error in its script', () => {
    expect(pageErrors).toEqual([]);
  });

  it('a one-time login link signs in once', async () => {
    const link = scheduler.dashboardLoginUrl();
    const fresh = await browser.newContext();
    const other = await fresh.newPage();
    await other.goto(link);
    expect(new URL(other.url()).pathname).toBe('/dashboard/');
    await other.locator('table.runs').waitFor();
    const again = await (await browser.newContext()).newPage();
    const res = await again.goto(link);
    expect(res?.status()).toBe(401);
    await again.getByText('expired or was already used').waitFor();
    await fresh.close();
  });
});

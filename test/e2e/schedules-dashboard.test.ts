/**
 * The schedules page of the dashboard in a real browser (Debian's headless
 * Chromium driven by playwright-core). A scheduler and an app with three
 * scheduled functions run in this process; the app declares them when it
 * serves. The page lists them with their next run, last tick and state;
 * Pause and Resume act on the store. The screenshot goes to
 * test-artifacts/schedules/; with DISPATCH_UPDATE_SCREENSHOTS=1 the README's
 * docs/screenshots/schedules.png is refreshed.
 *
 * Without /usr/bin/chromium the test is reported as skipped, with that reason.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Dispatch, type DispatchServer, type ScheduleTick } from '@dispatch/core';
import { Scheduler } from '@dispatch/scheduler';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ROOT = join(import.meta.dirname, '..', '..');
const ARTIFACTS = join(ROOT, 'test-artifacts', 'schedules');
const hasChromium = existsSync(CHROMIUM);
const SKIP_REASON = `${CHROMIUM} is absent: install Debian's chromium (apt-get install -y chromium) to run the schedules page's browser test`;
if (!hasChromium) console.warn(`SKIPPED schedules dashboard test: ${SKIP_REASON}`);
const WAIT_MS = 20_000;
const silent = { warn() {}, error() {}, info() {} };

let scheduler: Scheduler;
let server: DispatchServer;
let browser: Browser;
let page: Page;
const ticks: ScheduleTick[] = [];

describe.skipIf(!hasChromium)(`the schedules page in headless Chromium${hasChromium ? '' : ` (skipped: ${SKIP_REASON})`}`, () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    scheduler = await Scheduler.start({ db: ':memory:', port: 0, logLevel: 'silent' });
    const { createServer } = await import('node:net');
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const dispatch = new Dispatch({
      env: {},
      apiUrl: scheduler.url,
      apiKey: scheduler.apiKey,
      endpointUrl: `http://127.0.0.1:${port}`,
      verificationKey: scheduler.verificationKey,
      logger: silent,
    });
    dispatch.function({ name: 'syncInventory', schedule: '*/2 * * * * *' }, async (tick: ScheduleTick) => {
      ticks.push(tick);
    });
    dispatch.function({ name: 'weeklyReport', schedule: { cron: '0 9 * * 1', timeZone: 'Europe/Paris' } }, async () => 'sent');
    dispatch.function({ name: 'nightlyCleanup', schedule: { cron: '30 2 * * *', timeZone: 'America/New_York', missed: 'skip' } }, async () => 'clean');
    server = await dispatch.serve({ port, host: '127.0.0.1' });
    const deadline = Date.now() + WAIT_MS;
    while (ticks.length < 2) {
      if (Date.now() > deadline) throw new Error(`syncInventory ticked ${ticks.length} time(s) in ${WAIT_MS} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await scheduler.schedules.pause('nightlyCleanup');

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
    page = await (await browser.newContext({ viewport: { width: 1280, height: 560 } })).newPage();
    page.setDefaultTimeout(WAIT_MS);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await scheduler?.close();
  });

  it('lists the schedules with their next run, last tick and state; pauses and resumes one', async () => {
    await page.goto(scheduler.dashboardLoginUrl());
    await page.goto(`${scheduler.dashboardUrl}#/schedules`);
    const row = (name: string) => page.locator(`tr[data-schedule="${name}"]`);
    await row('syncInventory').waitFor();
    expect(await page.locator('tbody tr[data-schedule]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-schedule')))).toEqual([
      'nightlyCleanup',
      'syncInventory',
      'weeklyReport',
    ]);
    expect(await row('weeklyReport').textContent()).toMatch(/0 9 \* \* 1Europe\/Parisactive.*\(in /);
    expect(await row('nightlyCleanup').textContent()).toMatch(/America\/New_Yorkpaused/);
    await expect.poll(async () => (await row('syncInventory').textContent()) ?? '', { timeout: WAIT_MS }).toMatch(/active.*run/);
    expect(await page.locator('nav a[data-nav="schedules"].active').count()).toBe(1);
    const path = join(ARTIFACTS, 'schedules.png');
    await page.screenshot({ path, fullPage: true });
    if (process.env.DISPATCH_UPDATE_SCREENSHOTS === '1') {
      mkdirSync(join(ROOT, 'docs', 'screenshots'), { recursive: true });
      copyFileSync(path, join(ROOT, 'docs', 'screenshots', 'schedules.png'));
    }

    await row('syncInventory').getByRole('button', { name: 'Pause' }).click();
    await expect.poll(async () => (await scheduler.schedules.list()).find((s) => s.name === 'syncInventory')?.paused, { timeout: WAIT_MS }).toBe(true);
    await row('syncInventory').getByRole('button', { name: 'Resume' }).waitFor();
    expect(await row('syncInventory').textContent()).toMatch(/paused/);
    await row('syncInventory').getByRole('button', { name: 'Resume' }).click();
    await expect.poll(async () => (await scheduler.schedules.list()).find((s) => s.name === 'syncInventory')?.paused, { timeout: WAIT_MS }).toBe(false);
    await row('syncInventory').getByRole('button', { name: 'Pause' }).waitFor();
    // The last tick's link opens its run.
    await row('syncInventory').getByRole('link', { name: 'run' }).click();
    await expect.poll(() => page.url(), { timeout: WAIT_MS }).toMatch(/#\/runs\/.+/);
  }, 60_000);
});

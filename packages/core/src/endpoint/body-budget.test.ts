import { describe, expect, it } from 'vitest';
import { BodyBudget, BodyBudgetTimeoutError } from './body-budget.js';

describe('BodyBudget', () => {
  it('grants while there is room, then in arrival order as bytes are given back', async () => {
    const budget = new BodyBudget({ limit: 100 });
    const a = await budget.acquire(60);
    const b = await budget.acquire(40);
    expect(budget.inUse).toBe(100);
    const order: string[] = [];
    const c = budget.acquire(30).then((release) => (order.push('c'), release));
    const d = budget.acquire(10).then((release) => (order.push('d'), release)); // fits, but waits its turn behind c
    expect(budget.waiting).toBe(2);
    a();
    a(); // a second call does nothing
    const [releaseC, releaseD] = await Promise.all([c, d]);
    expect(order).toEqual(['c', 'd']);
    expect(budget.inUse).toBe(80);
    b();
    releaseC();
    releaseD();
    expect(budget.inUse).toBe(0);
    expect(budget.peak).toBe(100);
  });

  it('lets a request larger than the whole budget be read alone', async () => {
    const budget = new BodyBudget({ limit: 10 });
    const small = await budget.acquire(5);
    const huge = budget.acquire(50);
    expect(budget.waiting).toBe(1);
    small();
    const release = await huge;
    expect(budget.inUse).toBe(50);
    release();
  });

  it('gives up after maxWaitMs with a message saying what to do, and when the request goes away', async () => {
    const budget = new BodyBudget({ limit: 10, maxWaitMs: 20 });
    const held = await budget.acquire(10);
    await expect(budget.acquire(5)).rejects.toThrow(BodyBudgetTimeoutError);
    await expect(budget.acquire(5)).rejects.toThrow(/waited 20 ms for room: retry later/);
    const gone = new AbortController();
    const waiting = budget.acquire(5, gone.signal);
    gone.abort(new Error('client left'));
    await expect(waiting).rejects.toThrow('client left');
    expect(budget.waiting).toBe(0);
    held();
    expect(budget.inUse).toBe(0);
  });
});

import { Status } from '@dispatch/core/protocol';
import { describe, expect, it } from 'vitest';
import { ConcurrencyController } from './concurrency.js';

describe('ConcurrencyController (AIMD)', () => {
  it('increases additively on OK and decreases multiplicatively on TEMPORARY_ERROR, within bounds', () => {
    const changes: number[] = [];
    const c = new ConcurrencyController({ initial: 4, min: 1, max: 6 }, (s) => changes.push(Math.floor(s.limit)));
    expect(c.capacity('e', 'f')).toBe(4);
    let t = 0;
    for (let i = 0; i < 4; i++) {
      c.acquire('e', 'f');
      c.release('e', 'f', Status.OK, t++, t++);
    }
    expect(c.snapshot('e', 'f').limit).toBeGreaterThanOrEqual(4.9);
    for (let i = 0; i < 100; i++) {
      c.acquire('e', 'f');
      c.release('e', 'f', Status.OK, t++, t++);
    }
    expect(c.snapshot('e', 'f').limit).toBe(6);
    c.acquire('e', 'f');
    c.release('e', 'f', Status.TEMPORARY_ERROR, t++, t++);
    expect(c.snapshot('e', 'f').limit).toBe(3);
    for (let i = 0; i < 10; i++) {
      c.acquire('e', 'f');
      c.release('e', 'f', Status.THROTTLED, t++, t++);
    }
    expect(c.snapshot('e', 'f').limit).toBe(1);
    expect(changes).toEqual([5, 6, 3, 1]);
  });

  it('decreases once per round: runs started before the last decrease do not decrease again', () => {
    const c = new ConcurrencyController({ initial: 16 });
    for (let i = 0; i < 8; i++) c.acquire('e', 'f');
    expect(c.capacity('e', 'f')).toBe(8);
    for (let i = 0; i < 8; i++) c.release('e', 'f', Status.TCP_ERROR, 100, 200 + i);
    expect(c.snapshot('e', 'f')).toMatchObject({ limit: 8, inFlight: 0 });
  });

  it('divides max among the live instances sharing a store, and lowers limits above the share', () => {
    const changes: number[] = [];
    const c = new ConcurrencyController({ initial: 8, min: 2, max: 30 }, (s) => changes.push(Math.floor(s.limit)));
    expect(c.snapshot('e', 'f')).toMatchObject({ limit: 8, max: 30 });
    expect(c.setInstances(3)).toBe(true);
    expect(c.setInstances(3)).toBe(false);
    expect(c.snapshot('e', 'f').max).toBe(10);
    for (let i = 0; i < 200; i++) {
      c.acquire('e', 'f');
      c.release('e', 'f', Status.OK, i, i);
    }
    expect(c.snapshot('e', 'f').limit).toBe(10);
    c.setInstances(4);
    expect(c.snapshot('e', 'f')).toMatchObject({ limit: 7, max: 7 });
    c.setInstances(100);
    expect(c.snapshot('e', 'g')).toMatchObject({ limit: 2, max: 2 }); // never below min
    c.setInstances(1);
    expect(c.snapshot('e', 'f').max).toBe(30);
    expect(changes).toEqual([9, 10, 7, 2]);
  });

  it('keeps INCOMPATIBLE_STATE neutral and pairs apart', () => {
    const c = new ConcurrencyController({ initial: 2 });
    c.acquire('e', 'f');
    c.release('e', 'f', Status.INCOMPATIBLE_STATE, 0, 1);
    expect(c.snapshot('e', 'f').limit).toBe(2);
    c.acquire('e', 'g');
    expect(c.capacity('e', 'g')).toBe(1);
    expect(c.capacity('e', 'f')).toBe(2);
    expect(c.totalInFlight).toBe(1);
  });
});

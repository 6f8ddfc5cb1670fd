import { describe, expect, it } from 'vitest';
import { formatDuration, formatTime, shortId } from './format.js';

describe('formatting', () => {
  it('writes durations in the largest readable unit', () => {
    expect(formatDuration(null)).toBe('—');
    expect(formatDuration(Number.NaN)).toBe('—');
    expect(formatDuration(849.6)).toBe('850 ms');
    expect(formatDuration(1_234)).toBe('1.23 s');
    expect(formatDuration(12_345)).toBe('12.3 s');
    expect(formatDuration(125_000)).toBe('2 min 5 s');
    expect(formatDuration(5_400_000)).toBe('1.5 h');
  });

  it('writes the date only when it is not today', () => {
    const today = new Date(2024, 4, 2, 12, 0, 0);
    const time = (d: Date) => d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    const morning = new Date(2024, 4, 2, 9, 30, 5);
    const yesterday = new Date(2024, 4, 1, 9, 30, 5);
    expect(formatTime(morning.getTime(), today)).toBe(time(morning));
    expect(formatTime(yesterday.getTime(), today)).toBe(`${yesterday.toLocaleDateString()} ${time(yesterday)}`);
    expect(formatTime(undefined, today)).toBe('—');
  });

  it('cuts long IDs to their ends', () => {
    expect(shortId('01HZX4V7Q8M2N5P6R7S8T9')).toBe('01HZX4…R7S8T9');
    expect(shortId('D1')).toBe('D1');
  });
});

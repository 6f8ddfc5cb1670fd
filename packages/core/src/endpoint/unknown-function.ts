/**
 * What an endpoint says about a function it does not have: the closest
 * name it does have, and its functions, so that a typo in `dispatch call
 * chekout` reads as one.
 * @module
 */

import { quoteExcerpt } from '../protocol/excerpt.js';

/** Most function names an answer lists. */
const MAX_LISTED = 20;
/** Longest name compared with the registered ones (the edit distance costs the product of the lengths). */
const MAX_COMPARED = 256;

/**
 * The message of the 404 for an unknown function: the name asked, the
 * closest registered one (`did you mean checkout?`) when one is close
 * enough, and the registered names.
 * @example
 * unknownFunctionMessage('chekout', ['charge', 'checkout']);
 * // 'function "chekout" does not exist on this endpoint: did you mean checkout? (its functions: charge, checkout)'
 */
export function unknownFunctionMessage(name: string, functions: readonly string[]): string {
  const base = `function ${quoteExcerpt(name, 200)} does not exist on this endpoint`;
  if (functions.length === 0) return `${base}: it has no functions registered`;
  const sorted = [...functions].sort();
  const listed = sorted.length > MAX_LISTED ? `${sorted.slice(0, MAX_LISTED).join(', ')}, and ${sorted.length - MAX_LISTED} more` : sorted.join(', ');
  const guess = name.length <= MAX_COMPARED ? closest(name, sorted) : undefined;
  return `${base}${guess ? `: did you mean ${guess}?` : ''} (its functions: ${listed})`;
}

/** The candidate nearest to `name` (case-insensitive edit distance), if near enough to be a typo. */
function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  const lower = name.toLowerCase();
  for (const candidate of candidates) {
    const d = distance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  // A typo: at most a third of the longer name, and at least one edit allowed.
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(Math.max(name.length, best.length) / 3)) ? best : undefined;
}

/** Edit distance with transpositions (optimal string alignment). */
function distance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}

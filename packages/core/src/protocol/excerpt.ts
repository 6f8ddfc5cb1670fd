/**
 * Excerpts of values for messages: an error message quotes at most
 * {@link MAX_EXCERPT_CHARS} characters of the value it is about, so that a
 * huge bad value cannot become a huge error text (stored, echoed, logged).
 * @module
 */
import { MAX_EXCERPT_CHARS } from './constants.js';

/**
 * The text itself if it has at most `max` characters; else its first `max`
 * characters (never cutting a surrogate pair) followed by
 * `…[N characters in all]`.
 * @example
 * excerpt('x'.repeat(5000)); // 'xxx…xxx…[5000 characters in all]' (1,024 x's)
 */
export function excerpt(text: string, max: number = MAX_EXCERPT_CHARS): string {
  if (text.length <= max) return text;
  let end = max;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--; // keep a surrogate pair whole
  return `${text.slice(0, end)}…[${text.length} characters in all]`;
}

/**
 * A string value quoted for a message (`JSON.stringify`), cut to at most
 * `max` characters of the value first (see {@link excerpt}).
 * @example
 * `the date ${quoteExcerpt(text)} is not valid`; // the date "2024-13-45" is not valid
 */
export function quoteExcerpt(text: string, max: number = MAX_EXCERPT_CHARS): string {
  if (text.length <= max) return JSON.stringify(text);
  const cut = excerpt(text, max);
  const at = cut.lastIndexOf('…[');
  return `${JSON.stringify(cut.slice(0, at))}${cut.slice(at)}`;
}

/**
 * Validation issues for people: one line per issue, in the manner of zod 4's
 * `prettifyError` (which the core does not load: zod takes about 90 ms to
 * load, and the schema's error already carries its issues).
 * @module
 */

/** An issue as zod (3 or 4) reports it. */
interface Issue {
  message?: unknown;
  path?: unknown;
}

/**
 * The issues of a validation error, one line each (`✖ message → at path`);
 * an error without zod's `issues` gives its message.
 * @example
 * describeIssues(result.error); // '✖ Invalid input: expected number, received string → at [1]'
 */
export function describeIssues(error: { message: string; issues?: unknown }): string {
  const issues = Array.isArray(error.issues) ? (error.issues as Issue[]) : [];
  if (issues.length === 0) return error.message;
  return issues
    .map((issue) => {
      const path = Array.isArray(issue.path) && issue.path.length > 0 ? ` → at ${formatPath(issue.path)}` : '';
      return `✖ ${String(issue.message ?? 'invalid')}${path}`;
    })
    .join('\n');
}

/** A path as zod's `prettifyError` writes it: `[0].name`, `["a b"]`. */
function formatPath(path: unknown[]): string {
  return path
    .map((key, i) => {
      if (typeof key === 'number') return `[${key}]`;
      const text = typeof key === 'symbol' ? key.toString() : String(key);
      return /^[A-Za-z_$][\w$]*$/.test(text) ? `${i === 0 ? '' : '.'}${text}` : `[${JSON.stringify(text)}]`;
    })
    .join('');
}

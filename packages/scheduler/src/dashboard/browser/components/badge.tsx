/**
 * A state or outcome as a coloured pill (the colour is the class, by default
 * the text itself: `succeeded`, `failed`, `waiting`…).
 * @module
 */

/**
 * A badge.
 * @example
 * <Badge text="suspended" />
 * <Badge text="exit (resume)" tone="exit-ok" />
 */
export function Badge({ text, tone }: { text: string; tone?: string }) {
  return <span class={`badge ${tone || text}`}>{text}</span>;
}

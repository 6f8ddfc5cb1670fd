/**
 * A decoded value: its JSON text (with a note on what JSON could not say),
 * or why it cannot be shown.
 * @module
 */
import type { ValueView } from '../../api-types.js';

/**
 * A value.
 * @example
 * <ValueBlock value={call.input} />
 */
export function ValueBlock({ value }: { value: ValueView }) {
  if (value.kind === 'json') {
    return (
      <div>
        <pre class="value">{value.text}</pre>
        {value.note ? <p class="note">{`Note: ${value.note}`}</p> : null}
      </div>
    );
  }
  return <p class="note">{value.note}</p>;
}

/**
 * An error: type and message, with its stack and its fields folded away.
 * @module
 */
import type { ErrorView } from '../../api-types.js';
import { ValueBlock } from './value-block.js';

/**
 * An error.
 * @example
 * <ErrorBox error={attempt.error} />
 */
export function ErrorBox({ error }: { error: ErrorView }) {
  return (
    <div class="error-box">
      <div>
        <span class="name">{error.type}</span>
        {': '}
        <span class="msg">{error.message}</span>
      </div>
      {error.stack ? (
        <details>
          <summary>stack</summary>
          <pre>{error.stack}</pre>
        </details>
      ) : null}
      {error.fields ? (
        <details>
          <summary>fields</summary>
          <ValueBlock value={error.fields} />
        </details>
      ) : null}
    </div>
  );
}

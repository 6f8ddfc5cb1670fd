/**
 * The RunResponses that end a run: an `Exit` with the function's result or
 * error and the status it maps to, or an error the engine reports itself
 * (built from the SDK's error classes, so the Error's `type` is the class
 * name and its status is the class's status).
 * @module
 */
import type { IAny, IRunResponse } from '../protocol/proto.js';
import { encodeError, encodeValue } from '../serde/serde.js';
import type { DispatchError } from '../status/errors.js';
import type { StatusRegistry } from '../status/registry.js';
import { Status } from '../status/status.js';

/**
 * An `Exit` with an error the engine reports, with the status of its class.
 * It carries no traceback: its stack would show the engine's internals, not
 * the user's code.
 */
export function failure(error: DispatchError): IRunResponse {
  const { traceback: _, ...encoded } = encodeError(error, error.status);
  return { status: error.status as number, exit: { result: { error: encoded } } };
}

/**
 * The `Exit` of a settled function: its encoded output and the status the
 * registry gives it (OK when unspecified), or its encoded error and that
 * error's status (PERMANENT_ERROR when unspecified).
 */
export function exitOf(settled: { ok: true; value: unknown } | { ok: false; error: unknown }, registry: StatusRegistry): IRunResponse {
  if (settled.ok) {
    let output: IAny;
    try {
      output = encodeValue(settled.value);
    } catch (err) {
      return { status: Status.INVALID_RESPONSE as number, exit: { result: { error: encodeError(err) } } };
    }
    let status: Status;
    try {
      status = registry.outputStatus(settled.value);
    } catch (err) {
      return { status: Status.TEMPORARY_ERROR as number, exit: { result: { output, error: encodeError(err) } } };
    }
    return { status: (status === Status.UNSPECIFIED ? Status.OK : status) as number, exit: { result: { output } } };
  }
  const status = registry.errorStatus(settled.error);
  const error = encodeError(settled.error, status);
  return { status: (status === Status.UNSPECIFIED ? Status.PERMANENT_ERROR : status) as number, exit: { result: { error } } };
}

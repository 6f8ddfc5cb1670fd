/**
 * The scheduler's HTTP API: Connect unary RPCs in binary protobuf
 * (`application/proto`) or Connect JSON (`application/json`), answered in the
 * request's encoding, behind a bearer API key; plus `GET /healthz`.
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { DISPATCH_PATH, type Encoding, encodingOf, excerpt, fromJsonBytes, JsonFormatError, proto, SCHEDULE_SERVICE_PATH, SCHEDULER_SERVICE_PATH, toJsonBytes } from '@dispatch/core/protocol';
import type { Logger } from '../logger.js';
import { SchedulerError } from '../errors.js';
import { countCalls, tooManyCalls } from './call-count.js';
import type { FailureThrottle } from './failure-throttle.js';
import { StoreUnavailableError } from '../store/faults.js';

/**
 * The RPCs the server routes to.
 * @example
 * const handlers: ApiHandlers = { dispatch: (req) => scheduler.dispatchRequest(req), ... };
 */
export interface ApiHandlers {
  dispatch(req: proto.IDispatchRequest): Promise<proto.IDispatchResponse>;
  wait(req: proto.IWaitRequest, signal: AbortSignal): Promise<proto.IWaitResponse>;
  get(req: proto.IGetRequest): Promise<proto.IGetResponse>;
  list(req: proto.IListRequest): Promise<proto.IListResponse>;
  cancel(req: proto.ICancelRequest): Promise<proto.ICancelResponse>;
  restart(req: proto.IRestartRequest): Promise<proto.IRestartResponse>;
  signal(req: proto.ISignalRequest): Promise<proto.ISignalResponse>;
  resume(req: proto.IResumeRequest): Promise<proto.IResumeResponse>;
  features(req: proto.IFeaturesRequest): Promise<proto.IFeaturesResponse>;
  health(): Promise<Record<string, unknown>>;
  /** ScheduleService (schedules.proto). */
  declareSchedules(req: proto.IDeclareSchedulesRequest): Promise<proto.IDeclareSchedulesResponse>;
  listSchedules(req: proto.IListSchedulesRequest): Promise<proto.IListSchedulesResponse>;
  pauseSchedule(req: proto.IPauseScheduleRequest): Promise<proto.IPauseScheduleResponse>;
  resumeSchedule(req: proto.IResumeScheduleRequest): Promise<proto.IResumeScheduleResponse>;
  removeSchedule(req: proto.IRemoveScheduleRequest): Promise<proto.IRemoveScheduleResponse>;
}

/**
 * Options of {@link createApiServer}.
 * @example
 * const server = createApiServer({ apiKeys: [key], maxBodyBytes: 16_000_000, maxCallsPerRequest: 1000, throttle: new FailureThrottle(), handlers, log });
 */
export interface ApiServerOptions {
  apiKeys: string[];
  maxBodyBytes: number;
  /** Most calls in one DispatchRequest; a binary request over it is refused before it is decoded. */
  maxCallsPerRequest: number;
  /** Failed bearer keys per client address (shared with the dashboard): past its limit, 429. */
  throttle: FailureThrottle;
  handlers: ApiHandlers;
  log: Logger;
  /**
   * `GET /metrics`: the Prometheus text, for a bearer API key or the
   * metrics token. Absent: `/metrics` is not served.
   */
  metrics?: { text(): Promise<string>; contentType: string; token?: string | undefined };
  /**
   * Serves other paths (the dashboard) before they are answered `not_found`;
   * returns true when it took the request. It does its own authentication.
   */
  fallback?: (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => boolean;
}

/** One RPC: its messages and its handler (`any`: one table for messages of different types). */
interface Route {
  request: proto.MessageType<any>;
  response: proto.MessageType<any>;
  call: (h: ApiHandlers, req: any, signal: AbortSignal) => Promise<object>;
}

const ROUTES: Record<string, Route> = {
  [DISPATCH_PATH]: { request: proto.DispatchRequest, response: proto.DispatchResponse, call: (h, r) => h.dispatch(r) },
  [`${SCHEDULER_SERVICE_PATH}Wait`]: { request: proto.WaitRequest, response: proto.WaitResponse, call: (h, r, s) => h.wait(r, s) },
  [`${SCHEDULER_SERVICE_PATH}Get`]: { request: proto.GetRequest, response: proto.GetResponse, call: (h, r) => h.get(r) },
  [`${SCHEDULER_SERVICE_PATH}List`]: { request: proto.ListRequest, response: proto.ListResponse, call: (h, r) => h.list(r) },
  [`${SCHEDULER_SERVICE_PATH}Cancel`]: { request: proto.CancelRequest, response: proto.CancelResponse, call: (h, r) => h.cancel(r) },
  [`${SCHEDULER_SERVICE_PATH}Restart`]: { request: proto.RestartRequest, response: proto.RestartResponse, call: (h, r) => h.restart(r) },
  [`${SCHEDULER_SERVICE_PATH}Signal`]: { request: proto.SignalRequest, response: proto.SignalResponse, call: (h, r) => h.signal(r) },
  [`${SCHEDULER_SERVICE_PATH}Resume`]: { request: proto.ResumeRequest, response: proto.ResumeResponse, call: (h, r) => h.resume(r) },
  [`${SCHEDULER_SERVICE_PATH}Features`]: { request: proto.FeaturesRequest, response: proto.FeaturesResponse, call: (h, r) => h.features(r) },
  ...scheduleRoutes(),
};

/** ScheduleService's routes (schedules.proto). */
function scheduleRoutes(): Record<string, Route> {
  const p = SCHEDULE_SERVICE_PATH;
  return {
    [`${p}DeclareSchedules`]: { request: proto.DeclareSchedulesRequest, response: proto.DeclareSchedulesResponse, call: (h, r) => h.declareSchedules(r) },
    [`${p}ListSchedules`]: { request: proto.ListSchedulesRequest, response: proto.ListSchedulesResponse, call: (h, r) => h.listSchedules(r) },
    [`${p}PauseSchedule`]: { request: proto.PauseScheduleRequest, response: proto.PauseScheduleResponse, call: (h, r) => h.pauseSchedule(r) },
    [`${p}ResumeSchedule`]: { request: proto.ResumeScheduleRequest, response: proto.ResumeScheduleResponse, call: (h, r) => h.resumeSchedule(r) },
    [`${p}RemoveSchedule`]: { request: proto.RemoveScheduleRequest, response: proto.RemoveScheduleResponse, call: (h, r) => h.removeSchedule(r) },
  };
}

const digest = (s: string) => createHash('sha256').update(s).digest();

function sendError(res: http.ServerResponse, err: SchedulerError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ code: err.code, message: err.message });
  res.writeHead(err.httpStatus, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Creates the API server (not listening yet).
 * @example
 * const server = createApiServer(options);
 * server.listen(4450, '127.0.0.1');
 */
export function createApiServer(options: ApiServerOptions): http.Server {
  const keys = options.apiKeys.map(digest);
  const metricsKeys = options.metrics?.token ? [...keys, digest(options.metrics.token)] : keys;
  const authorized = (header: string | undefined, accepted = keys): boolean => {
    const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
    if (!m) return false;
    const given = digest(m[1]!.trim());
    let ok = false;
    for (const k of accepted) ok = timingSafeEqual(given, k) || ok; // compare with every key: constant time
    return ok;
  };
  const throttled = (req: http.IncomingMessage, res: http.ServerResponse, client: string): boolean => {
    if (options.throttle.mayTry(client)) return false;
    req.resume();
    const wait = options.throttle.retryAfterSeconds(client);
    res.setHeader('retry-after', String(wait));
    sendError(
      res,
      new SchedulerError(
        'resource_exhausted',
        `too many requests with a wrong API key from ${client} (${options.throttle.maxFailures} a minute): wait ${wait} s, and check the key (DISPATCH_API_KEY)`,
      ),
    );
    return true;
  };
  const metrics = options.metrics;
  const serveMetrics = (req: http.IncomingMessage, res: http.ServerResponse, m: NonNullable<typeof metrics>): void => {
    req.resume();
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      sendError(res, new SchedulerError('unimplemented', `/metrics takes GET, not ${req.method}`, 405));
      return;
    }
    const client = req.socket.remoteAddress ?? '';
    if (throttled(req, res, client)) return;
    if (!authorized(req.headers.authorization, metricsKeys)) {
      options.throttle.failed(client);
      res.setHeader('www-authenticate', 'Bearer realm="dispatch-metrics"');
      sendError(
        res,
        new SchedulerError(
          'unauthenticated',
          req.headers.authorization
            ? 'invalid token for /metrics: the bearer token matches no API key and not the metrics token of this scheduler'
            : 'missing token for /metrics: send Authorization: Bearer <API key or metrics token> (in Prometheus: authorization.credentials)',
        ),
      );
      return;
    }
    m.text().then(
      (text) => {
        res.writeHead(200, { 'content-type': m.contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err) => {
        options.log.error(`/metrics failed: ${(err as Error).stack ?? err}`);
        sendError(res, new SchedulerError('unavailable', `cannot read the metrics: ${(err as Error).message}`));
      },
    );
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
      options.handlers.health().then(
        (h) => {
          const body = JSON.stringify(h);
          // 503 while the store fails (the body says why): load balancers and probes see it.
          res.writeHead(h.status === 'ok' ? 200 : 503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
          res.end(req.method === 'HEAD' ? undefined : body);
        },
        (err) => sendError(res, new SchedulerError('unavailable', `unhealthy: ${(err as Error).message}`)),
      );
      return;
    }
    if (url.pathname === '/metrics' && metrics) {
      serveMetrics(req, res, metrics);
      return;
    }
    const route = ROUTES[url.pathname];
    if (!route && options.fallback?.(req, res, url)) return;
    if (!route) {
      req.resume();
      sendError(res, new SchedulerError('not_found', `no procedure at ${url.pathname}`));
      return;
    }
    if (req.method !== 'POST') {
      req.resume();
      res.setHeader('allow', 'POST');
      sendError(res, new SchedulerError('unimplemented', `${url.pathname} takes POST, not ${req.method}`, 405));
      return;
    }
    const client = req.socket.remoteAddress ?? '';
    if (throttled(req, res, client)) return;
    if (!authorized(req.headers.authorization)) {
      options.throttle.failed(client);
      req.resume();
      sendError(
        res,
        new SchedulerError(
          'unauthenticated',
          req.headers.authorization
            ? 'invalid API key: the Authorization bearer token does not match any key of this scheduler'
            : 'missing API key: send Authorization: Bearer <key> (DISPATCH_API_KEY)',
        ),
      );
      return;
    }
    const encoding = encodingOf(req.headers['content-type']);
    if (!encoding) {
      req.resume();
      sendError(
        res,
        new SchedulerError(
          'unimplemented',
          `unsupported content type ${JSON.stringify(req.headers['content-type'])}: use application/proto or application/json`,
          415,
        ),
      );
      return;
    }
    const declared = Number(req.headers['content-length'] ?? '0');
    const tooLarge = () =>
      new SchedulerError('resource_exhausted', `the request body is larger than the limit of ${options.maxBodyBytes} bytes`, 413);
    if (declared > options.maxBodyBytes) {
      res.setHeader('connection', 'close');
      sendError(res, tooLarge());
      req.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let aborted = false;
    req.on('data', (chunk: Buffer) => {
      if (aborted) return;
      size += chunk.length;
      if (size > options.maxBodyBytes) {
        aborted = true;
        res.setHeader('connection', 'close');
        sendError(res, tooLarge());
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (aborted) return;
      const controller = new AbortController();
      res.on('close', () => controller.abort());
      void handle(route, Buffer.concat(chunks), encoding, controller.signal).then(
        (body) => {
          if (res.destroyed) return;
          res.writeHead(200, {
            'content-type': encoding === 'json' ? 'application/json' : 'application/proto',
            'content-length': body.length,
          });
          res.end(body);
        },
        (err) => {
          if (err instanceof StoreUnavailableError) {
            // A full disk or a lost database is not a bug: `unavailable`, with what is wrong (clients retry).
            options.log.debug(`${url.pathname}: ${err.message}`);
            err = new SchedulerError('unavailable', err.message);
          } else if (!(err instanceof SchedulerError)) {
            options.log.error(`${url.pathname} failed: ${(err as Error).stack ?? err}`);
            err = new SchedulerError('internal', 'internal error in the scheduler (see its log)');
          }
          sendError(res, err as SchedulerError);
        },
      );
    });
  });

  async function handle(route: Route, body: Buffer, encoding: Encoding, signal: AbortSignal): Promise<Uint8Array> {
    if (route.request === proto.DispatchRequest && encoding === 'proto') {
      const calls = countCalls(body) ?? 0; // counted before 600,000 calls are built
      if (calls > options.maxCallsPerRequest) throw new SchedulerError('invalid_argument', tooManyCalls(calls, options.maxCallsPerRequest));
    }
    let request: object;
    try {
      request = encoding === 'json' ? fromJsonBytes(route.request, body) : route.request.decode(body);
    } catch (err) {
      const why = err instanceof JsonFormatError ? err.message : (err as Error).message;
      throw new SchedulerError('invalid_argument', `cannot decode the ${route.request.fullName}: ${excerpt(why)}`);
    }
    const response = await route.call(options.handlers, request, signal);
    return encoding === 'json' ? toJsonBytes(route.response, response) : route.response.encode(response);
  }

  server.keepAliveTimeout = 65_000;
  server.requestTimeout = 11 * 60_000;
  return server;
}

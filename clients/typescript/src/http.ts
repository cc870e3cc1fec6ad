/**
 * The one function every API call goes through: it adds the bearer token, encodes the query and
 * body, and turns every non-2xx answer into an {@link ApiError}. The configuration is passed in by
 * the {@link NosyntaskClient} that makes the call.
 */

/** Where the bearer token comes from; may be synchronous or asynchronous. `null` sends none. */
export type TokenSource = () => string | null | undefined | Promise<string | null | undefined>;

/** Options of `configure` and `new NosyntaskClient(...)`. */
export interface ClientConfig {
  /**
   * Origin (and optional prefix) of the nosyntask server, e.g. `https://api.example.com`.
   * Empty means relative URLs (`/api/...` on the page's own origin). Default: `''`.
   */
  baseUrl: string;
  /** Called before every request for the JWT. Default: no token. */
  getToken: TokenSource;
  /** The `fetch` to use. Default: the global `fetch` at call time. */
  fetch?: typeof fetch;
  /** Extra headers sent with every request. */
  headers?: Record<string, string>;
}

/**
 * An error answer of the server (`{message, code}` with its HTTP status), or a request that never got
 * an answer (`status` 0, `code` `network_error`).
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';

  constructor(
    message: string,
    /** The HTTP status, or 0 when the server could not be reached. */
    readonly status: number,
    /** The server's stable snake_case error code, e.g. `not_found`, `invalid_params`. */
    readonly code: string,
    /** Seconds to wait before retrying, from the `Retry-After` header (429, 503). */
    readonly retryAfter?: number,
  ) {
    super(message);
  }

  /**
   * Whether asking again later may succeed: no answer, 408, 429 or a 5xx. Other 4xx answers
   * (bad params, not found, unauthorized) will not change by retrying.
   */
  get isRetryable(): boolean {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

/** Whether `error` is an {@link ApiError}. */
export function isApiError(error: unknown): error is ApiError {
  return error instanceof ApiError;
}

/** Whether `error` comes from an aborted request. */
export function isAbortError(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    'name' in error &&
    (error as { name: unknown }).name === 'AbortError'
  );
}

type QueryValue = string | number | boolean | null | undefined;

/** Options of one request. */
export interface RequestOptions {
  query?: Record<string, QueryValue>;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** Builds the URL of an API path with its query string. */
export function buildUrl(config: ClientConfig, path: string, query?: Record<string, QueryValue>): string {
  const base = config.baseUrl.replace(/\/+$/, '');
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null) params.append(key, String(value));
  }
  const search = params.toString();
  return `${base}${path}${search ? `?${search}` : ''}`;
}

/** The headers of a request: configured ones, the bearer token, then the call's own. */
export async function buildHeaders(config: ClientConfig, extra?: Record<string, string>): Promise<Headers> {
  const headers = new Headers(config.headers);
  const token = await config.getToken();
  if (token) headers.set('Authorization', `Bearer ${token}`);
  for (const [key, value] of Object.entries(extra ?? {})) headers.set(key, value);
  return headers;
}

/** Sends a request; network failures become an {@link ApiError} with status 0. */
export async function send(
  config: ClientConfig,
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<Response> {
  const headers = await buildHeaders(config, options.headers);
  let body: string | undefined;
  if (options.body !== undefined) {
    headers.set('Content-Type', 'application/json');
    body = JSON.stringify(options.body);
  }
  if (!headers.has('Accept')) headers.set('Accept', 'application/json');
  const doFetch = config.fetch ?? globalThis.fetch;
  let response: Response;
  try {
    response = await doFetch(buildUrl(config, path, options.query), {
      method,
      headers,
      body,
      signal: options.signal,
    });
  } catch (error) {
    if (isAbortError(error) || options.signal?.aborted) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new ApiError(`Cannot reach the server: ${reason}`, 0, 'network_error');
  }
  if (!response.ok && response.status !== 304) throw await errorFrom(response);
  return response;
}

/** Sends a request and parses its JSON answer. */
export async function request<T>(
  config: ClientConfig,
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<T> {
  const response = await send(config, method, path, options);
  return (await readJson(response)) as T;
}

async function readJson(response: Response): Promise<unknown> {
  const text = await response.text();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new ApiError('The server answered with invalid JSON', response.status, 'invalid_response');
  }
}

const STATUS_CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  409: 'conflict',
  413: 'payload_too_large',
  422: 'invalid_params',
  429: 'quota_exceeded',
  503: 'unavailable',
};

/** Turns an error answer into an {@link ApiError}, keeping the server's `message` and `code`. */
export async function errorFrom(response: Response): Promise<ApiError> {
  let message = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
  let code = STATUS_CODES[response.status] ?? `http_${response.status}`;
  try {
    const body: unknown = JSON.parse(await response.text());
    if (typeof body === 'object' && body !== null) {
      const fields = body as { message?: unknown; code?: unknown };
      if (typeof fields.message === 'string' && fields.message) message = fields.message;
      if (typeof fields.code === 'string' && fields.code) code = fields.code;
    }
  } catch {
    // Not JSON (a proxy's error page, say): keep the status-derived message and code.
  }
  return new ApiError(message, response.status, code, retryAfterSeconds(response.headers.get('Retry-After')));
}

function retryAfterSeconds(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

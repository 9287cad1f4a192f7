/**
 * Retries a Slack Web API call that failed for a reason that passes — rate limited, an HTTP 5xx, the
 * request itself failing — after the WebClient's own retries gave up. A run card, a thread line or an
 * audit-channel line is worth waiting for: dropping it loses what responders and auditors rely on. Errors
 * Slack answered with (`channel_not_found`, `not_in_channel`, …) are final and thrown at once.
 */

/** The WebClient's error codes for failures that may pass (@slack/web-api ErrorCode). */
const TRANSIENT = new Set([
  'slack_webapi_request_error',
  'slack_webapi_http_error',
  'slack_webapi_rate_limited_error',
]);

/** Whether `error` is a Web API failure worth another try. */
export function isTransientSlackError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !TRANSIENT.has(code)) return false;
  // An HTTP error below 500 other than 429 is Slack refusing the request: another try changes nothing.
  const status = (error as { statusCode?: unknown }).statusCode;
  return typeof status !== 'number' || status >= 500 || status === 429;
}

export interface RetrySlackOptions {
  /** Further rounds after the first (each round is the WebClient's own attempts). */
  rounds?: number;
  /** Wait before the first further round; doubled for each one after. */
  delayMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

/** Calls `call`, and again (up to `rounds` more times, backing off) while it fails transiently. */
export async function retrySlackCall<T>(call: () => Promise<T>, options: RetrySlackOptions = {}): Promise<T> {
  const rounds = options.rounds ?? 4;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let delay = options.delayMs ?? 1_000;
  for (let round = 0; ; round++) {
    try {
      return await call();
    } catch (error) {
      if (round >= rounds || !isTransientSlackError(error)) throw error;
      await sleep(delay);
      delay *= 2;
    }
  }
}

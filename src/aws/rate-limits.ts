/**
 * Per-service request pacing with bottleneck: one limiter per service, account and region, shared by
 * every run in this process, so that a burst of runs does not push an account into throttling. The SDK's
 * own retries (standard mode) still handle the throttling that gets through.
 */
import Bottleneck from 'bottleneck';

/** Requests per second and concurrency for a service. */
export interface RateLimit {
  perSecond: number;
  maxConcurrent: number;
  /**
   * `burst` (default): up to `perSecond` requests at once, refilled every second — fine where AWS publishes
   * no hard figure. `spaced`: consecutive requests start at least 1000/perSecond ms apart (plus a small
   * margin), for APIs whose limit holds over any one-second window.
   */
  pacing?: 'burst' | 'spaced';
}

/**
 * Margin on the spacing of `spaced` limits: a request's arrival at AWS jitters by a few milliseconds
 * around its start here, so requests spaced exactly 1000/perSecond ms apart can still land three in one
 * second. 5% keeps the run at 95% of the limit.
 */
export const SPACING_MARGIN = 1.05;

// IAM and STS publish no per-second figures; these stay well below what an account sees throttled.
// CloudTrail LookupEvents is limited to 2 requests per second per account and Region
// (docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupEvents.html). A reservoir of 2
// refilled every second lets 4 requests through within a few ms across a refill boundary (2 just before,
// 2 just after), which a limit over any one-second window throttles; so CloudTrail is `spaced`: one
// request every 525 ms, never more than 2 in any second.
export const DEFAULT_RATE_LIMITS: Record<string, RateLimit> = {
  iam: { perSecond: 10, maxConcurrent: 8 },
  sts: { perSecond: 10, maxConcurrent: 8 },
  cloudtrail: { perSecond: 2, maxConcurrent: 2, pacing: 'spaced' },
  default: { perSecond: 20, maxConcurrent: 10 },
};

/** The bottleneck settings for a limit. */
export function limiterOptions(limit: RateLimit): Bottleneck.ConstructorOptions {
  if (limit.pacing === 'spaced') {
    return {
      maxConcurrent: limit.maxConcurrent,
      minTime: Math.ceil((1000 / limit.perSecond) * SPACING_MARGIN),
    };
  }
  return {
    maxConcurrent: limit.maxConcurrent,
    reservoir: limit.perSecond,
    reservoirRefreshAmount: limit.perSecond,
    reservoirRefreshInterval: 1000,
  };
}

/** Hands out one limiter per service/account/region. */
export class RateLimiters {
  readonly #limiters = new Map<string, Bottleneck>();
  readonly #limits: Record<string, RateLimit>;

  constructor(limits: Record<string, RateLimit> = DEFAULT_RATE_LIMITS) {
    this.#limits = limits;
  }

  /** The limiter for one service in one account and region. */
  for(service: string, accountId: string, region: string): Bottleneck {
    const key = `${service}:${accountId}:${region}`;
    let limiter = this.#limiters.get(key);
    if (!limiter) {
      const limit = this.#limits[service] ?? this.#limits.default ?? { perSecond: 20, maxConcurrent: 10 };
      limiter = new Bottleneck(limiterOptions(limit));
      this.#limiters.set(key, limiter);
    }
    return limiter;
  }

  /** Stops every limiter's timers (at shutdown and in tests). */
  async stop(): Promise<void> {
    await Promise.all([...this.#limiters.values()].map((l) => l.disconnect()));
    this.#limiters.clear();
  }
}

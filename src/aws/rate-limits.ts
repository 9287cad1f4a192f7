/**
 * Per-service request pacing with bottleneck: one limiter per service, account and region, shared by
 * every run in this process, so that a burst of runs does not push an account into throttling. The SDK's
 * own retries (standard mode) still handle the throttling that gets through.
 */
import Bottleneck from 'bottleneck';

/** Requests per second (burst and sustained) and concurrency for a service. */
export interface RateLimit {
  perSecond: number;
  maxConcurrent: number;
}

// IAM and STS publish no per-second figures; these stay well below what an account sees throttled.
// CloudTrail LookupEvents is documented at 2 requests per second per account and region.
export const DEFAULT_RATE_LIMITS: Record<string, RateLimit> = {
  iam: { perSecond: 10, maxConcurrent: 8 },
  sts: { perSecond: 10, maxConcurrent: 8 },
  cloudtrail: { perSecond: 2, maxConcurrent: 2 },
  default: { perSecond: 20, maxConcurrent: 10 },
};

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
      limiter = new Bottleneck({
        maxConcurrent: limit.maxConcurrent,
        reservoir: limit.perSecond,
        reservoirRefreshAmount: limit.perSecond,
        reservoirRefreshInterval: 1000,
      });
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

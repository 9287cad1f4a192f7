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
  /**
   * A token bucket, the way EC2 throttles: up to `burst` requests at once, and `perSecond` more every
   * second up to `burst` again. Without it, a `burst` limit allows `perSecond` requests per second.
   */
  burst?: number;
}

/**
 * Margin on the spacing of `spaced` limits: a request's arrival at AWS jitters by a few milliseconds
 * around its start here, so requests spaced exactly 1000/perSecond ms apart can still land three in one
 * second. 5% keeps the run at 95% of the limit.
 */
export const SPACING_MARGIN = 1.05;

// IAM and STS publish no per-second figures; these stay well below what an account sees throttled.
// The limits of one runbook's APIs (CloudTrail's for trail, EC2's per-operation buckets for isolate-vpc)
// are declared by that runbook and merged in with mergeRateLimits.
export const DEFAULT_RATE_LIMITS: Record<string, RateLimit> = {
  iam: { perSecond: 10, maxConcurrent: 8 },
  sts: { perSecond: 10, maxConcurrent: 8 },
  default: { perSecond: 20, maxConcurrent: 10 },
  // EC2 throttles per account, Region and API with token buckets
  // (docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html): non-mutating actions 100 tokens
  // refilled at 20 per second. A `service:Operation` entry gets a limiter of its own.
  ec2: { perSecond: 20, burst: 100, maxConcurrent: 25 },
};

/** The bottleneck settings for a limit. */
export function limiterOptions(limit: RateLimit): Bottleneck.ConstructorOptions {
  if (limit.burst !== undefined && limit.pacing !== 'spaced') {
    return {
      maxConcurrent: limit.maxConcurrent,
      reservoir: limit.burst,
      reservoirIncreaseAmount: limit.perSecond,
      reservoirIncreaseInterval: 1000,
      reservoirIncreaseMaximum: limit.burst,
    };
  }
  if (limit.pacing === 'spaced') {
    return {
      maxConcurrent: limit.maxConcurrent,
      minTime: Math.ceil((1000 / limit.perSecond) * SPACING_MARGIN),
    };
  }
  // A fractional rate (one replica's share, say 10/3 per second) refills a whole number of requests over
  // a longer interval (3 every 900 ms) instead of rounding the rate.
  const amount = Math.max(1, Math.floor(limit.perSecond));
  return {
    maxConcurrent: limit.maxConcurrent,
    reservoir: amount,
    reservoirRefreshAmount: amount,
    reservoirRefreshInterval: Math.round((1000 * amount) / limit.perSecond),
  };
}

/**
 * One replica's part of a limit when `replicas` replicas call the same accounts: AWS counts the
 * requests of all of them against one limit, so each paces at 1/replicas of it (rate, burst and
 * concurrency, never below one request). quell divides statically (config `replicas.count`) rather than
 * coordinating through the database: no extra round trip per AWS call, and a replica that dies only
 * leaves the others under the limit. See docs/deployment.md.
 */
export function replicaShare(limit: RateLimit, replicas: number): RateLimit {
  if (replicas <= 1) return limit;
  return {
    ...limit,
    perSecond: limit.perSecond / replicas,
    maxConcurrent: Math.max(1, Math.ceil(limit.maxConcurrent / replicas)),
    ...(limit.burst !== undefined ? { burst: Math.max(1, Math.floor(limit.burst / replicas)) } : {}),
  };
}

/** Hands out one limiter per service/account/region. */
export class RateLimiters {
  readonly #limiters = new Map<string, Bottleneck>();
  readonly #limits: Record<string, RateLimit>;
  readonly #replicas: number;

  /** `replicas`: how many replicas share each account's limits (this one paces at its share). */
  constructor(limits: Record<string, RateLimit> = DEFAULT_RATE_LIMITS, options: { replicas?: number } = {}) {
    this.#limits = limits;
    this.#replicas = options.replicas ?? 1;
  }

  /**
   * The limiter for one service in one account and region, or for one operation of it when the limits
   * name that operation (`ec2:ReplaceNetworkAclAssociation`).
   */
  for(service: string, accountId: string, region: string, operation?: string): Bottleneck {
    const own = operation ? `${service}:${operation}` : undefined;
    const name = own && this.#limits[own] ? own : service;
    const key = `${name}:${accountId}:${region}`;
    let limiter = this.#limiters.get(key);
    if (!limiter) {
      const limit = this.#limits[name] ?? this.#limits.default ?? { perSecond: 20, maxConcurrent: 10 };
      limiter = new Bottleneck(limiterOptions(replicaShare(limit, this.#replicas)));
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

/**
 * The limiter table: `defaults`, then the limits each runbook declares for the APIs it calls (keyed
 * `service` or `service:Operation`, like the defaults, and overriding them). Limiters are shared by every
 * run in the process, so a declared limit paces every caller of that API; two runbooks declaring one key
 * must declare the same limit, or the table cannot be built.
 */
export function mergeRateLimits(
  defaults: Record<string, RateLimit>,
  declarations: readonly { id: string; rateLimits?: Record<string, RateLimit> | undefined }[],
): Record<string, RateLimit> {
  const merged: Record<string, RateLimit> = { ...defaults };
  const declaredBy = new Map<string, string>();
  for (const { id, rateLimits } of declarations) {
    for (const [key, limit] of Object.entries(rateLimits ?? {})) {
      const earlier = declaredBy.get(key);
      const known = merged[key];
      if (earlier !== undefined && known && !sameLimit(known, limit)) {
        throw new Error(`rate limit ${key}: ${earlier} and ${id} declare different limits`);
      }
      merged[key] = limit;
      declaredBy.set(key, id);
    }
  }
  return merged;
}

function sameLimit(a: RateLimit, b: RateLimit): boolean {
  return (
    a.perSecond === b.perSecond &&
    a.maxConcurrent === b.maxConcurrent &&
    (a.pacing ?? 'burst') === (b.pacing ?? 'burst') &&
    a.burst === b.burst
  );
}

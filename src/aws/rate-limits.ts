/**
 * Per-service request pacing with bottleneck: one limiter per service, account and region, shared by
 * every run in this process, so that a burst of runs does not push an account into throttling. The SDK's
 * own retries (standard mode) still handle the throttling that gets through. Each limit has two lanes:
 * containment (mutating and destructive runbooks) and read-only work, which can never take all of it.
 */
import Bottleneck from 'bottleneck';

/**
 * Whose calls: a containment run (a mutating or destructive runbook, or an undo) or read-only work
 * (read-only runbooks, reminders). Read-only work can never hold the share of a limit kept for containment.
 */
export type Lane = 'containment' | 'read-only';

/**
 * The part of each limit's concurrency that read-only work can never hold (at least one request, when
 * the limit allows two or more at once).
 */
export const CONTAINMENT_RESERVE = 0.25;

/** Bottleneck priorities (0 is served first): queued containment calls go before queued read-only calls. */
const PRIORITY: Record<Lane, number> = { containment: 0, 'read-only': 5 };

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

/**
 * How many requests of a limit read-only work may have in it at once (waiting for a token or in flight):
 * the limit's concurrency less the containment reserve.
 */
export function readOnlyConcurrency(limit: RateLimit): number {
  if (limit.maxConcurrent <= 1) return 1; // nothing to reserve: containment relies on its priority alone
  const reserve = Math.max(1, Math.ceil(limit.maxConcurrent * CONTAINMENT_RESERVE));
  return limit.maxConcurrent - reserve;
}

/** Schedules calls against one limit in one lane. */
export interface LaneLimiter {
  schedule<T>(task: () => Promise<T>): Promise<T>;
}

/**
 * One AWS limit (this replica's share of it) and its two lanes. Why priority with a reserved share of the
 * concurrency, rather than splitting each limit into two fixed halves: a fixed split wastes capacity
 * whenever one lane is idle (CloudTrail's 2 requests per second would drop to 1.5 for every `trail` run
 * even when nothing is being contained), and AWS counts both lanes against one limit anyway. So both
 * lanes draw from the same limiter; read-only calls first pass a gate that lets at most
 * `readOnlyConcurrency` of them into it at once (queued or in flight), so that however many read-only
 * calls are waiting or hung, containment always finds a slot; and a containment call is queued ahead of
 * every read-only call, so it takes the next token of the rate. Read-only work alone still gets the
 * whole rate, and containment alone the whole limit.
 */
class LimitLanes {
  readonly #limit: Bottleneck;
  readonly #readOnlyGate: Bottleneck;
  #pending = 0;
  readonly containment: LaneLimiter;
  readonly readOnly: LaneLimiter;

  constructor(limit: RateLimit) {
    this.#limit = new Bottleneck(limiterOptions(limit));
    this.#readOnlyGate = new Bottleneck({ maxConcurrent: readOnlyConcurrency(limit) });
    this.containment = {
      schedule: (task) => this.#count(this.#limit.schedule({ priority: PRIORITY.containment }, task)),
    };
    this.readOnly = {
      schedule: (task) =>
        this.#count(
          this.#readOnlyGate.schedule(() => this.#limit.schedule({ priority: PRIORITY['read-only'] }, task)),
        ),
    };
  }

  /** Requests of either lane waiting for, or holding, a slot of this limit. */
  get pending(): number {
    return this.#pending;
  }

  #count<T>(work: Promise<T>): Promise<T> {
    this.#pending++;
    const done = () => {
      this.#pending--;
    };
    work.then(done, done);
    return work;
  }

  async stop(): Promise<void> {
    await Promise.all([this.#readOnlyGate.disconnect(), this.#limit.disconnect()]);
  }
}

/** Hands out one limiter per service/account/region, in two lanes. */
export class RateLimiters {
  readonly #limits: Record<string, RateLimit>;
  readonly #replicas: number;
  readonly #lanes = new Map<string, LimitLanes>();

  /** `replicas`: how many replicas share each account's limits (this one paces at its share). */
  constructor(limits: Record<string, RateLimit> = DEFAULT_RATE_LIMITS, options: { replicas?: number } = {}) {
    this.#limits = limits;
    this.#replicas = options.replicas ?? 1;
  }

  /**
   * The limiter for one service in one account and region, or for one operation of it when the limits
   * name that operation (`ec2:ReplaceNetworkAclAssociation`), in one lane (default: containment, which
   * may use the whole limit).
   */
  for(
    service: string,
    accountId: string,
    region: string,
    operation?: string,
    lane: Lane = 'containment',
  ): LaneLimiter {
    const lanes = this.#lanesOf(service, accountId, region, operation);
    return lane === 'containment' ? lanes.containment : lanes.readOnly;
  }

  /** Requests of either lane waiting for, or holding, a slot of one limit (for tests and metrics). */
  pending(service: string, accountId: string, region: string, operation?: string): number {
    return this.#lanesOf(service, accountId, region, operation).pending;
  }

  #lanesOf(service: string, accountId: string, region: string, operation?: string): LimitLanes {
    const own = operation ? `${service}:${operation}` : undefined;
    const name = own && this.#limits[own] ? own : service;
    const key = `${name}:${accountId}:${region}`;
    let lanes = this.#lanes.get(key);
    if (!lanes) {
      const limit = this.#limits[name] ?? this.#limits.default ?? { perSecond: 20, maxConcurrent: 10 };
      lanes = new LimitLanes(replicaShare(limit, this.#replicas));
      this.#lanes.set(key, lanes);
    }
    return lanes;
  }

  /** Stops every limiter's timers (at shutdown and in tests). */
  async stop(): Promise<void> {
    await Promise.all([...this.#lanes.values()].map((l) => l.stop()));
    this.#lanes.clear();
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

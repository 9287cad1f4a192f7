/**
 * Typed SDK clients scoped to one run: one client per account, role and region (and service), with
 * credentials from the run's assumed-role session, bottleneck pacing on every attempt, and a middleware
 * that reports each call (intent first, for mutating calls) and turns errors into quell errors.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { AccountConfig } from '../config.ts';
import { operationName, servicePrefix, toAwsError } from './aws-errors.ts';
import { type AwsCallRecorder, isMutatingOperation } from './call-recorder.ts';
import type { TemporaryCredentials } from './credentials.ts';
import type { Lane, RateLimiters } from './rate-limits.ts';
import type { AwsSessions, RoleTier, SessionRequest } from './sessions.ts';

/** The configuration quell gives every client. */
/** Options of the SDK's Node HTTP handler that quell sets (shared agents, timeouts). */
export interface SharedRequestHandlerOptions {
  httpsAgent: HttpsAgent;
  httpAgent: HttpAgent;
  connectionTimeout: number;
  requestTimeout: number;
}

export interface ScopedClientConfig {
  region: string;
  credentials: () => Promise<TemporaryCredentials>;
  maxAttempts: number;
  requestHandler: SharedRequestHandlerOptions;
}

/** The minimal shape of an SDK v3 client that quell relies on. */
export interface SdkClient {
  middlewareStack: object;
  destroy(): void;
}

/** The part of the SDK's middleware stack quell uses (its real types are generic per client). */
interface MiddlewareStackAdd {
  add(middleware: unknown, options: { step: string; name: string; priority?: string }): void;
}

/** A constructor of an SDK client class, like `IAMClient`. */
export type SdkClientClass<C extends SdkClient> = new (config: ScopedClientConfig) => C;

/** The AWS access of one run in one account with one role. */
export interface ScopedAws {
  readonly accountId: string;
  readonly accountAlias: string;
  readonly tier: RoleTier;
  readonly roleArn: string;
  readonly defaultRegion: string;
  /** The client of `Client` for `region` (default: the scope's region), created once. */
  client<C extends SdkClient>(Client: SdkClientClass<C>, region?: string): C;
  /** Forgets every client of the scope (the connections they used stay with the factory, shared). */
  dispose(): void;
}

/** Creates run-scoped clients. */
export class AwsClientFactory {
  readonly #sessions: AwsSessions;
  readonly #limiters: RateLimiters;
  readonly #recorder: AwsCallRecorder;
  readonly #maxAttempts: number;
  readonly #requestHandler: SharedRequestHandlerOptions;

  constructor(options: {
    sessions: AwsSessions;
    limiters: RateLimiters;
    recorder: AwsCallRecorder;
    maxAttempts?: number;
  }) {
    this.#sessions = options.sessions;
    this.#limiters = options.limiters;
    this.#recorder = options.recorder;
    this.#maxAttempts = options.maxAttempts ?? 5;
    // One keep-alive agent pair for every client of every run: the approving click's calls reuse warm
    // connections (and their TLS sessions) instead of opening new ones.
    this.#requestHandler = {
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: 64 }),
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets: 64 }),
      connectionTimeout: 5_000,
      requestTimeout: 30_000,
    };
  }

  /** Starts assuming the session now, so that a later call does not wait for STS. */
  prewarm(request: SessionRequest): Promise<void> {
    return this.#sessions.credentials(request).then(() => undefined);
  }

  /** Forgets the sessions of a finished run. */
  release(runId: string): void {
    this.#sessions.release(runId);
  }

  /**
   * The scope for one run, account and role tier. `lane`: whose share of each AWS limit its calls use
   * (a containment run's, or read-only work's, the default).
   */
  scope(request: SessionRequest & { account: AccountConfig; region: string; lane?: Lane }): ScopedAws {
    const clients = new Map<string, SdkClient>();
    const roleArn = this.#sessions.roleArn(request);
    const provider = this.#sessions.provider(request);
    const factory = this;
    return {
      accountId: request.account.id,
      accountAlias: request.account.alias,
      tier: request.tier,
      roleArn,
      defaultRegion: request.region,
      client<C extends SdkClient>(Client: SdkClientClass<C>, region = request.region): C {
        const key = `${Client.name}|${region}`;
        const existing = clients.get(key);
        if (existing) return existing as C;
        const client = new Client({
          region,
          credentials: provider,
          maxAttempts: factory.#maxAttempts,
          requestHandler: factory.#requestHandler,
        });
        factory.#instrument(client, Client.name, {
          runId: request.runId,
          accountId: request.account.id,
          region,
          roleArn,
          lane: request.lane ?? 'read-only',
        });
        clients.set(key, client);
        return client;
      },
      dispose() {
        // Dropped, not destroyed: an SDK client's destroy() destroys the agents its request handler was
        // given even when they are not its own (@smithy/node-http-handler's NodeHttpHandler.destroy), and
        // these are the factory's agents, shared by every run. Destroying them cut every other run's
        // request in flight (ECONNRESET); under a burst, plans failed after five cut attempts.
        clients.clear();
      },
    };
  }

  #instrument(
    client: SdkClient,
    clientName: string,
    meta: { runId: string; accountId: string; region: string; roleArn: string; lane: Lane },
  ) {
    const service = servicePrefix(clientName);
    const limiters = this.#limiters;
    const recorder = this.#recorder;
    const stack = client.middlewareStack as MiddlewareStackAdd;

    // Outermost (initialize): report the intent before anything is sent, and the outcome after the SDK's
    // retries have finished; map the error once.
    stack.add(
      (
        next: (args: { input: Record<string, unknown> }) => Promise<{ output: { $metadata?: Metadata } }>,
        context: { commandName?: string },
      ) =>
        async (args: { input: Record<string, unknown> }) => {
          const operation = operationName(context.commandName ?? 'Unknown');
          const mutating = isMutatingOperation(operation);
          const call = {
            runId: meta.runId,
            service,
            operation,
            accountId: meta.accountId,
            region: meta.region,
            roleArn: meta.roleArn,
            mutating,
          };
          if (mutating) await recorder.intent({ ...call, params: args.input });
          const started = performance.now();
          try {
            const result = await next(args);
            const m = result.output.$metadata;
            await recorder.done({
              ...call,
              outcome: 'ok',
              requestId: m?.requestId,
              httpStatus: m?.httpStatusCode,
              attempts: m?.attempts,
              durationMs: Math.round(performance.now() - started),
            });
            return result;
          } catch (error) {
            const m = (error as { $metadata?: Metadata }).$metadata;
            await recorder
              .done({
                ...call,
                outcome: 'error',
                errorCode: (error as Error)?.name ?? 'Error',
                requestId: m?.requestId,
                httpStatus: m?.httpStatusCode,
                attempts: m?.attempts,
                durationMs: Math.round(performance.now() - started),
              })
              .catch(() => undefined);
            throw toAwsError(error, `${service}:${operation}`, meta.roleArn);
          }
        },
      { step: 'initialize', name: 'quellCallRecorder', priority: 'high' },
    );

    // Innermost of finalizeRequest (the SDK's retry middleware is `high` in the same step), so each
    // attempt, including retries, takes a slot from the limiter, in the run's lane of it.
    stack.add(
      (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => {
        // Per call: an operation with a limit of its own (EC2 throttles each API separately) has its own limiter.
        const limiter = limiters.for(
          service,
          meta.accountId,
          meta.region,
          operationName(context.commandName ?? ''),
          meta.lane,
        );
        return (args: unknown) => limiter.schedule(() => next(args));
      },
      { step: 'finalizeRequest', name: 'quellRateLimit', priority: 'low' },
    );
  }
}

interface Metadata {
  requestId?: string;
  httpStatusCode?: number;
  attempts?: number;
}

/**
 * Short-lived sessions: STS AssumeRole into an account's read or respond role, one session per run and
 * role, carrying the requester's identity (`RoleSessionName` quell-<run-id>, `SourceIdentity`, session
 * tags). Sessions are cached until shortly before they expire, so the respond session can be assumed
 * while the approval card waits and the approving click costs no STS round trip. Modelled on the SDK's
 * `fromTemporaryCredentials`: one cached STS client, the source of each setting logged, never the value.
 */
import { createHash } from 'node:crypto';
import type { STSClient } from '@aws-sdk/client-sts';
import type { AccountConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import { toAwsError } from './aws-errors.ts';
import type { AwsCallRecorder } from './call-recorder.ts';
import type { TemporaryCredentials } from './credentials.ts';

/** The read role (plans, read-only runbooks) or the respond role (changes). */
export type RoleTier = 'read' | 'respond';

/** Who a session is for. */
export interface SessionRequest {
  account: Pick<AccountConfig, 'alias' | 'id' | 'roles'>;
  tier: RoleTier;
  runId: string;
  runbook: string;
  /** The requesting person (Slack user id, or the operator for the CLI). */
  sourceIdentity: string;
  /**
   * The session policy (build-session-policy.ts): what this run may do with the role, at most. A session
   * with another policy is another session.
   */
  policy?: string | undefined;
}

/** Settings shared by every session. */
export interface SessionSettings {
  region: string;
  sessionSeconds: number;
  externalId?: string | undefined;
  /** Refresh this long before expiry (default 120 s). */
  refreshMarginMs?: number;
}

interface CachedSession {
  credentials: Promise<TemporaryCredentials>;
  expiresAt: number;
}

/** Makes a value safe for `SourceIdentity` / tag values: [\w+=,.@-], 2–64 characters. */
export function toSourceIdentity(identity: string): string {
  const cleaned = identity.replace(/[^\w+=,.@-]/g, '_').slice(0, 64);
  return cleaned.length >= 2 ? cleaned : `${cleaned}__`.slice(0, 2);
}

/** Assumes and caches per-run role sessions. */
export class AwsSessions {
  /** The STS client, created (and its SDK loaded) by the first call: an idle bot never loads it. */
  #sts: STSClient | undefined;
  readonly #settings: Required<Omit<SessionSettings, 'externalId'>> & { externalId?: string | undefined };
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #cache = new Map<string, CachedSession>();
  /** How many AssumeRole calls were made (for tests and the benchmark). */
  assumeCount = 0;

  readonly #recorder: AwsCallRecorder | undefined;

  constructor(
    settings: SessionSettings,
    log: Logger,
    options: { now?: () => number; recorder?: AwsCallRecorder } = {},
  ) {
    this.#settings = { refreshMarginMs: 120_000, ...settings };
    this.#log = log;
    this.#now = options.now ?? Date.now;
    this.#recorder = options.recorder;
    log.debug(
      {
        region: settings.region,
        sessionSeconds: settings.sessionSeconds,
        externalId: settings.externalId ? 'set' : 'unset',
      },
      'aws sessions configured',
    );
  }

  /** The STS SDK and the client, loaded on first use (docs/benchmarks.md, memory). */
  async #loadSts(): Promise<{ sts: STSClient; sdk: typeof import('@aws-sdk/client-sts') }> {
    const sdk = await import('@aws-sdk/client-sts');
    // The base credentials come from the SDK's default chain; AWS_ENDPOINT_URL is honoured by the SDK.
    this.#sts ??= new sdk.STSClient({ region: this.#settings.region, maxAttempts: 5 });
    return { sts: this.#sts, sdk };
  }

  /** The role ARN a request assumes. */
  roleArn(request: SessionRequest): string {
    return request.account.roles[request.tier];
  }

  /** Credentials for the request, assuming the role if no fresh cached session exists. */
  credentials(request: SessionRequest): Promise<TemporaryCredentials> {
    const policy = request.policy ? createHash('sha256').update(request.policy).digest('hex') : '';
    const key = `${request.runId}|${request.account.id}|${request.tier}|${request.sourceIdentity}|${policy}`;
    const cached = this.#cache.get(key);
    if (cached && cached.expiresAt - this.#settings.refreshMarginMs > this.#now()) return cached.credentials;
    const credentials = this.#assume(request);
    const entry: CachedSession = {
      credentials,
      expiresAt: this.#now() + this.#settings.sessionSeconds * 1000,
    };
    this.#cache.set(key, entry);
    credentials.then(
      (c) => {
        if (c.expiration) entry.expiresAt = c.expiration.getTime();
      },
      () => this.#cache.delete(key),
    );
    return credentials;
  }

  /** A credential provider for SDK clients: resolves (and refreshes) the cached session on each call. */
  provider(request: SessionRequest): () => Promise<TemporaryCredentials> {
    return () => this.credentials(request);
  }

  /** Forgets every session of a run (when it has finished). */
  release(runId: string): void {
    for (const key of this.#cache.keys()) if (key.startsWith(`${runId}|`)) this.#cache.delete(key);
  }

  /**
   * The ARN of the base credentials' identity (STS GetCallerIdentity, which needs no permission): the
   * break-glass CLI's proof of who its operator is. Errors become AWS errors naming the call.
   */
  async callerIdentity(): Promise<string> {
    try {
      const { sts, sdk } = await this.#loadSts();
      const out = await sts.send(new sdk.GetCallerIdentityCommand({}));
      if (!out.Arn) throw new Error('GetCallerIdentity returned no ARN');
      return out.Arn;
    } catch (error) {
      throw toAwsError(error, 'sts:GetCallerIdentity', undefined);
    }
  }

  /** Stops the STS client. */
  destroy(): void {
    this.#cache.clear();
    this.#sts?.destroy();
  }

  async #assume(request: SessionRequest): Promise<TemporaryCredentials> {
    const roleArn = this.roleArn(request);
    const sourceIdentity = toSourceIdentity(request.sourceIdentity);
    this.assumeCount++;
    const started = performance.now();
    const call = {
      runId: request.runId,
      service: 'sts',
      operation: 'AssumeRole',
      accountId: request.account.id,
      region: this.#settings.region,
      roleArn,
      mutating: false,
    };
    try {
      const { sts, sdk } = await this.#loadSts();
      const out = await sts.send(
        new sdk.AssumeRoleCommand({
          RoleArn: roleArn,
          RoleSessionName: `quell-${request.runId}`.slice(0, 64),
          DurationSeconds: this.#settings.sessionSeconds,
          SourceIdentity: sourceIdentity,
          ExternalId: this.#settings.externalId,
          Policy: request.policy,
          Tags: [
            { Key: 'quell-run-id', Value: request.runId },
            { Key: 'quell-runbook', Value: request.runbook },
            { Key: 'quell-requester', Value: sourceIdentity },
          ],
        }),
      );
      const c = out.Credentials;
      if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken) {
        throw new Error('AssumeRole returned no credentials');
      }
      this.#log.info(
        {
          runId: request.runId,
          roleArn,
          tier: request.tier,
          expiresAt: c.Expiration?.toISOString(),
          sessionPolicyChars: request.policy?.length ?? 0,
        },
        'assumed role session',
      );
      await this.#recorder?.done({
        ...call,
        outcome: 'ok',
        requestId: out.$metadata.requestId,
        httpStatus: out.$metadata.httpStatusCode,
        attempts: out.$metadata.attempts,
        durationMs: Math.round(performance.now() - started),
      });
      return {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        sessionToken: c.SessionToken,
        expiration: c.Expiration,
        accountId: request.account.id,
      };
    } catch (error) {
      const meta = (error as { $metadata?: { requestId?: string; httpStatusCode?: number } }).$metadata;
      await this.#recorder
        ?.done({
          ...call,
          outcome: 'error',
          errorCode: (error as Error).name,
          requestId: meta?.requestId,
          httpStatus: meta?.httpStatusCode,
          durationMs: Math.round(performance.now() - started),
        })
        .catch(() => undefined);
      throw toAwsError(error, 'sts:AssumeRole', roleArn);
    }
  }
}

/**
 * Findings from the queue into the channel. One loop per replica long-polls the queue; for each message:
 * poison (unreadable, unknown shape) → the dead-letter queue, an audit entry (mirrored to the audit
 * channel), then deleted; each finding below `minSeverity` or closed → acknowledged; each other finding →
 * claimed in the store by its id (so replicas and repeated deliveries post it once), its card posted,
 * recorded, audited. A message is deleted only when every finding in it has its card: a card that could
 * not be posted gives its claim back, and the message comes back after the visibility timeout.
 */
import { createHash } from 'node:crypto';
import type { AuditLog } from '../audit/audit-log.ts';
import type { FindingsConfig } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Json, Store } from '../store/store.ts';
import { parseFindingMessage, type ReadFinding } from './parse-finding-message.ts';
import { atLeast, findingRef, type SecurityFinding, sourceLabel } from './security-finding.ts';
import type { FindingsQueue, QueueMessage } from './sqs-findings-queue.ts';

/** A finding on its way to its card. */
export interface FindingToPost {
  ref: string;
  channel: string;
  finding: SecurityFinding;
}

/** Posts a finding's card; resolves with the message's ts, rejects when Slack did not take it. */
export type PostFindingCard = (finding: FindingToPost) => Promise<string>;

/** What the poller needs. */
export interface FindingPollerDeps {
  config: FindingsConfig;
  queue: FindingsQueue;
  store: Store;
  audit: AuditLog;
  log: Logger;
  post: PostFindingCard;
  /** This replica's id: the owner of its claims. */
  owner: string;
  now?: () => number;
}

/** What one message came to (for tests and the log). */
export type MessageOutcome = 'deleted' | 'kept' | 'poison';

const MAX_BACKOFF_MS = 60_000;

/** The loop that turns queue messages into finding cards. */
export class FindingPoller {
  readonly #d: FindingPollerDeps;
  readonly #now: () => number;
  #abort = new AbortController();
  #loop: Promise<void> | undefined;
  #stopped = false;

  constructor(deps: FindingPollerDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
  }

  /** Starts polling in the background (once); `stop` ends it. */
  start(): void {
    if (this.#loop || this.#stopped) return;
    this.#loop = this.#run();
  }

  /** Ends the loop: an open long poll is aborted, a message being handled is finished first. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    await this.#loop;
    this.#d.queue.destroy();
  }

  async #run(): Promise<void> {
    await this.#checkRedrive();
    let failures = 0;
    while (!this.#stopped) {
      try {
        await this.pollOnce(this.#abort.signal);
        failures = 0;
      } catch (err) {
        if (this.#stopped) break;
        failures++;
        const waitMs = Math.min(MAX_BACKOFF_MS, 1_000 * 2 ** (failures - 1));
        this.#d.log.warn(
          { err, queue: this.#d.config.queueUrl, retryInMs: waitMs },
          'could not receive findings from the queue; check the bot role has sqs:ReceiveMessage on it',
        );
        await sleep(waitMs, this.#abort.signal);
      }
    }
  }

  /** Receives one batch (waiting at most `pollSeconds`) and handles each message in turn. */
  async pollOnce(signal: AbortSignal): Promise<MessageOutcome[]> {
    const messages = await this.#d.queue.receive(signal);
    const outcomes: MessageOutcome[] = [];
    for (const message of messages) {
      // A message not handled before stop comes back after its visibility timeout.
      if (this.#stopped) break;
      outcomes.push(await this.handle(message));
    }
    return outcomes;
  }

  /** Handles one message; never throws (a failure keeps the message for its next delivery). */
  async handle(message: QueueMessage): Promise<MessageOutcome> {
    try {
      const parsed = parseFindingMessage(message.body);
      if (!parsed.ok) return await this.#poison(message, parsed.reason);
      let complete = true;
      for (const finding of parsed.findings) {
        if (!(await this.#postOnce(finding, message))) complete = false;
      }
      if (!complete) return 'kept';
      await this.#d.queue.delete(message);
      return 'deleted';
    } catch (err) {
      this.#d.log.warn(
        { err, messageId: message.id },
        'a findings message could not be handled; it comes back after its visibility timeout',
      );
      return 'kept';
    }
  }

  /** Posts the finding's card unless it has one (or needs none); true when nothing is left to do. */
  async #postOnce(read: ReadFinding, message: QueueMessage): Promise<boolean> {
    const { archived, ...finding } = read;
    const { config, store, log, owner } = this.#d;
    if (archived || !atLeast(finding.severity, config.minSeverity)) {
      log.debug(
        { findingId: finding.id, severity: finding.severity, archived, minSeverity: config.minSeverity },
        'finding not posted: closed, or below findings.minSeverity',
      );
      return true;
    }
    const ref = findingRef(finding.id);
    const claim = await store.claimFinding(
      { id: finding.id, ref, finding: finding as unknown as Json, channel: config.channel },
      owner,
      this.#now(),
      config.visibilitySeconds * 1_000,
    );
    if (claim === 'posted') {
      log.debug({ findingId: finding.id, ref }, 'finding already has its card');
      return true;
    }
    if (claim === 'held') return false; // another replica is posting it right now
    let ts: string;
    try {
      ts = await this.#d.post({ ref, channel: config.channel, finding });
    } catch (err) {
      log.warn(
        { err, findingId: finding.id, ref, messageId: message.id },
        'could not post a finding card; the message comes back after its visibility timeout',
      );
      await store
        .releaseFinding(finding.id, owner)
        .catch((releaseErr: unknown) =>
          log.warn({ err: releaseErr, ref }, 'could not release a finding claim'),
        );
      return false;
    }
    if (!(await store.markFindingPosted(finding.id, owner, ts, this.#now()))) {
      log.warn({ findingId: finding.id, ref }, 'a finding card was posted after this replica lost its claim');
    }
    await this.#d.audit.record({
      type: 'finding.posted',
      data: {
        summary: `${sourceLabel(finding.source)} ${finding.severity} finding ${finding.type} in ${finding.accountId}`,
        ref,
        findingId: finding.id,
        source: finding.source,
        type: finding.type,
        severity: finding.severity,
        accountId: finding.accountId,
        region: finding.region,
        targets: finding.targets.length,
        channel: config.channel,
        messageTs: ts,
      },
    });
    return true;
  }

  /**
   * A message quell cannot read will never become readable: with a dead-letter queue it is moved there
   * (sent, audited, then deleted); without one it is audited on its first delivery and left on the queue
   * for the queue's own redrive policy.
   */
  async #poison(message: QueueMessage, reason: string): Promise<MessageOutcome> {
    const { config, audit, queue, log } = this.#d;
    const data = {
      reason: `unreadable findings message: ${reason}`,
      messageId: message.id,
      bytes: Buffer.byteLength(message.body),
      sha256: createHash('sha256').update(message.body).digest('hex'),
      receiveCount: message.receiveCount,
      deadLetterQueue: config.dlqUrl ?? null,
    };
    if (config.dlqUrl) {
      await queue.deadLetter(message, reason);
      await audit.record({ type: 'finding.poisoned', data });
      await queue.delete(message);
    } else {
      log.error({ ...data }, 'unreadable findings message left on the queue for its redrive policy');
      if (message.receiveCount <= 1) await audit.record({ type: 'finding.poisoned', data });
    }
    return 'poison';
  }

  /** Without a dead-letter queue of its own, the queue's redrive policy is the only way poison leaves. */
  async #checkRedrive(): Promise<void> {
    const { config, queue, log } = this.#d;
    try {
      const redrive = await queue.redrivePolicy();
      if (!config.dlqUrl && !redrive)
        log.warn(
          { queue: config.queueUrl },
          'the findings queue has no redrive policy and findings.dlqUrl is not set: an unreadable message would stay on the queue. Set findings.dlqUrl or give the queue a redrive policy (docs/findings.md)',
        );
    } catch (err) {
      log.warn(
        { err, queue: config.queueUrl },
        'could not read the findings queue attributes; check the bot role has sqs:GetQueueAttributes on it',
      );
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

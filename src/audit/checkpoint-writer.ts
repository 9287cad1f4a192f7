/**
 * Writes a signed checkpoint of the newest audit entry this process has committed, every `everyEntries`
 * entries or every `everyMs` (whichever comes first), to a store outside the database. It works beside
 * the run, never in its way: entries are observed through an audit sink, writes happen in the background,
 * and a failed write is logged, announced to the listeners (the audit channel) and retried with backoff.
 * Several replicas each anchor the entries they commit; any anchored entry anchors every entry before it.
 */
import type { Logger } from '../logger.ts';
import type { AuditRecord } from '../store/store.ts';
import type { AuditSink } from './audit-log.ts';
import {
  type CheckpointDocument,
  type CheckpointSigner,
  type CheckpointStore,
  signCheckpoint,
} from './checkpoint.ts';

/** What the writer tells its listeners. */
export type CheckpointEvent =
  | { kind: 'written'; document: CheckpointDocument; location: string; key: string; versionId: string | null }
  | {
      kind: 'failed';
      seq: number;
      lastAnchoredSeq: number;
      error: string;
      attempt: number;
      retryInMs: number;
    };

/** Settings of the writer. */
export interface CheckpointWriterOptions {
  chainId: string;
  signer: CheckpointSigner;
  store: CheckpointStore;
  everyEntries?: number | undefined;
  everyMs?: number | undefined;
  log: Logger;
  now?: () => number;
  /** First retry delay after a failure (doubles up to `maxRetryMs`). */
  retryMs?: number;
  maxRetryMs?: number;
}

/** How anchoring stands, for logs and tests. */
export interface CheckpointStatus {
  written: number;
  failed: number;
  lastAnchored: { seq: number; hash: string; at: number } | null;
  /** Entries seen by this process and not anchored yet. */
  pending: number;
}

/** The name of an error for messages: the AWS error code, never its message (which can quote inputs). */
function errorName(error: unknown): string {
  if (error instanceof Error) return error.name === 'Error' ? 'Error' : error.name;
  return 'Error';
}

/** Anchors the chain as this process extends it. */
export class CheckpointWriter {
  readonly #options: CheckpointWriterOptions;
  readonly #now: () => number;
  readonly #listeners: ((event: CheckpointEvent) => void)[] = [];
  #head: AuditRecord | undefined;
  #anchoredSeq = 0;
  #lastAnchored: CheckpointStatus['lastAnchored'] = null;
  #written = 0;
  #failed = 0;
  #attempt = 0;
  #inFlight: Promise<void> | undefined;
  #again = false;
  #timer: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #stopped = false;
  #closing = false;

  constructor(options: CheckpointWriterOptions) {
    if (options.everyEntries === undefined && options.everyMs === undefined)
      throw new Error('a checkpoint writer needs everyEntries, everyMs or both');
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** The audit sink to add to the audit log: observes each committed entry and returns at once. */
  readonly sink: AuditSink = (record) => {
    if (!this.#head || record.seq > this.#head.seq) this.#head = record;
    const every = this.#options.everyEntries;
    if (every !== undefined && this.#head.seq - this.#anchoredSeq >= every && this.#attempt === 0)
      this.#kick();
  };

  /** Hears every written checkpoint and every failure. */
  addListener(listener: (event: CheckpointEvent) => void): void {
    this.#listeners.push(listener);
  }

  /** Starts the time trigger. */
  start(): void {
    if (this.#options.everyMs === undefined || this.#timer) return;
    this.#timer = setInterval(() => {
      if (this.#head && this.#head.seq > this.#anchoredSeq && this.#attempt === 0) this.#kick();
    }, this.#options.everyMs);
    this.#timer.unref();
  }

  /** Writes a checkpoint of the newest entry now if it is not anchored yet; resolves when written or failed. */
  async flush(): Promise<void> {
    this.#kick();
    while (this.#inFlight) await this.#inFlight;
  }

  /** Stops the timers and makes one last attempt to anchor what this process wrote. */
  async stop(): Promise<void> {
    this.#closing = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#retry) clearTimeout(this.#retry);
    this.#timer = undefined;
    this.#retry = undefined;
    await this.flush();
    this.#stopped = true;
  }

  status(): CheckpointStatus {
    return {
      written: this.#written,
      failed: this.#failed,
      lastAnchored: this.#lastAnchored,
      pending: this.#head ? this.#head.seq - this.#anchoredSeq : 0,
    };
  }

  #kick(): void {
    if (this.#stopped) return;
    if (this.#inFlight) {
      this.#again = true;
      return;
    }
    const head = this.#head;
    if (!head || head.seq <= this.#anchoredSeq) return;
    this.#inFlight = this.#write(head).finally(() => {
      this.#inFlight = undefined;
      if (this.#again && this.#attempt === 0) this.#kick();
      this.#again = false;
    });
  }

  async #write(head: AuditRecord): Promise<void> {
    const { chainId, signer, store, log } = this.#options;
    try {
      const document = await signCheckpoint(
        { chainId, seq: head.seq, hash: head.hash, at: this.#now() },
        signer,
      );
      const { key, versionId } = await store.put(document);
      this.#anchoredSeq = Math.max(this.#anchoredSeq, head.seq);
      this.#lastAnchored = { seq: head.seq, hash: head.hash, at: document.at };
      this.#written++;
      this.#attempt = 0;
      log.info(
        { checkpoint: { seq: head.seq, hash: head.hash, key, versionId } },
        'audit checkpoint written',
      );
      this.#emit({ kind: 'written', document, location: store.location, key, versionId });
    } catch (error) {
      this.#failed++;
      this.#attempt++;
      const retryMs = this.#options.retryMs ?? 5_000;
      const retryInMs = Math.min(retryMs * 2 ** (this.#attempt - 1), this.#options.maxRetryMs ?? 300_000);
      log.error(
        {
          err: error,
          checkpoint: {
            seq: head.seq,
            attempt: this.#attempt,
            retryInMs,
            lastAnchoredSeq: this.#anchoredSeq,
          },
        },
        'audit checkpoint failed: entries after the last checkpoint are not anchored outside the database',
      );
      this.#emit({
        kind: 'failed',
        seq: head.seq,
        lastAnchoredSeq: this.#anchoredSeq,
        error: errorName(error),
        attempt: this.#attempt,
        retryInMs,
      });
      // While writes fail, only the retry timer (and an explicit flush) tries again: no hammering.
      if (!this.#closing && this.#retry === undefined) {
        this.#retry = setTimeout(() => {
          this.#retry = undefined;
          this.#kick();
        }, retryInMs);
        this.#retry.unref();
      }
    }
  }

  #emit(event: CheckpointEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch (err) {
        this.#options.log.warn({ err }, 'a checkpoint listener failed');
      }
    }
  }
}

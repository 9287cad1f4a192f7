/**
 * quell as production builds it (createQuell, HTTP mode, SQLite in a temporary directory) for the proof,
 * like tests/support/test-quell.ts but with the Slack Web API base URL chosen by the caller (a fault proxy
 * in front of the fake Slack) and every log line kept for the canary scan.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createQuell, type Quell } from '../../src/app.ts';
import { ConfigSchema } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { buttonClick, postSigned, SIGNING_SECRET, slashCommand } from '../../tests/support/slack-requests.ts';
import { BOT_TOKEN, INCIDENT } from '../../tests/support/test-quell.ts';

export interface ProofQuell {
  quell: Quell;
  baseUrl: string;
  logLines: string[];
  command(text: string, user: string): ReturnType<typeof postSigned>;
  click(actionId: string, runId: string, user: string): ReturnType<typeof postSigned>;
  close(): Promise<void>;
}

/** Starts quell with `overrides` merged into a config like the tests' (approvers U0LEAD1–3, C0INCIDENT open). */
export async function startProofQuell(
  overrides: Record<string, unknown> & { accounts: unknown[] },
  slackApiUrl: string,
): Promise<ProofQuell> {
  const dir = mkdtempSync(join(tmpdir(), 'quell-proof-'));
  const config = ConfigSchema.parse({
    slack: { mode: 'http', auditChannel: 'C0AUDIT' },
    approvals: { approvers: ['U0LEAD1', 'U0LEAD2', 'U0LEAD3'], expiresIn: '15m' },
    channels: { [INCIDENT]: { runbooks: ['*'], accounts: ['*'] } },
    storage: { url: `sqlite:${join(dir, 'quell.db')}` },
    ...overrides,
  });
  const logLines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(chunk.toString());
      cb();
    },
  });
  const quell = await createQuell({
    config,
    secrets: { botToken: BOT_TOKEN, signingSecret: SIGNING_SECRET },
    log: createLogger({ level: 'debug', destination }),
    slackApiUrl,
    port: 0,
    host: '127.0.0.1',
  });
  const { port } = await quell.start();
  const baseUrl = `http://127.0.0.1:${port}`;
  return {
    quell,
    baseUrl,
    logLines,
    command: (text, user) => postSigned(baseUrl, slashCommand({ text, user, channel: INCIDENT })),
    click: (actionId, runId, user) =>
      postSigned(baseUrl, buttonClick({ actionId, value: runId, user, channel: INCIDENT })),
    async close() {
      await quell.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * `quell case <run-id | thread-ts> [--channel C…] [--db URL] [--out DIR]`: the same case file the bot
 * attaches to a thread (Markdown timeline + JSON), written next to the operator and, when `evidence` is
 * configured, kept in the evidence bucket. Whoever can read the database can read every case, so no
 * channel guardrail applies; the export is recorded in the audit chain like the bot's.
 */
import { writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AuditLog } from '../audit/audit-log.ts';
import { createEvidenceBucket, type StoredEvidence } from '../audit/evidence-bucket.ts';
import type { Config } from '../config.ts';
import { QuellError } from '../errors.ts';
import { createLogger } from '../logger.ts';
import { openExistingStore } from '../open-store.ts';
import { buildCaseFiles, collectCase, describeFile } from '../runbooks/engine/case-file.ts';
import { terminalSafe } from './format-run-text.ts';
import type { TerminalIo } from './terminal-notifier.ts';

export const CASE_USAGE = 'usage: quell case <run-id | thread-ts --channel C…> [--db URL] [--out DIR]\n';

/** Runs `quell case`; resolves to the exit code. */
export async function exportCaseFile(
  args: string[],
  config: Config | undefined,
  io: TerminalIo,
  now: () => number = Date.now,
): Promise<number> {
  let values: { channel?: string | undefined; db?: string | undefined; out?: string | undefined };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      options: { channel: { type: 'string' }, db: { type: 'string' }, out: { type: 'string' } },
      allowPositionals: true,
      strict: true,
    }));
  } catch (error) {
    io.err(`${(error as Error).message}\n${CASE_USAGE}`);
    return 2;
  }
  const [reference, ...extra] = positionals;
  if (!reference || extra.length > 0) {
    io.err(`quell: give one run id (or a thread ts with --channel)\n${CASE_USAGE}`);
    return 2;
  }
  const url = values.db ?? config?.storage.url;
  if (!url) {
    io.err(`quell: no configuration to find the store in; give --db\n${CASE_USAGE}`);
    return 2;
  }
  const store = await openExistingStore(url);
  try {
    const records = await collectCase(store, reference, values.channel ?? null);
    const generatedBy = `cli:${userInfo().username}`;
    const generatedAt = now();
    const files = buildCaseFiles(records, { generatedAt, generatedBy, reference });
    const outDir = values.out ?? process.cwd();
    const written: string[] = [];
    for (const file of [files.markdown, files.json]) {
      const path = join(outDir, file.filename);
      writeFileSync(path, file.content, { flag: 'wx' });
      written.push(path);
      io.out(`case file: ${path} (${Buffer.byteLength(file.content)} bytes)\n`);
    }
    const stored: StoredEvidence[] = [];
    if (config?.evidence) {
      const bucket = createEvidenceBucket(config.evidence, config.aws.region, now);
      const stamp = new Date(generatedAt).toISOString().replace(/[:.]/g, '-');
      for (const [file, type] of [
        [files.markdown, 'text/markdown'],
        [files.json, 'application/json'],
      ] as const) {
        const object = await bucket.put(
          `${records.root.accountId ?? 'unknown'}/${records.root.id}/${stamp}-${file.filename}`,
          file.content,
          type,
        );
        stored.push(object);
        io.out(`kept in s3://${object.bucket}/${object.key} until ${object.retainUntil}\n`);
      }
    }
    const log = createLogger({ level: process.env.QUELL_LOG_LEVEL ?? 'warn', destination: process.stderr });
    await new AuditLog(store, log, now).record({
      type: 'case.exported',
      runId: records.root.id,
      actor: generatedBy,
      data: {
        reference,
        source: 'cli',
        runs: records.runs.map((r) => r.id),
        files: [describeFile(files.markdown), describeFile(files.json)],
        stored: stored.map((s) => ({ bucket: s.bucket, key: s.key, versionId: s.versionId })),
      },
    });
    io.out(
      `case ${terminalSafe(records.root.id, 20)}: ${records.runs.length} run(s), audit entries #${records.audit[0]?.seq ?? '-'} to #${records.audit.at(-1)?.seq ?? '-'}\n`,
    );
    return 0;
  } catch (error) {
    io.err(`quell: ${error instanceof QuellError ? error.message : terminalSafe(String(error), 300)}\n`);
    return 1;
  } finally {
    await store.close();
  }
}

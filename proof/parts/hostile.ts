/**
 * Hostile inputs: slash commands, button values and modal submissions through quell's signed HTTP surface
 * (a running quell whose AWS endpoint is a recording proxy in front of moto), and, at volume, command text
 * through the grammar and every runbook's schema and config files through the config parser. Valid inputs
 * are built by generators written here (not by quell's parsers), so the accepting branch runs often.
 * A crash is an HTTP 5xx, a dropped connection, or any exception other than quell's input errors.
 * An AWS call from refused input is an AssumeRole whose SourceIdentity is a user whose command was refused.
 */
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../../src/config.ts';
import { ConfigInvalidError, InputInvalidError, NotAllowedError } from '../../src/errors.ts';
import { parseRunbookInput } from '../../src/runbooks/define-runbook.ts';
import { parseCommandText } from '../../src/runbooks/engine/command-grammar.ts';
import { findRunbook, RUNBOOKS } from '../../src/runbooks/registry.ts';
import { FINDING_ACTION } from '../../src/slack/build-key-age-message.ts';
import { ACTION } from '../../src/slack/build-run-card.ts';
import { accountConfig, randomAccountId } from '../../tests/support/aws-fixtures.ts';
import { startFaultProxy } from '../../tests/support/fault-proxy.ts';
import { buttonClick, postSigned, slashCommand } from '../../tests/support/slack-requests.ts';
import { INCIDENT, startTestQuell } from '../../tests/support/test-quell.ts';
import { n, type Part } from '../support/part.ts';

const GOAL = 100_000;
const KEY_ID = /^(AKIA|ASIA)[A-Z2-7]{16}$/;
const EXAMPLE = readFileSync(new URL('../../quell.example.yaml', import.meta.url), 'utf8');

const base32 = (len: number) => fc.stringMatching(new RegExp(`^[A-Z2-7]{${len}}$`));
const hex = (len: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${len}}$`));
const hostileText = fc.oneof(
  fc.string({ maxLength: 120 }),
  fc.string({ unit: 'binary', maxLength: 60 }),
  fc.constantFrom(
    '<!channel>',
    '<@U0LEAD1>',
    '<https://evil.example|x>',
    '$(id)',
    '`id`',
    '"',
    '=',
    'a=b=c',
    '\u202e',
    '\u0000',
    ' '.repeat(50),
    'x'.repeat(2000),
  ),
);
/** Valid command text per runbook, built here. */
const validCommand = fc.oneof(
  fc
    .tuple(fc.constantFrom('AKIA', 'ASIA'), base32(16), fc.constantFrom('', ' account=prod', ' account=dev'))
    .map(([p, r, a]) => ({
      runbook: 'disable-key',
      text: `disable-key ${p}${r}${a} reason="proof"`,
      keyId: `${p}${r}`,
    })),
  fc
    .tuple(fc.oneof(hex(8), hex(17)), fc.constantFrom('', ' account=prod'))
    .map(([h, a]) => ({ runbook: 'isolate-vpc', text: `isolate-vpc vpc-${h}${a}`, keyId: undefined })),
  fc
    .oneof(hex(8), hex(17))
    .map((h) => ({ runbook: 'restore-vpc', text: `restore-vpc vpc-${h} account=prod`, keyId: undefined })),
  fc
    .tuple(
      fc.constantFrom(
        'key=AKIAIOSFODNN7EXAMPLE',
        'user=alice',
        'event=ConsoleLogin',
        'source=iam.amazonaws.com',
      ),
      fc.constantFrom('', ' since=24h', ' since=2h'),
    )
    .map(([w, s]) => ({ runbook: 'trail', text: `trail ${w}${s} account=prod`, keyId: undefined })),
  fc
    .stringMatching(/^[A-Za-z][A-Za-z0-9/_+.@-]{0,40}$/)
    .map((s) => ({ runbook: 'rotate-secret', text: `rotate-secret ${s} account=prod`, keyId: undefined })),
  fc
    .stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,40}$/)
    .map((s) => ({ runbook: 'drift', text: `drift ${s} account=prod`, keyId: undefined })),
  fc
    .constantFrom('', ' account=prod', ' account=dev')
    .map((a) => ({ runbook: 'key-age', text: `key-age${a}`, keyId: undefined })),
);
const nearMissCommand = fc.oneof(
  fc
    .tuple(base32(7), fc.constantFrom('0', '1', '8', '9', 'a'), base32(8))
    .map((p) => `disable-key AKIA${p.join('')}`),
  base32(15).map((r) => `disable-key AKIA${r}`),
  base32(17).map((r) => `disable-key ASIA${r}`),
  hex(9).map((h) => `isolate-vpc vpc-${h}`),
  fc.constantFrom(...RUNBOOKS.map((r) => r.id)).map((id) => `${id} sneaky=1`),
);
const arbitraryCommand = fc
  .tuple(
    fc.constantFrom(...RUNBOOKS.map((r) => r.id), 'help', 'status', 'nope'),
    hostileText,
    fc.option(hostileText, { nil: undefined }),
  )
  .map(([id, a, b]) => `${id} ${a}${b === undefined ? '' : ` ${b}`}`);

export function hostilePart(): Part {
  const t = {
    httpCommands: 0,
    httpClicks: 0,
    httpModals: 0,
    commands: 0,
    configs: 0,
    crashes: 0,
    crashSamples: [] as string[],
    accepted: 0,
    acceptedByRunbook: {} as Record<string, number>,
    validGenerated: 0,
    validRefused: 0,
    nearMissAccepted: 0,
    configsAccepted: 0,
    httpAccepted: 0,
    refusedAwsCalls: 0,
    refusedRuns: 0,
  };
  const crash = (what: string, error: unknown) => {
    t.crashes++;
    if (t.crashSamples.length < 5) t.crashSamples.push(`${what}: ${String(error).slice(0, 200)}`);
  };
  return {
    name: 'hostile',
    budgetSeconds: 90,
    async run(ctx) {
      const goal = Math.ceil(GOAL * ctx.scale);
      // 1. The HTTP surface, a few thousand requests.
      const proxy = await startFaultProxy(ctx.servers.motoUrl);
      const previousEndpoint = process.env.AWS_ENDPOINT_URL;
      process.env.AWS_ENDPOINT_URL = proxy.url;
      // Kept while quell runs: its AWS clients are made per run, and read the endpoint then.
      const q = await startTestQuell(
        { accounts: [accountConfig('prod', randomAccountId()), accountConfig('dev', randomAccountId())] },
        { logLevel: 'info' },
      );
      ctx.onCleanup(async () => {
        process.env.AWS_ENDPOINT_URL = previousEndpoint;
        ctx.canaries.scan('logs', q.logLines.join('\n'));
        ctx.canaries.scan('slack', JSON.stringify(q.slack.calls));
        await q.close();
        await proxy.close();
      });
      const refusedUsers = new Set<string>();
      const httpBudget = Math.ceil(1_000 * ctx.scale);
      const httpDeadline = Date.now() + (ctx.softDeadline - Date.now()) * 0.35;
      const commandSamples = fc.sample(
        fc.oneof(
          { arbitrary: arbitraryCommand, weight: 6 },
          { arbitrary: nearMissCommand, weight: 3 },
          { arbitrary: validCommand.map((v) => v.text), weight: 1 },
        ),
        httpBudget,
      );
      const valueSamples = fc.sample(
        fc.oneof(
          hostileText,
          hex(24).map((h) => `r${h}`),
          fc.constant(''),
        ),
        httpBudget,
      );
      const actionIds = [
        ...Object.values(ACTION),
        FINDING_ACTION.disable,
        FINDING_ACTION.lookUp,
        FINDING_ACTION.snooze,
        'quell_unknown',
      ];
      let i = 0;
      const send = async (k: number) => {
        const user = `U0H${k.toString(36).toUpperCase()}`;
        const kind = k % 5;
        let res: Awaited<ReturnType<typeof postSigned>>;
        try {
          if (kind < 3) {
            t.httpCommands++;
            const text = commandSamples[k % commandSamples.length] ?? '';
            res = await postSigned(q.baseUrl, slashCommand({ text, user, channel: INCIDENT }));
            const reply = String(res.json?.text ?? '');
            if (res.status === 200 && reply.includes('Planning')) t.httpAccepted++;
            else refusedUsers.add(user);
          } else if (kind === 3) {
            t.httpClicks++;
            refusedUsers.add(user);
            res = await postSigned(
              q.baseUrl,
              buttonClick({
                actionId: actionIds[k % actionIds.length] ?? 'quell_approve',
                value: valueSamples[k % valueSamples.length] ?? '',
                user,
                channel: INCIDENT,
              }),
            );
          } else {
            t.httpModals++;
            refusedUsers.add(user);
            const v = valueSamples[k % valueSamples.length] ?? '';
            const payload = {
              type: 'view_submission',
              team: { id: 'T0TEAM', domain: 'acme' },
              user: { id: user, username: 'h', team_id: 'T0TEAM' },
              api_app_id: 'A0QUELL',
              token: 'unused',
              trigger_id: '1.2.x',
              view: {
                id: 'V0MODAL',
                type: 'modal',
                callback_id: FINDING_ACTION.snoozeModal,
                private_metadata: k % 2 ? v : JSON.stringify({ ref: v, thread: v }),
                state: {
                  values: {
                    reason: { value: { type: 'plain_text_input', value: v } },
                    duration: {
                      value: {
                        type: 'static_select',
                        selected_option: { value: String(randomInt(-5, 100)) },
                      },
                    },
                  },
                },
              },
            };
            res = await postSigned(
              q.baseUrl,
              new URLSearchParams({ payload: JSON.stringify(payload) }).toString(),
            );
          }
          if (res.status >= 500) crash(`HTTP ${res.status}`, res.text);
        } catch (error) {
          crash('HTTP request', error);
        }
      };
      const workers = Array.from({ length: 8 }, async () => {
        while (i < httpBudget && Date.now() < httpDeadline) await send(i++);
      });
      await Promise.all(workers);
      await q.settle().catch(() => undefined);
      for (const r of proxy.requests) {
        const who = r.params.SourceIdentity;
        if (r.action === 'AssumeRole' && who && refusedUsers.has(who)) t.refusedAwsCalls++;
      }
      for (const user of refusedUsers)
        if ((await q.quell.store.listRuns({ requester: user, limit: 1 })).length > 0) t.refusedRuns++;

      // 2. Command text through the grammar and every runbook's schema, and config files, at volume.
      const rate = { valid: 1, near: 1, arbitrary: 2 };
      const total = () => t.httpCommands + t.httpClicks + t.httpModals + t.commands + t.configs;
      const byId = new Map(RUNBOOKS.map((r) => [r.id, r]));
      while (total() < goal && Date.now() < ctx.softDeadline) {
        const batch = fc.sample(
          fc.oneof(
            { arbitrary: validCommand.map((v) => ({ kind: 'valid' as const, ...v })), weight: rate.valid },
            {
              arbitrary: nearMissCommand.map((text) => ({
                kind: 'near' as const,
                text,
                runbook: '',
                keyId: undefined,
              })),
              weight: rate.near,
            },
            {
              arbitrary: arbitraryCommand.map((text) => ({
                kind: 'arbitrary' as const,
                text,
                runbook: '',
                keyId: undefined,
              })),
              weight: rate.arbitrary,
            },
          ),
          2_000,
        );
        for (const c of batch) {
          t.commands++;
          if (c.kind === 'valid') t.validGenerated++;
          try {
            const parsed = parseCommandText(c.text);
            const runbook = byId.get(parsed.name) ?? findRunbook(parsed.name);
            if (!runbook) continue; // refused as "not a runbook" by the handler
            const input = parseRunbookInput<{ keyId?: string; account?: string }>(runbook, parsed.args);
            t.accepted++;
            t.acceptedByRunbook[runbook.id] = (t.acceptedByRunbook[runbook.id] ?? 0) + 1;
            if (c.kind === 'near') t.nearMissAccepted++;
            if (runbook.id === 'disable-key' && !KEY_ID.test(String(input.keyId)))
              crash('disable-key accepted a bad key id', c.text);
            if (c.keyId !== undefined && input.keyId !== c.keyId)
              crash('disable-key changed the key id', c.text);
          } catch (error) {
            if (c.kind === 'valid') t.validRefused++;
            if (!(error instanceof InputInvalidError || error instanceof NotAllowedError))
              crash(`command ${JSON.stringify(c.text.slice(0, 60))}`, error);
          }
        }
        for (const text of configSamples(150)) {
          t.configs++;
          try {
            parseConfig(text, 'proof.yaml');
            t.configsAccepted++;
          } catch (error) {
            if (!(error instanceof ConfigInvalidError)) crash('config file', error);
          }
        }
      }
    },
    report(cutOff) {
      const total = t.httpCommands + t.httpClicks + t.httpModals + t.commands + t.configs;
      const byRunbook = Object.entries(t.acceptedByRunbook)
        .map(([k, v]) => `${k} ${n(v)}`)
        .join(', ');
      return [
        {
          goal: 'hostile inputs ≥ 100,000 (commands, button values, modal submissions, config files): 0 crashes',
          tried: `${n(total)}: over HTTP ${n(t.httpCommands)} commands, ${n(t.httpClicks)} clicks, ${n(t.httpModals)} modal submissions; ${n(t.commands)} commands through grammar+schemas; ${n(t.configs)} config files${cutOff ? ' (cut off)' : ''}`,
          result: `${t.crashes} crashes${t.crashSamples.length ? ` (${t.crashSamples.join('; ')})` : ''}`,
          pass: total >= GOAL && t.crashes === 0,
        },
        {
          goal: 'hostile inputs: 0 AWS calls (and 0 runs) from refused input',
          tried: `${n(t.httpCommands + t.httpClicks + t.httpModals - t.httpAccepted)} refused over HTTP`,
          result: `${t.refusedAwsCalls} AssumeRole calls, ${t.refusedRuns} runs of refused users`,
          pass: t.refusedAwsCalls === 0 && t.refusedRuns === 0 && t.httpCommands > 0,
        },
        {
          goal: 'hostile inputs: valid inputs generated often enough to exercise acceptance',
          tried: `${n(t.validGenerated)} valid commands generated (${t.commands ? Math.round((t.validGenerated / t.commands) * 100) : 0}%)`,
          result: `${n(t.accepted)} accepted (${byRunbook}); ${t.validRefused} valid refused, ${t.nearMissAccepted} near misses accepted; ${n(t.httpAccepted)} accepted over HTTP; ${n(t.configsAccepted)} config files accepted`,
          pass:
            t.validGenerated >= 1_000 &&
            t.validRefused === 0 &&
            t.nearMissAccepted === 0 &&
            t.httpAccepted > 0,
        },
      ];
    },
  };
}

/** Config files: the example, mutated (values swapped, keys dropped or added, lines cut), or garbage. */
function configSamples(count: number): string[] {
  const base = parse(EXAMPLE) as Record<string, unknown>;
  const out: string[] = [];
  const junk = fc.sample(
    fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.integer(),
      fc.constant(null),
      fc.boolean(),
      fc.array(fc.string(), { maxLength: 3 }),
      fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
    ),
    count,
  );
  for (let i = 0; i < count; i++) {
    const mode = i % 5;
    if (mode === 0) {
      out.push(EXAMPLE); // valid: the accepting branch
      continue;
    }
    if (mode === 1) {
      const lines = EXAMPLE.split('\n');
      out.push(`${lines.slice(0, randomInt(0, lines.length)).join('\n')}\n${stringify(junk[i] ?? null)}`);
      continue;
    }
    const doc = structuredClone(base);
    const paths: string[][] = [];
    const walk = (node: unknown, path: string[]) => {
      if (node && typeof node === 'object') for (const [k, v] of Object.entries(node)) walk(v, [...path, k]);
      paths.push(path);
    };
    walk(doc, []);
    const path = paths[randomInt(0, paths.length)] ?? [];
    let parent: Record<string, unknown> = doc;
    for (const key of path.slice(0, -1)) parent = parent[key] as Record<string, unknown>;
    const last = path.at(-1);
    if (last === undefined) out.push(stringify(junk[i]));
    else {
      if (mode === 2) delete parent[last];
      else if (mode === 3) parent[last] = junk[i];
      else parent[`${last}X`] = junk[i];
      out.push(stringify(doc));
    }
  }
  return out;
}

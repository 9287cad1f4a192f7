/**
 * Credential-age messages as pure Block Kit builders: the reminder (or `/quell key-age` result) as
 * pages — a headline with counts by account, then findings grouped by account and owner, worst first,
 * each key with its age, last use and service and its buttons — the owner's direct message, and the
 * snooze modal. Slack allows 50 blocks per message (api.slack.com/reference/block-kit/blocks), so long
 * lists continue on further pages in the thread; every page says which keys it holds, nothing is dropped.
 */
import type { FindingReason, KeyAgeAccount, KeyAgeLimits, ShownFinding } from '../runbooks/key-age.ts';
import type { Block } from './build-run-card.ts';
import { escapeCode, escapeMrkdwn, mentionUser, plainText } from './escape-text.ts';

/**
 * Everything a findings message is built from: a key-age run's stored result with the snoozes in force,
 * shown as a scheduled reminder (`slot` set) or in a `/quell key-age` run's thread.
 */
export interface ReminderReport {
  /** The run's id: buttons refer to its findings as `<id>.<index>`. */
  id: string;
  channel: string;
  /** When it was shown (ms), and the reminder slot it ran for (ms; null when not scheduled). */
  at: number;
  slot: number | null;
  limits: KeyAgeLimits;
  accounts: KeyAgeAccount[];
  findings: ShownFinding[];
  /** Slots that were missed during downtime and folded into this one. */
  skipped: number;
}

const FINDING_REF = /^(r[a-z2-7]{12})\.(\d{1,6})$/;

/** The reference a finding's buttons carry: the run's id and the finding's index in its result. */
export function findingRef(runId: string, index: number): string {
  return `${runId}.${index}`;
}

/** The run id and index of a button's reference; undefined for anything not of that exact shape. */
export function parseFindingRef(ref: string): { runId: string; index: number } | undefined {
  const match = FINDING_REF.exec(ref);
  return match ? { runId: match[1] as string, index: Number(match[2]) } : undefined;
}

/** Action ids of the finding buttons and the snooze modal's callback. */
export const FINDING_ACTION = {
  disable: 'quell_finding_disable',
  lookUp: 'quell_finding_trail',
  snooze: 'quell_finding_snooze',
  snoozeModal: 'quell_snooze_modal',
} as const;

/** Slack's limit of blocks in one message. */
export const MAX_BLOCKS_PER_MESSAGE = 50;

/** Snooze durations offered in the modal (days); nothing else is accepted on submit. */
export const SNOOZE_DAYS = [7, 14, 30, 90] as const;

/** Which buttons a finding gets (the channel's guardrails decide). */
export interface FindingButtons {
  disable: boolean;
  lookUp: boolean;
  snooze: boolean;
}

/** One message of a paged report. */
export interface MessagePage {
  text: string;
  blocks: Block[];
}

const REASON_LABEL: Record<FindingReason, (f: ShownFinding, r: ReminderReport) => string> = {
  'root-key': () => ':rotating_light: root user key',
  old: (_f, r) => `:hourglass: older than ${r.limits.maxKeyAgeDays} days`,
  unused: (f, r) => `:zzz: unused for ${f.idleDays} days (limit ${r.limits.maxUnusedDays})`,
  'never-used': (_f, r) => `:zzz: never used (limit ${r.limits.maxUnusedDays} days)`,
  'both-active': () => ':two: both keys of the user active',
};

/** `2026-01-07` from an ISO time. */
function day(iso: string | null): string {
  return iso ? iso.slice(0, 10) : 'unknown';
}

/** The one-line description of a key: id, age, last use (when, service, region) and why it is listed. */
export function describeFinding(f: ShownFinding, report: ReminderReport): string {
  const key = f.keyId ? `\`${escapeCode(f.keyId, 32)}\`` : `key ${f.slot} (id not matched; see IAM)`;
  const age = f.ageDays === null ? 'age unknown' : `*${f.ageDays} days old* (created ${day(f.createdAt)})`;
  const where = [f.lastUsedService, f.lastUsedRegion]
    .filter((v): v is string => Boolean(v))
    .map((v) => escapeMrkdwn(v, 40));
  const lastUse = f.lastUsedAt
    ? `last used ${day(f.lastUsedAt)}${f.idleDays !== null ? ` (${f.idleDays} day${f.idleDays === 1 ? '' : 's'} ago)` : ''}${where.length ? ` via ${where.join(' in ')}` : ''}`
    : 'never used';
  const reasons = f.reasons.map((r) => REASON_LABEL[r](f, report)).join(' · ');
  return `${key} · ${age} · ${lastUse}\n${reasons}`;
}

function ownerLine(f: ShownFinding): string {
  const user = `*${escapeMrkdwn(f.userName, 64)}*`;
  if (f.userName === '<root_account>') return '*root user* · delete root access keys while signed in as root';
  if (f.ownerSlack) return `${user} · owner ${mentionUser(f.ownerSlack)}`;
  if (f.ownerEmail) return `${user} · owner ${escapeMrkdwn(f.ownerEmail, 100)}`;
  return `${user} · no \`slack\` or \`email\` tag on the IAM user`;
}

function buttonsFor(f: ShownFinding, ref: string, allowed: FindingButtons): Block[] {
  const buttons: Block[] = [];
  const managed = f.keyId !== null && f.userName !== '<root_account>';
  if (allowed.disable && managed)
    buttons.push({
      type: 'button',
      action_id: FINDING_ACTION.disable,
      text: plainText('Disable'),
      style: 'danger',
      value: ref,
    });
  if (allowed.lookUp && f.keyId !== null)
    buttons.push({
      type: 'button',
      action_id: FINDING_ACTION.lookUp,
      text: plainText('Look up activity'),
      value: ref,
    });
  if (allowed.snooze && f.keyId !== null)
    buttons.push({ type: 'button', action_id: FINDING_ACTION.snooze, text: plainText('Snooze'), value: ref });
  return buttons;
}

/** Findings grouped by account (worst account first), then owner (worst first), keys worst first. */
export function groupFindings(findings: readonly ShownFinding[]): {
  accountAlias: string;
  accountId: string;
  owners: { userName: string; findings: ShownFinding[] }[];
}[] {
  const accounts = new Map<
    string,
    { accountAlias: string; accountId: string; owners: Map<string, ShownFinding[]> }
  >();
  for (const f of findings) {
    const account = accounts.get(f.accountId) ?? {
      accountAlias: f.accountAlias,
      accountId: f.accountId,
      owners: new Map<string, ShownFinding[]>(),
    };
    const list = account.owners.get(f.userName) ?? [];
    list.push(f);
    account.owners.set(f.userName, list);
    accounts.set(f.accountId, account);
  }
  const worst = (list: readonly ShownFinding[]) => Math.max(...list.map((f) => f.severity));
  return [...accounts.values()]
    .map((a) => ({
      accountAlias: a.accountAlias,
      accountId: a.accountId,
      owners: [...a.owners.entries()]
        .map(([userName, list]) => ({
          userName,
          findings: [...list].sort((x, y) => y.severity - x.severity || x.slot - y.slot),
        }))
        .sort((x, y) => worst(y.findings) - worst(x.findings) || x.userName.localeCompare(y.userName)),
    }))
    .sort(
      (x, y) =>
        worst(y.owners.flatMap((o) => o.findings)) - worst(x.owners.flatMap((o) => o.findings)) ||
        x.accountAlias.localeCompare(y.accountAlias),
    );
}

/** The headline: what ran, counts by account, accounts that could not be read. */
function buildHeadline(report: ReminderReport): { text: string; blocks: Block[] } {
  const active = report.findings.filter((f) => f.snooze === null);
  const snoozed = report.findings.length - active.length;
  const perAccount = report.accounts.map((a) => {
    if (a.error) return `*${escapeMrkdwn(a.accountAlias, 40)}*: could not be read`;
    const n = active.filter((f) => f.accountId === a.accountId).length;
    return `*${escapeMrkdwn(a.accountAlias, 40)}*: ${n}`;
  });
  const title = report.slot === null ? 'Access keys to look at' : 'Credential-age reminder';
  const headline =
    active.length === 0
      ? `No access key needs attention${snoozed ? ` (${snoozed} snoozed)` : ''}.`
      : `*${active.length} access key${active.length === 1 ? '' : 's'} to look at*${snoozed ? ` (and ${snoozed} snoozed)` : ''} — ${perAccount.join(' · ')}`;
  const blocks: Block[] = [
    { type: 'header', text: plainText(title) },
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: active.length === 0 ? `${headline} ${perAccount.join(' · ')}` : headline,
      },
    },
  ];
  const problems = report.accounts.filter((a) => a.error);
  if (problems.length > 0) {
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: problems
          .map(
            (a) =>
              `:warning: *${escapeMrkdwn(a.accountAlias, 40)}* (${a.accountId}): ${escapeMrkdwn(a.error ?? '', 400)}`,
          )
          .join('\n')
          .slice(0, 2900),
      },
    });
  }
  const context = [
    `Limits: older than ${report.limits.maxKeyAgeDays} days, unused for more than ${report.limits.maxUnusedDays} days`,
    `\`${report.id}\``,
  ];
  if (report.skipped > 0)
    context.push(
      `${report.skipped} earlier slot${report.skipped === 1 ? ' was' : 's were'} missed while quell was down`,
    );
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: context.join(' · ') }] });
  const counts = report.accounts.map((a) =>
    a.error
      ? `${a.accountAlias} unreadable`
      : `${a.accountAlias} ${active.filter((f) => f.accountId === a.accountId).length}`,
  );
  return {
    text: escapeMrkdwn(`${title}: ${active.length} access keys to look at (${counts.join(', ')})`, 300),
    blocks,
  };
}

/**
 * The report as messages: the first goes to the channel, the others into its thread. `buttons` says
 * which buttons a finding's account allows; `maxBlocks` is Slack's per-message limit.
 */
export function buildKeyAgePages(
  report: ReminderReport,
  buttons: (accountAlias: string) => FindingButtons,
  maxBlocks = MAX_BLOCKS_PER_MESSAGE,
): MessagePage[] {
  const headline = buildHeadline(report);
  const active = report.findings.filter((f) => f.snooze === null);
  const snoozed = report.findings.filter((f) => f.snooze !== null);
  // Units never split across pages: an account or owner heading is repeated on the page it continues on.
  type Unit = { blocks: Block[]; account: string; owner: string; keys: number };
  const units: Unit[] = [];
  for (const account of groupFindings(active)) {
    for (const owner of account.owners) {
      for (const f of owner.findings) {
        const ref = findingRef(report.id, f.index);
        const row: Block[] = [
          { type: 'section', text: { type: 'mrkdwn', text: describeFinding(f, report) } },
        ];
        const actions = buttonsFor(f, ref, buttons(f.accountAlias));
        if (actions.length > 0) row.push({ type: 'actions', block_id: `finding:${ref}`, elements: actions });
        units.push({
          blocks: row,
          account: `${account.accountAlias}|${account.accountId}`,
          owner: owner.userName,
          keys: 1,
        });
      }
    }
  }
  for (const f of snoozed) {
    const s = f.snooze;
    if (!s) continue;
    const until = new Date(s.until).toISOString().slice(0, 10);
    units.push({
      blocks: [
        {
          type: 'context',
          elements: [
            {
              type: 'mrkdwn',
              text: `:zzz: ${f.keyId ? `\`${escapeCode(f.keyId, 32)}\`` : `key ${f.slot}`} of *${escapeMrkdwn(f.userName, 64)}* in ${escapeMrkdwn(f.accountAlias, 40)} · ${f.ageDays ?? '?'} days old · snoozed until ${until} by \`${escapeCode(s.by, 32)}\`: ${escapeMrkdwn(s.reason, 300)}`,
            },
          ],
        },
      ],
      account: 'snoozed',
      owner: 'snoozed',
      keys: 1,
    });
  }

  const pages: { blocks: Block[]; first: number; last: number }[] = [];
  let current: Block[] = [...headline.blocks];
  let budget = maxBlocks - current.length - 1; // one block reserved for the "continued" footer
  let lastAccount = '';
  let lastOwner = '';
  let shown = 0;
  let pageFirst = 1;
  const headingsFor = (unit: Unit): Block[] => {
    const headings: Block[] = [];
    if (unit.account === 'snoozed') {
      if (lastAccount !== 'snoozed')
        headings.push({
          type: 'section',
          text: { type: 'mrkdwn', text: `*Snoozed (${snoozed.length})* — listed again when the snooze ends` },
        });
      return headings;
    }
    if (unit.account !== lastAccount) {
      const [alias, id] = unit.account.split('|');
      const n = active.filter((f) => f.accountId === id).length;
      headings.push({
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `:cloud: *${escapeMrkdwn(alias ?? '', 40)}* (${id}) · ${n} key${n === 1 ? '' : 's'}`,
        },
      });
    }
    if (unit.account !== lastAccount || unit.owner !== lastOwner) {
      const sample = active.find(
        (f) => `${f.accountAlias}|${f.accountId}` === unit.account && f.userName === unit.owner,
      );
      if (sample) headings.push({ type: 'context', elements: [{ type: 'mrkdwn', text: ownerLine(sample) }] });
    }
    return headings;
  };
  for (const unit of units) {
    let headings = headingsFor(unit);
    if (headings.length + unit.blocks.length > budget && current.length > 0 && shown >= pageFirst) {
      pages.push({ blocks: current, first: pageFirst, last: shown });
      current = [];
      budget = maxBlocks - 2; // page heading and footer
      pageFirst = shown + 1;
      lastAccount = '';
      lastOwner = '';
      headings = headingsFor(unit);
    }
    current.push(...headings, ...unit.blocks);
    budget -= headings.length + unit.blocks.length;
    lastAccount = unit.account;
    lastOwner = unit.owner;
    shown += unit.keys;
  }
  pages.push({ blocks: current, first: pageFirst, last: shown });

  const total = units.length;
  const count = pages.length;
  return pages.map((page, i) => {
    const blocks = [...page.blocks];
    if (i > 0) {
      blocks.unshift({
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: `Page ${i + 1} of ${count} · keys ${page.first}–${page.last} of ${total} · \`${report.id}\``,
          },
        ],
      });
    }
    if (count > 1 && i === 0) {
      blocks.push({
        type: 'context',
        elements: [
          {
            type: 'mrkdwn',
            text: `Showing keys 1–${page.last} of ${total}; the other ${total - page.last} are in the thread (pages 2–${count}).`,
          },
        ],
      });
    }
    return {
      text: i === 0 ? headline.text : `${headline.text} — page ${i + 1} of ${count}`,
      blocks,
    };
  });
}

/** The direct message to an owner about their own keys (no buttons: the channel decides). */
export function buildOwnerMessage(findings: readonly ShownFinding[], report: ReminderReport): MessagePage {
  const n = findings.length;
  const blocks: Block[] = [
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: `:wave: quell's credential-age check found ${n} of your AWS access key${n === 1 ? '' : 's'} that need${n === 1 ? 's' : ''} attention. Rotate or delete ${n === 1 ? 'it' : 'them'} (IAM console → Users → your user → Security credentials), or tell the security team in <#${report.channel}> why ${n === 1 ? 'it has' : 'they have'} to stay.`,
      },
    },
  ];
  // Room for the intro and a closing line; the rest are named by count, not dropped silently.
  const room = MAX_BLOCKS_PER_MESSAGE - 3;
  for (const f of findings.slice(0, room)) {
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: `*${escapeMrkdwn(f.accountAlias, 40)}* (${f.accountId}) · user *${escapeMrkdwn(f.userName, 64)}*\n${describeFinding(f, report)}`,
      },
    });
  }
  if (findings.length > room)
    blocks.push({
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text: `…and ${findings.length - room} more keys: see the reminder in <#${report.channel}>.`,
        },
      ],
    });
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `Reminder \`${report.id}\`` }] });
  return { text: `${n} of your AWS access keys need attention`, blocks };
}

/** The snooze modal: the key, a reason and a duration. `ref` comes back in private_metadata. */
export function buildSnoozeModal(
  f: ShownFinding | (Omit<ShownFinding, 'snooze'> & { snooze?: null }),
  metadata: string,
): Block {
  return {
    type: 'modal',
    callback_id: FINDING_ACTION.snoozeModal,
    private_metadata: metadata,
    title: plainText('Snooze a key', 24),
    submit: plainText('Snooze', 24),
    close: plainText('Cancel', 24),
    blocks: [
      {
        type: 'section',
        text: {
          type: 'mrkdwn',
          text: `${f.keyId ? `\`${escapeCode(f.keyId, 32)}\`` : `key ${f.slot}`} of *${escapeMrkdwn(f.userName, 64)}* in *${escapeMrkdwn(f.accountAlias, 40)}* (${f.accountId}) is left out of reminders until the snooze ends. The snooze and its reason are recorded in the audit log and shown on every reminder.`,
        },
      },
      {
        type: 'input',
        block_id: 'reason',
        label: plainText('Why may this key stay?'),
        element: {
          type: 'plain_text_input',
          action_id: 'value',
          multiline: true,
          min_length: 3,
          max_length: 500,
          placeholder: plainText('e.g. CI key, rotation scheduled with the vendor for next sprint'),
        },
      },
      {
        type: 'input',
        block_id: 'duration',
        label: plainText('For how long?'),
        element: {
          type: 'static_select',
          action_id: 'value',
          initial_option: { text: plainText('30 days'), value: '30' },
          options: SNOOZE_DAYS.map((d) => ({ text: plainText(`${d} days`), value: String(d) })),
        },
      },
    ],
  };
}

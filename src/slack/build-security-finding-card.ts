/**
 * A security finding's card, as a pure Block Kit builder: severity, title, type, account and region, the
 * resources it names, and one button per resource quell can act on (Disable key, Isolate instance,
 * Revoke sessions). Everything from the finding is untrusted text and escaped; a button carries only
 * the finding's reference and the resource's index, never the resource itself.
 */
import type { Config } from '../config.ts';
import {
  type OfferedAction,
  type SecurityFinding,
  sourceLabel,
  targetAccountId,
  targetRef,
} from '../findings/security-finding.ts';
import type { Block } from './build-run-card.ts';
import { escapeCode, escapeMrkdwn, plainText } from './escape-text.ts';

/** Action ids of the finding buttons, by the runbook they start. Keep them once released. */
export const SECURITY_FINDING_ACTION: Record<string, string> = {
  'disable-key': 'quell_sf_disable_key',
  'isolate-instance': 'quell_sf_isolate_instance',
  'revoke-role-sessions': 'quell_sf_revoke_role_sessions',
};

const SEVERITY_ICON: Record<SecurityFinding['severity'], string> = {
  critical: ':red_circle:',
  high: ':large_orange_circle:',
  medium: ':large_yellow_circle:',
  low: ':large_blue_circle:',
  informational: ':white_circle:',
};

/** The button's label for an offered action. */
function buttonLabel(action: OfferedAction): string {
  const t = action.target;
  switch (t.kind) {
    case 'access-key':
      return `Disable key ${t.accessKeyId}`;
    case 'instance':
      return `Isolate instance ${t.instanceId}`;
    case 'role':
      return `Revoke sessions of ${t.roleArn.slice(t.roleArn.lastIndexOf('/') + 1)}`;
  }
}

/** The card's fallback text (notifications, screen readers); mrkdwn too, so escaped. */
export function findingCardText(finding: SecurityFinding): string {
  return `${sourceLabel(finding.source)} ${finding.severity} finding in ${finding.accountId}: ${escapeMrkdwn(finding.title, 200)}`;
}

/** The card of one finding, with the buttons `actions` offers. */
export function buildSecurityFindingCard(
  finding: SecurityFinding,
  ref: string,
  actions: readonly OfferedAction[],
  config: Pick<Config, 'accounts'>,
): Block[] {
  const account = config.accounts.find((a) => a.id === finding.accountId);
  const score = finding.score === null ? '' : ` (${finding.score})`;
  const blocks: Block[] = [
    {
      type: 'header',
      text: plainText(`${sourceLabel(finding.source)} finding · ${finding.severity.toUpperCase()}${score}`),
    },
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: `${SEVERITY_ICON[finding.severity]} *${escapeMrkdwn(finding.title, 300)}*\n${escapeMrkdwn(finding.description, 600)}`,
      },
    },
    {
      type: 'section',
      fields: [
        { type: 'mrkdwn', text: `*Type*\n\`${escapeCode(finding.type || 'unknown', 200)}\`` },
        {
          type: 'mrkdwn',
          text: `*Account*\n${account ? `${escapeMrkdwn(account.alias, 40)} (${finding.accountId})` : `${finding.accountId} (not configured in quell)`}`,
        },
        { type: 'mrkdwn', text: `*Region*\n${escapeMrkdwn(finding.region || 'unknown', 32)}` },
        { type: 'mrkdwn', text: `*Product*\n${escapeMrkdwn(finding.product, 64)}` },
      ],
    },
  ];
  if (finding.resources.length > 0)
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: `*Resources*\n${finding.resources.map((r) => `• \`${escapeCode(r, 200)}\``).join('\n')}`,
      },
    });
  for (const action of actions) {
    const actionId = SECURITY_FINDING_ACTION[action.runbook];
    if (!actionId) continue;
    const other = targetAccountId(finding, action.target) !== finding.accountId;
    blocks.push({
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: `\`${action.runbook}\` in ${escapeMrkdwn(action.accountAlias, 40)}${other ? ' (the role’s account)' : ''}: asks for approval like the typed command`,
      },
      accessory: {
        type: 'button',
        action_id: actionId,
        text: plainText(buttonLabel(action), 75),
        value: targetRef(ref, action.index),
        ...(action.runbook === 'disable-key' ? {} : { style: 'danger' }),
      },
    });
  }
  if (actions.length === 0 && finding.targets.length > 0)
    blocks.push({
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text: 'No button: the runbook for this resource is not installed, its account is not configured, or this channel may not run it.',
        },
      ],
    });
  blocks.push({
    type: 'context',
    elements: [
      {
        type: 'mrkdwn',
        text: `Finding \`${escapeCode(finding.id, 300)}\`${finding.updatedAt ? ` · updated ${escapeMrkdwn(finding.updatedAt, 40)}` : ''} · ref \`${ref}\``,
      },
    ],
  });
  return blocks;
}

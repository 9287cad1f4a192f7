/**
 * Game days in the rehearsal world: `/quell gameday <scenario>` injects a scripted incident (AWS
 * resources in the console's moto, CloudTrail events, for tampered-stack a drifted stack), posts its
 * alert to the channel — the clock starts — and watches quell's runs in that channel. When the
 * scenario's containment run has succeeded (quell verified it), or the time limit passes, or someone
 * types `/quell gameday end`, it posts a scorecard to the alert's thread: time to first command, to
 * approval, to contained, and each expected step done or missed. Only the console offers it, and only
 * with the rehearsal world: in Slack, `gameday` is not a command.
 */
import { randomBytes } from 'node:crypto';
import {
  AuthorizeSecurityGroupIngressCommand,
  CreateSecurityGroupCommand,
  DescribeImagesCommand,
  EC2Client,
  ModifyNetworkInterfaceAttributeCommand,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient } from '@aws-sdk/client-iam';
import type { Logger } from '../logger.ts';
import type { ConsoleSlackApi } from './console-slack-api.ts';
import { fillTemplate, type GameDayScenario } from './game-day-scenario.ts';
import type { RehearsalCloudFormation } from './rehearsal-cloudformation.ts';
import type { RehearsalCloudTrail } from './rehearsal-cloudtrail.ts';
import { adminCredentials, REHEARSAL_ACCOUNT_ID, type RehearsalSeed } from './rehearsal-world.ts';

/** What a game day needs to know of a quell run (read from quell's store). */
export interface GameDayRun {
  runbook: string;
  state: string;
  channel: string;
  input: unknown;
  createdAt: number;
  approvedAt: number | null;
  updatedAt: number;
}

/** Everything a game day touches. */
export interface GameDayDeps {
  motoUrl: string;
  seed: RehearsalSeed;
  trail: RehearsalCloudTrail;
  cloudFormation: RehearsalCloudFormation;
  slack: ConsoleSlackApi;
  scenarios: Map<string, GameDayScenario>;
  /** quell's recent runs, newest first. */
  listRuns(): Promise<GameDayRun[]>;
  command: string;
  log: Logger;
  now?: () => number;
  /** How often the runs are checked (ms). */
  checkEveryMs?: number;
}

interface ActiveGame {
  scenario: GameDayScenario;
  channel: string;
  alertTs: string;
  startedAt: number;
  firstCommandAt: number | undefined;
  vars: Record<string, string>;
}

/** One result line of a scorecard. */
export interface StepOutcome {
  id: string;
  title: string;
  done: boolean;
  containment: boolean;
}

/** A finished game day's figures (also what the scorecard message shows). */
export interface Scorecard {
  scenario: string;
  title: string;
  toFirstCommandMs: number | undefined;
  toApprovalMs: number | undefined;
  toContainedMs: number | undefined;
  steps: StepOutcome[];
  ended: 'contained' | 'time limit' | 'ended by hand';
}

/** The game days of one console. */
export class GameDays {
  private readonly active = new Map<string, ActiveGame>();
  private readonly timer: NodeJS.Timeout;
  private checking = false;
  /** Scorecards posted so far (newest last). */
  readonly finished: Scorecard[] = [];

  private readonly deps: GameDayDeps;

  constructor(deps: GameDayDeps) {
    this.deps = deps;
    this.timer = setInterval(() => void this.checkAll(), deps.checkEveryMs ?? 1000);
    this.timer.unref();
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** A command typed in `channel` (the first one after the alert stops that clock). */
  noteCommand(channel: string): void {
    const game = this.active.get(channel);
    if (game && game.firstCommandAt === undefined) game.firstCommandAt = this.now();
  }

  /** `/quell gameday …`: list, start or end; returns the ephemeral answer for the person who typed. */
  async handle(channel: string, args: string): Promise<string> {
    const word = args.trim().split(/\s+/)[0] ?? '';
    const list = [...this.deps.scenarios.values()].map((s) => `\`${s.id}\` (${s.title})`).join(', ');
    if (!word)
      return `Start a game day with \`${this.deps.command} gameday <scenario>\`; scenarios: ${list}.`;
    if (word === 'end') {
      const game = this.active.get(channel);
      if (!game) return 'No game day is running in this channel.';
      await this.finish(game, 'ended by hand');
      return 'Game day ended: the scorecard is in the alert’s thread.';
    }
    const scenario = this.deps.scenarios.get(word);
    if (!scenario)
      return `There is no scenario \`${word.slice(0, 40).replace(/[`<>&]/g, '')}\`; scenarios: ${list}.`;
    if (this.active.has(channel))
      return `A game day is already running in this channel; \`${this.deps.command} gameday end\` ends it.`;
    const vars = await this.inject(scenario);
    for (const e of scenario.events) {
      const resourceName = e.resourceName ? fillTemplate(e.resourceName, vars) : undefined;
      this.deps.trail.events.push({
        region: e.region,
        eventTime: new Date(this.now() - e.minutesAgo * 60_000),
        eventName: e.name,
        eventSource: e.source,
        username: e.user ? fillTemplate(e.user, vars) : (vars.user ?? 'unknown'),
        accessKeyId: vars.keyId ?? `ASIAREHEARSAL${randomBytes(4).toString('hex').toUpperCase()}`,
        resources: resourceName ? [{ type: e.resourceType ?? 'AWS::Unknown', name: resourceName }] : [],
        sourceIPAddress: '203.0.113.50',
        userAgent: 'aws-cli/2.15.0 Python/3.11.6 Linux/6.1',
        ...(e.error ? { errorCode: e.error } : {}),
      });
    }
    const alert = fillTemplate(scenario.alert, vars).trim();
    const alertTs = this.deps.slack.post({
      channel,
      author: 'game day',
      text: alert,
      blocks: [
        { type: 'header', text: { type: 'plain_text', text: `Game day: ${scenario.title}` } },
        { type: 'section', text: { type: 'mrkdwn', text: alert } },
        {
          type: 'context',
          elements: [
            {
              type: 'mrkdwn',
              text: `The clock is running. The scorecard comes to this thread when the incident is contained, after ${Math.round(scenario.timeLimit / 60_000)} minutes, or on \`${this.deps.command} gameday end\`.`,
            },
          ],
        },
      ],
    });
    this.active.set(channel, {
      scenario,
      channel,
      alertTs,
      startedAt: this.now(),
      firstCommandAt: undefined,
      vars,
    });
    return `Game day \`${scenario.id}\` started: the alert is in the channel.`;
  }

  /** Creates what the scenario needs in moto; returns the placeholder values. */
  private async inject(scenario: GameDayScenario): Promise<Record<string, string>> {
    const { motoUrl, seed } = this.deps;
    const credentials = await adminCredentials(motoUrl);
    const suffix = randomBytes(2).toString('hex');
    const inject = scenario.inject;
    const base = { account: REHEARSAL_ACCOUNT_ID, vpcId: seed.vpcId };
    if (inject.kind === 'leaked-key') {
      const iam = new IAMClient({ region: 'us-east-1', endpoint: motoUrl, credentials });
      try {
        const user = `${inject.user}-${suffix}`;
        await iam.send(new CreateUserCommand({ UserName: user }));
        const key = await iam.send(new CreateAccessKeyCommand({ UserName: user }));
        return { ...base, user, keyId: key.AccessKey?.AccessKeyId ?? '' };
      } finally {
        iam.destroy();
      }
    }
    const ec2 = new EC2Client({ region: 'us-east-1', endpoint: motoUrl, credentials });
    try {
      const name =
        inject.kind === 'tampered-stack' ? `${inject.stack}-web-${suffix}` : `${inject.group}-${suffix}`;
      const groupId =
        (
          await ec2.send(
            new CreateSecurityGroupCommand({
              GroupName: name,
              Description: `game day ${scenario.id}`,
              VpcId: seed.vpcId,
            }),
          )
        ).GroupId ?? '';
      const imageId = (await ec2.send(new DescribeImagesCommand({}))).Images?.[0]?.ImageId;
      const run = await ec2.send(
        new RunInstancesCommand({
          ImageId: imageId,
          MinCount: 1,
          MaxCount: 1,
          SubnetId: seed.subnetId,
        }),
      );
      const instanceId = run.Instances?.[0]?.InstanceId ?? '';
      // The group goes onto the primary network interface, not into RunInstances: moto keeps groups given at
      // launch on the instance as well, where changing the interface's groups later does not remove them.
      await ec2.send(
        new ModifyNetworkInterfaceAttributeCommand({
          NetworkInterfaceId: run.Instances?.[0]?.NetworkInterfaces?.[0]?.NetworkInterfaceId,
          Groups: [groupId],
        }),
      );
      // The change the incident is about: ports opened to the whole internet.
      await ec2.send(
        new AuthorizeSecurityGroupIngressCommand({
          GroupId: groupId,
          IpPermissions: inject.ports.map((port) => ({
            IpProtocol: 'tcp',
            FromPort: port,
            ToPort: port,
            IpRanges: [{ CidrIp: '0.0.0.0/0', Description: 'temporary' }],
          })),
        }),
      );
      if (inject.kind === 'exposed-instance') return { ...base, groupId, instanceId };
      const stack = `${inject.stack}-${suffix}`;
      this.deps.cloudFormation.stacks.set(stack, {
        accountId: REHEARSAL_ACCOUNT_ID,
        resources: [
          {
            logicalId: 'WebSecurityGroup',
            physicalId: groupId,
            type: 'AWS::EC2::SecurityGroup',
            status: 'MODIFIED',
            differences: inject.ports.map((port, i) => ({
              path: `/SecurityGroupIngress/${i + 1}`,
              expected: '',
              actual: JSON.stringify({
                CidrIp: '0.0.0.0/0',
                FromPort: port,
                IpProtocol: 'tcp',
                ToPort: port,
              }),
              kind: 'ADD' as const,
            })),
          },
          {
            logicalId: 'WebInstance',
            physicalId: instanceId,
            type: 'AWS::EC2::Instance',
            status: 'IN_SYNC',
            differences: [],
          },
        ],
      });
      return { ...base, stack, groupId, instanceId };
    } finally {
      ec2.destroy();
    }
  }

  private async checkAll(): Promise<void> {
    if (this.checking || this.active.size === 0) return;
    this.checking = true;
    try {
      for (const game of [...this.active.values()]) {
        const card = await this.score(game);
        const contained = card.steps.some((s) => s.containment && s.done);
        if (contained) await this.finish(game, 'contained');
        else if (this.now() - game.startedAt > game.scenario.timeLimit) await this.finish(game, 'time limit');
      }
    } catch (err) {
      this.deps.log.warn({ err }, 'game day: could not check the runs');
    } finally {
      this.checking = false;
    }
  }

  /** The scorecard so far, from quell's runs in the game's channel since the alert. */
  private async score(game: ActiveGame, ended: Scorecard['ended'] = 'contained'): Promise<Scorecard> {
    const runs = (await this.deps.listRuns()).filter(
      (r) => r.channel === game.channel && r.createdAt >= game.startedAt,
    );
    let approvalAt: number | undefined;
    let containedAt: number | undefined;
    const steps = game.scenario.steps.map((step) => {
      const match = fillTemplate(step.match, game.vars);
      const matching = runs.filter(
        (r) => r.runbook === step.runbook && JSON.stringify(r.input ?? '').includes(match),
      );
      const succeeded = matching.filter((r) => r.state === 'succeeded');
      if (step.containment) {
        const approvals = matching
          .map((r) => r.approvedAt)
          .filter((at): at is number => typeof at === 'number');
        approvalAt = approvals.length > 0 ? Math.min(...approvals) : undefined;
        containedAt = succeeded.length > 0 ? Math.min(...succeeded.map((r) => r.updatedAt)) : undefined;
      }
      return { id: step.id, title: step.title, done: succeeded.length > 0, containment: step.containment };
    });
    const since = (at: number | undefined) =>
      at === undefined ? undefined : Math.max(0, at - game.startedAt);
    return {
      scenario: game.scenario.id,
      title: game.scenario.title,
      toFirstCommandMs: since(game.firstCommandAt),
      toApprovalMs: since(approvalAt),
      toContainedMs: since(containedAt),
      steps,
      ended,
    };
  }

  private async finish(game: ActiveGame, ended: Scorecard['ended']): Promise<void> {
    if (this.active.get(game.channel) !== game) return;
    this.active.delete(game.channel);
    const card = await this.score(game, ended);
    this.finished.push(card);
    this.deps.slack.post({
      channel: game.channel,
      threadTs: game.alertTs,
      author: 'game day',
      text: `Game day scorecard: ${card.title}`,
      blocks: buildScorecardBlocks(card),
    });
  }

  /** Stops watching (the console is stopping). */
  stop(): void {
    clearInterval(this.timer);
  }
}

/** Minutes and seconds, or "not reached". */
export function formatElapsed(ms: number | undefined): string {
  if (ms === undefined) return 'not reached';
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s`;
}

/** The scorecard message (pure, so that it can be tested on its own). */
export function buildScorecardBlocks(card: Scorecard): unknown[] {
  const missed = card.steps.filter((s) => !s.done);
  return [
    { type: 'header', text: { type: 'plain_text', text: `Game day scorecard: ${card.title}` } },
    {
      type: 'section',
      fields: [
        { type: 'mrkdwn', text: `*Time to first command*\n${formatElapsed(card.toFirstCommandMs)}` },
        { type: 'mrkdwn', text: `*Time to approval*\n${formatElapsed(card.toApprovalMs)}` },
        { type: 'mrkdwn', text: `*Time to contained (verified)*\n${formatElapsed(card.toContainedMs)}` },
        { type: 'mrkdwn', text: `*Ended*\n${card.ended}` },
      ],
    },
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: card.steps
          .map((s) => `${s.done ? ':white_check_mark:' : ':x:'} ${s.title}${s.done ? '' : ' — *missed*'}`)
          .join('\n'),
      },
    },
    {
      type: 'context',
      elements: [
        {
          type: 'mrkdwn',
          text:
            missed.length === 0
              ? 'Every expected step was taken. Times count from the alert, as quell recorded the runs.'
              : `Steps missed: ${missed.map((s) => s.id).join(', ')}. Times count from the alert, as quell recorded the runs.`,
        },
      ],
    },
  ];
}

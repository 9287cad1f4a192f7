/**
 * `./run start` without Slack tokens and without a quell.yaml: quell's local console. The real quell
 * (createQuell, HTTP mode) runs on 127.0.0.1 with a generated signing secret and bot token; its Slack
 * Web API is the console's own (console-slack-api.ts) and the console signs slash commands and clicks
 * for its HTTP receiver, the path Slack uses. Engine, approvals, audit and store are quell's.
 *
 * AWS: a rehearsal world on a moto_server of its own when moto_server is on PATH (the default); the
 * accounts of QUELL_CONSOLE_CONFIG (a real account) when that is set; otherwise nothing, and the
 * banner says AWS calls will fail and how to fix it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createQuell, type Quell } from '../app.ts';
import { type Config, ConfigSchema, loadConfigFile, SECRET_HELP } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { PageInfo } from './console-page.ts';
import { type ConsoleServer, startConsoleServer } from './console-server.ts';
import { startConsoleSlackApi } from './console-slack-api.ts';
import { GameDays } from './game-day.ts';
import { loadScenarios } from './game-day-scenario.ts';
import { type RehearsalCloudFormation, startRehearsalCloudFormation } from './rehearsal-cloudformation.ts';
import { type RehearsalCloudTrail, startRehearsalCloudTrail } from './rehearsal-cloudtrail.ts';
import {
  findMotoServer,
  type MotoServer,
  REHEARSAL_CREDENTIALS,
  type RehearsalSeed,
  rehearsalAccount,
  seedRehearsal,
  startMotoServer,
} from './rehearsal-world.ts';

/** Which AWS the console talks to. */
export type ConsoleAws =
  | {
      kind: 'rehearsal';
      motoUrl: string;
      seed: RehearsalSeed;
      trail: RehearsalCloudTrail;
      cloudFormation: RehearsalCloudFormation;
    }
  | { kind: 'real'; accountIds: string[] }
  | { kind: 'none'; reason: string };

/** A running console. */
export interface RunningConsole {
  /** The URL to open once (with the one-time login token). */
  loginUrl: string;
  aws: ConsoleAws;
  quell: Quell;
  /** Game days, in the rehearsal world only. */
  gameDays: GameDays | undefined;
  stop(): Promise<void>;
}

/** The console's people: a responder and two approvers (so that nobody approves their own run). */
const REHEARSAL_USERS = [
  { id: 'U0RESP', name: 'riley', role: 'responder' },
  { id: 'U0LEAD1', name: 'lee', role: 'security lead, approver' },
  { id: 'U0LEAD2', name: 'sam', role: 'security lead, approver' },
];
const CHANNELS = [
  { id: 'C0INCIDENT', name: 'incident' },
  { id: 'C0DEV', name: 'dev' },
  { id: 'C0AUDIT', name: 'quell-audit' },
];

/** The console's built-in configuration (rehearsal accounts, its channels and people). */
export function rehearsalConfig(storageUrl: string): Config {
  return ConfigSchema.parse({
    slack: { mode: 'http', command: '/quell', auditChannel: 'C0AUDIT' },
    aws: { region: 'us-east-1' },
    accounts: [rehearsalAccount()],
    approvals: {
      approvers: ['U0LEAD1', 'U0LEAD2'],
      expiresIn: '15m',
      runbooks: { 'isolate-vpc': { required: 2 } },
    },
    channels: {
      C0INCIDENT: { runbooks: ['*'], accounts: ['*'] },
      C0DEV: { runbooks: ['trail', 'drift', 'key-age'], accounts: ['*'] },
    },
    storage: { url: storageUrl },
  });
}

/** Starts the console; prints its banner and login URL with `print`. */
export async function startConsole(
  env: NodeJS.ProcessEnv,
  log: Logger,
  print: (text: string) => void = (text) => process.stdout.write(`${text}\n`),
): Promise<RunningConsole> {
  const dir = mkdtempSync(join(tmpdir(), 'quell-console-'));
  const stops: (() => Promise<void>)[] = [async () => rmSync(dir, { recursive: true, force: true })];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  };
  try {
    let config: Config;
    let aws: ConsoleAws;
    let users = REHEARSAL_USERS;
    let channels = CHANNELS;
    if (env.QUELL_CONSOLE_CONFIG) {
      // A real account: the user's own file; only Slack is the console's.
      const file = loadConfigFile(env.QUELL_CONSOLE_CONFIG);
      config = { ...file, slack: { ...file.slack, mode: 'http' } };
      aws = { kind: 'real', accountIds: config.accounts.map((a) => a.id) };
      users = consoleUsersOf(config);
      channels = [
        ...Object.keys(config.channels),
        ...(config.slack.auditChannel ? [config.slack.auditChannel] : []),
      ]
        .filter((id, i, all) => all.indexOf(id) === i)
        .map((id) => ({ id, name: id }));
    } else {
      config = rehearsalConfig(`sqlite:${join(dir, 'console.db')}`);
      const moto = findMotoServer(env);
      aws = moto
        ? await startRehearsal(moto, stops)
        : {
            kind: 'none',
            reason: 'moto_server is not on PATH',
          };
      if (aws.kind === 'none') {
        // Nothing may leave the machine: the rehearsal accounts do not exist anywhere.
        pointAwsAt('http://127.0.0.1:9', {});
      }
    }

    const slack = await startConsoleSlackApi();
    stops.push(() => slack.close());
    const signingSecret = randomBytes(32).toString('hex');
    const botToken = `xoxb-console-${randomBytes(16).toString('hex')}`;
    const quell = await createQuell({
      config,
      secrets: { botToken, signingSecret },
      log,
      slackApiUrl: slack.apiUrl,
      port: 0,
      host: '127.0.0.1',
    });
    const { port: quellPort } = await quell.start();
    stops.push(() => quell.stop());
    let gameDays: GameDays | undefined;
    if (aws.kind === 'rehearsal') {
      const days = new GameDays({
        motoUrl: aws.motoUrl,
        seed: aws.seed,
        trail: aws.trail,
        cloudFormation: aws.cloudFormation,
        slack,
        scenarios: loadScenarios(),
        listRuns: () => quell.store.listRuns({ limit: 200 }),
        command: config.slack.command,
        log,
      });
      gameDays = days;
      stops.push(async () => days.stop());
    }
    const server = await startConsoleServer({
      slack,
      target: { eventsUrl: `http://127.0.0.1:${quellPort}/slack/events`, signingSecret },
      page: pageInfo(config, aws, users, channels),
      log,
      port: env.QUELL_CONSOLE_PORT ? Number(env.QUELL_CONSOLE_PORT) : 0,
      ...(gameDays ? { gameDays } : {}),
    });
    stops.push(() => server.close());
    print(bannerText(aws, server));
    return { loginUrl: server.loginUrl, aws, quell, gameDays, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** Starts moto and the CloudTrail endpoint, points quell's SDK clients at them and seeds the scenario. */
async function startRehearsal(binary: string, stops: (() => Promise<void>)[]): Promise<ConsoleAws> {
  const moto: MotoServer = await startMotoServer(binary);
  stops.push(() => moto.stop());
  const trail: RehearsalCloudTrail = await startRehearsalCloudTrail();
  stops.push(() => trail.close());
  const cloudFormation = await startRehearsalCloudFormation();
  stops.push(() => cloudFormation.close());
  pointAwsAt(moto.url, { cloudTrail: trail.url, cloudFormation: cloudFormation.url });
  const { seed, events } = await seedRehearsal(moto.url);
  trail.events.push(...events);
  return { kind: 'rehearsal', motoUrl: moto.url, seed, trail, cloudFormation };
}

// The SDK reads these when each client is built (AWS_ENDPOINT_URL and its per-service variants); the
// console is its own process, so setting them here affects only this quell.
function pointAwsAt(endpoint: string, services: { cloudTrail?: string; cloudFormation?: string }): void {
  process.env.AWS_ENDPOINT_URL = endpoint;
  if (services.cloudTrail) process.env.AWS_ENDPOINT_URL_CLOUDTRAIL = services.cloudTrail;
  else delete process.env.AWS_ENDPOINT_URL_CLOUDTRAIL;
  if (services.cloudFormation) process.env.AWS_ENDPOINT_URL_CLOUDFORMATION = services.cloudFormation;
  else delete process.env.AWS_ENDPOINT_URL_CLOUDFORMATION;
  process.env.AWS_ACCESS_KEY_ID = REHEARSAL_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = REHEARSAL_CREDENTIALS.secretAccessKey;
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
  process.env.AWS_REGION ??= 'us-east-1';
}

/** People of a real config: its approvers and break-glass users, and a responder who is neither. */
function consoleUsersOf(config: Config): PageInfo['users'] {
  const approvers = config.approvals.approvers.filter((id) => /^[UW]/.test(id));
  const list = [{ id: 'U0CONSOLE', name: 'you', role: 'responder' }];
  for (const id of approvers) list.push({ id, name: id, role: 'approver' });
  for (const id of config.approvals.breakGlass ?? []) {
    if (!list.some((u) => u.id === id)) list.push({ id, name: id, role: 'break-glass' });
  }
  return list;
}

/** The banner, the people and channels, and what to try. */
export function pageInfo(
  config: Config,
  aws: ConsoleAws,
  users: PageInfo['users'],
  channels: PageInfo['channels'],
): PageInfo {
  const command = config.slack.command;
  const connectSlack = [
    `SLACK_BOT_TOKEN: ${SECRET_HELP.SLACK_BOT_TOKEN}`,
    `SLACK_APP_TOKEN: ${SECRET_HELP.SLACK_APP_TOKEN}`,
    `SLACK_SIGNING_SECRET (slack.mode: http only): ${SECRET_HELP.SLACK_SIGNING_SECRET}`,
  ];
  if (aws.kind === 'rehearsal') {
    const s = aws.seed;
    return {
      banner: {
        kind: 'rehearsal',
        text: `REHEARSAL (moto at ${aws.motoUrl})`,
        detail: `No real AWS account is touched: account ${config.accounts[0]?.id} lives in a local moto_server that stops with the console.`,
      },
      command,
      users,
      channels,
      suggestions: [
        `${command} help`,
        `${command} trail key=${s.leakedKeyId} since=24h`,
        `${command} disable-key ${s.leakedKeyId} reason="key found in a public repo"`,
        `${command} isolate-instance ${s.instanceId}`,
        `${command} isolate-vpc ${s.vpcId}`,
        `${command} rotate-secret ${s.secretName} force=true`,
        `${command} key-age`,
        `${command} gameday leaked-key`,
      ],
      scenario: [
        `Leaked access key ${s.leakedKeyId} of IAM user ${s.leakedUser}, used from 203.0.113.77 in the last two hours (CloudTrail events recorded).`,
        `VPC ${s.vpcId} with security group ${s.openGroupId} open to 0.0.0.0/0 on ports 22 and 5432.`,
        `Instance ${s.instanceId} in that VPC, behind that group.`,
        `Secret ${s.secretName} (moto cannot run a rotation Lambda, so rotate it with force=true).`,
        'Switch "Acting as" to lee or sam to approve what riley asks for.',
        `Game days: ${command} gameday leaked-key | exposed-instance | tampered-stack injects an incident, times the team and posts a scorecard to its thread.`,
      ],
      connectSlack,
    };
  }
  if (aws.kind === 'real') {
    return {
      banner: {
        kind: 'real',
        text: `REAL ACCOUNT ${aws.accountIds.join(', ')}`,
        detail: 'Runbooks change this account for real. Every mutating runbook still needs its approvals.',
      },
      command,
      users,
      channels,
      suggestions: [`${command} help`, `${command} key-age`],
      scenario: config.accounts.map((a) => `${a.alias}: ${a.id} (${a.regions.join(', ')})`),
      connectSlack,
    };
  }
  return {
    banner: {
      kind: 'none',
      text: 'NO AWS: every AWS call will fail',
      detail: `${aws.reason}. Install moto with its server extra (pip install "moto[server]") for a rehearsal world, or set QUELL_CONSOLE_CONFIG to a config file with your account.`,
    },
    command,
    users,
    channels,
    suggestions: [`${command} help`],
    scenario: [
      'No AWS: commands are parsed, guarded and audited, and their plans fail at the first AWS call.',
    ],
    connectSlack,
  };
}

/** What the console prints once it is up (the login URL is printed here and nowhere else). */
function bannerText(aws: ConsoleAws, server: ConsoleServer): string {
  const line = '='.repeat(72);
  const which =
    aws.kind === 'rehearsal'
      ? `AWS: REHEARSAL (moto at ${aws.motoUrl}); no real account is touched.\n  Seeded leaked key: ${aws.seed.leakedKeyId}`
      : aws.kind === 'real'
        ? `AWS: REAL ACCOUNT ${aws.accountIds.join(', ')}: runbooks change it for real.`
        : `AWS: NONE (${aws.reason}): every AWS call will fail.\n  Fix: pip install "moto[server]" for a rehearsal, or set QUELL_CONSOLE_CONFIG to your config file.`;
  return [
    line,
    'quell console: no Slack tokens and no quell.yaml, so Slack is replaced by a local web page.',
    `  ${which}`,
    `  Open (once; the link logs you in): ${server.loginUrl}`,
    '  To connect real Slack, set the tokens the page lists and add a quell.yaml (see README).',
    line,
  ].join('\n');
}

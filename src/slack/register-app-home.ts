/**
 * The Home tab: published with views.publish when the user opens it (app_home_opened) and again after
 * each click on it. Approve, Deny and Mark reviewed go through the engine exactly as on a run's card;
 * approvers act from here on runs of any channel, which the approver check at click time allows.
 */

import type { App, webApi } from '@slack/bolt';
import { type ApproverDirectory, assertApprover } from '../approvals/approval-policy.ts';
import type { Logger } from '../logger.ts';
import type { Engine } from '../runbooks/engine/engine.ts';
import { createReminderSchedule } from '../schedule/reminder-slots.ts';
import type { RunRecord, Store } from '../store/store.ts';
import type { ActionRouter } from './action-router.ts';
import { type AppHomeInput, buildAppHome, HOME_ACTION, type ReminderSummaryView } from './build-app-home.ts';
import { formatError } from './format-error.ts';

/** What the Home tab needs. */
export interface AppHomeDeps {
  engine: Engine;
  store: Store;
  directory: ApproverDirectory;
  log: Logger;
}

/** Reads what the viewer's Home tab shows. */
export async function loadAppHome(deps: AppHomeDeps, viewer: string, notice?: string): Promise<AppHomeInput> {
  const { store, engine } = deps;
  const config = engine.config;
  // What the tab shows only: each of its buttons checks the approver again, at click time.
  const isApprover = await assertApprover(config, deps.directory, viewer, 'recent').then(
    () => true,
    () => false,
  );
  let awaitingViewer: RunRecord[] = [];
  let awaitingReview: RunRecord[] = [];
  if (isApprover) {
    const waiting = await store.listRuns({ states: ['awaiting_approval'], limit: 100 });
    const undecided = await Promise.all(
      waiting
        .filter((r) => r.requester !== viewer)
        .map(async (r) =>
          (await store.listDecisions(r.id)).some((d) => d.userId === viewer) ? undefined : r,
        ),
    );
    awaitingViewer = undecided.filter((r): r is RunRecord => r !== undefined);
    awaitingReview = (await store.listOwedReviews()).filter((r) => r.requester !== viewer);
  }
  const recentRuns = await store.listRuns({ requester: viewer, limit: 10 });
  const reminders: ReminderSummaryView[] = [];
  for (const reminder of config.reminders) {
    const schedule = createReminderSchedule(reminder, config.timezone);
    const last = await store.lastScheduleSlot(schedule.id);
    const summary = (last?.summary ?? null) as {
      at?: number;
      findings?: number;
      snoozed?: number;
      counts?: Record<string, number>;
      failedAccounts?: string[];
    } | null;
    reminders.push({
      schedule: schedule.id,
      cron: reminder.schedule,
      channel: reminder.channel,
      at: summary?.at ?? last?.claimedAt ?? null,
      findings: summary?.findings ?? null,
      snoozed: summary?.snoozed ?? null,
      counts: summary?.counts ?? {},
      failedAccounts: summary?.failedAccounts ?? [],
      pending: last !== undefined && last.finishedAt === null,
    });
  }
  return {
    viewer,
    isApprover,
    awaitingViewer,
    recentRuns,
    awaitingReview,
    reminders,
    notice,
    command: config.slack.command,
  };
}

/** Publishes the viewer's Home tab. */
export async function publishAppHome(
  client: webApi.WebClient,
  deps: AppHomeDeps,
  viewer: string,
  notice?: string,
): Promise<void> {
  const view = buildAppHome(await loadAppHome(deps, viewer, notice));
  // biome-ignore lint/suspicious/noExplicitAny: Slack validates the view's shape
  await client.views.publish({ user_id: viewer, view: view as any });
}

/** Registers the Home tab's event and buttons. */
export function registerAppHome(app: App, actions: ActionRouter, deps: AppHomeDeps): void {
  const { engine, log } = deps;
  const command = engine.config.slack.command;

  app.event('app_home_opened', async ({ event, client }) => {
    if (event.tab !== 'home') return;
    try {
      await publishAppHome(client, deps, event.user);
    } catch (err) {
      log.warn({ err }, 'could not publish the Home tab');
    }
  });

  const onClick = (
    act: (runId: string, user: string) => Promise<RunRecord>,
    done: (run: RunRecord) => string,
  ) =>
    (async ({ ack, body, action, client }) => {
      await ack();
      const runId = 'value' in action && typeof action.value === 'string' ? action.value : '';
      let notice: string;
      try {
        notice = done(await act(runId, body.user.id));
      } catch (error) {
        notice = formatError(error, log, command);
      }
      await publishAppHome(client, deps, body.user.id, notice).catch((err: unknown) =>
        log.warn({ err }, 'could not publish the Home tab'),
      );
    }) satisfies Parameters<App['action']>[1];

  actions.action(
    HOME_ACTION.approve,
    onClick(
      (runId, user) => engine.decide(runId, user, 'approve', null),
      (run) =>
        `:white_check_mark: Your approval of \`${run.id}\` is recorded; the run is ${run.state.replace(/_/g, ' ')}.`,
    ),
  );
  actions.action(
    HOME_ACTION.deny,
    onClick(
      (runId, user) => engine.decide(runId, user, 'deny', null),
      (run) => `:no_entry: You denied \`${run.id}\`.`,
    ),
  );
  actions.action(
    HOME_ACTION.review,
    onClick(
      (runId, user) => engine.review(runId, user, null),
      (run) => `:white_check_mark: \`${run.id}\` is marked reviewed.`,
    ),
  );
}

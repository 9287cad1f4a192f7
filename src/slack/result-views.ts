/**
 * What a runbook shows of a finished run beyond its card, keyed by runbook id: key-age's findings with
 * their Disable / Look up / Snooze buttons, paged into the run's thread. The card and the notifier stay
 * generic; a runbook with nothing more to show has no view, and a new one adds a view and a line where
 * the views are listed (app.ts). Views are Slack code (runbooks never import Bolt), so they live here.
 */
import type { Logger } from '../logger.ts';
import type { RunNotifier } from '../runbooks/engine/run-notifier.ts';
import type { RunRecord } from '../store/store.ts';

/** How the finished runs of one runbook are shown. */
export interface ResultView {
  /** The id of the runbook whose runs this view shows. */
  runbook: string;
  /** Shows a succeeded run's result in the thread of its card. */
  show(run: RunRecord): Promise<void>;
}

/** The views by runbook id; two views for one runbook are a wiring mistake. */
export function indexResultViews(views: readonly ResultView[]): ReadonlyMap<string, ResultView> {
  const byRunbook = new Map<string, ResultView>();
  for (const view of views) {
    if (byRunbook.has(view.runbook)) throw new Error(`two result views for runbook ${view.runbook}`);
    byRunbook.set(view.runbook, view);
  }
  return byRunbook;
}

/**
 * Wraps the run notifier so that a succeeded run's result view follows its last line ("Done: …") in the
 * card's thread, whichever way the run was started. A run without a card (a scheduled one) is shown by
 * whoever scheduled it, with the same view.
 */
export function withResultViews(
  notifier: RunNotifier,
  views: ReadonlyMap<string, ResultView>,
  log: Logger,
): RunNotifier {
  const shown = new Set<string>();
  return {
    ...notifier,
    async reply(run, text) {
      await notifier.reply(run, text);
      const view = views.get(run.runbook);
      if (!view || run.state !== 'succeeded' || !run.messageTs || shown.has(run.id)) return;
      shown.add(run.id);
      await view
        .show(run)
        .catch((err: unknown) => log.warn({ err, runId: run.id }, 'could not show the run result'));
    },
  };
}

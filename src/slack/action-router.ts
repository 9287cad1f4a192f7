/**
 * One Bolt listener for every button, dispatching on `action_id`. Bolt runs each incoming request
 * through every registered listener's matchers, so fifteen `app.action` listeners cost every slash
 * command fifteen matcher chains before its handler acks; measured with the ack benchmark, that was most
 * of quell's ack cost over a bare Bolt app. Handlers keep Bolt's own argument types.
 */
import type { AllMiddlewareArgs, App, Middleware, SlackActionMiddlewareArgs } from '@slack/bolt';

/** A button handler, as `app.action` would take it. */
export type ActionHandler = Middleware<SlackActionMiddlewareArgs>;

/** Registers button handlers by action id. */
export interface ActionRouter {
  action(actionId: string, handler: ActionHandler): void;
}

/** Installs the single block_actions listener on `app` and returns the router that feeds it. */
export function createActionRouter(app: App): ActionRouter {
  const handlers = new Map<string, ActionHandler>();
  app.action({ type: 'block_actions' }, async (args) => {
    const handler = handlers.get(args.action.action_id);
    if (handler) {
      await handler(args as unknown as SlackActionMiddlewareArgs & AllMiddlewareArgs);
      return;
    }
    // Not one of ours (or a forged id): acknowledge, do nothing.
    await args.ack();
  });
  return {
    action(actionId, handler) {
      if (handlers.has(actionId)) throw new Error(`two handlers for action ${actionId}`);
      handlers.set(actionId, handler);
    },
  };
}

/** Tells the person who clicked a button, privately, why nothing happened (best effort). */
import type { Logger } from '../logger.ts';

/** Posts `text` as an ephemeral reply through the click's response URL; a failure is only logged. */
export async function tellClicker(
  respond: (message: Record<string, unknown>) => Promise<unknown>,
  text: string,
  log: Logger,
): Promise<void> {
  try {
    await respond({ response_type: 'ephemeral', replace_original: false, text });
  } catch (err) {
    log.warn({ err }, 'could not tell the clicker');
  }
}

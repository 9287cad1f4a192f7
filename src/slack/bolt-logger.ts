/** Bolt's logger interface over quell's pino logger, with token-shaped text scrubbed from every line. */
import { type Logger as BoltLogger, LogLevel } from '@slack/bolt';
import { type Logger, scrubSecrets } from '../logger.ts';

/** Adapts pino to Bolt's Logger. Bolt's chatty info lines go to debug. */
export function createBoltLogger(log: Logger): BoltLogger {
  const child = log.child({ component: 'bolt' });
  let level: LogLevel = LogLevel.INFO;
  const text = (msg: unknown[]) =>
    scrubSecrets(
      msg
        .map((m) => (typeof m === 'string' ? m : m instanceof Error ? m.message : JSON.stringify(m)))
        .join(' '),
    );
  return {
    debug: (...msg: unknown[]) => child.debug(text(msg)),
    info: (...msg: unknown[]) => child.debug(text(msg)),
    warn: (...msg: unknown[]) => child.warn(text(msg)),
    error: (...msg: unknown[]) => child.error(text(msg)),
    setLevel: (l: LogLevel) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => undefined,
  };
}

/** `npm start`: the bot. */
import { QuellError } from './errors.ts';
import { scrubSecrets } from './logger.ts';
import { startBot } from './start-bot.ts';

try {
  await startBot();
} catch (error) {
  // Start-up failures (secrets that cannot be loaded, an unwritable database) are reported as one
  // readable message, never a stack trace that might quote a value.
  const message = error instanceof QuellError ? error.message : String((error as Error)?.message ?? error);
  process.stderr.write(`quell could not start: ${scrubSecrets(message)}\n`);
  process.exit(1);
}

/** `npm start`: the bot. */
import { startBot } from './start-bot.ts';

await startBot();

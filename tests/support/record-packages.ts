/**
 * A module hook for child processes (`node --import ./tests/support/record-packages.ts …`): appends the
 * name of each npm package the process loads, the first time it is resolved (by `import` or
 * `require`), to the file named by QUELL_RECORD_PACKAGES. A test reads the file while the process runs
 * to see what starting the bot, or one command, has loaded.
 */
import { appendFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const file = process.env.QUELL_RECORD_PACKAGES;
const seen = new Set<string>();

/** `@scope/name` or `name` of a resolved file URL inside node_modules, or undefined. */
function packageOf(url: string): string | undefined {
  const match = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  return match?.[1];
}

if (file) {
  registerHooks({
    resolve(specifier, context, nextResolve) {
      const resolved = nextResolve(specifier, context);
      const name = packageOf(resolved.url);
      if (name && !seen.has(name)) {
        seen.add(name);
        appendFileSync(file, `${name}\n`);
      }
      return resolved;
    },
  });
}

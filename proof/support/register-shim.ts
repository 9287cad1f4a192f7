/**
 * Loaded with `node --import ./proof/support/register-shim.ts`: tests/support helpers import `inject`
 * from vitest, which only works inside a vitest worker; outside one, `vitest` resolves to vitest-shim.ts.
 */
import { registerHooks } from 'node:module';

const shim = new URL('./vitest-shim.ts', import.meta.url).href;

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier === 'vitest') return { url: shim, shortCircuit: true };
    return nextResolve(specifier, context);
  },
});

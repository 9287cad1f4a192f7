/**
 * What tests/support needs from vitest when it runs outside vitest: `inject`, answered from the values
 * the proof's own set-up provided (the moto URL, the PostgreSQL cluster's URL). register-shim.ts points
 * the `vitest` specifier here.
 */
const provided = new Map<string, string>();

/** Makes `inject(key)` answer `value` (what vitest's globalSetup does with project.provide). */
export function provide(key: string, value: string): void {
  provided.set(key, value);
}

/** vitest's inject, for tests/support helpers imported by the proof. */
export function inject(key: string): string {
  const value = provided.get(key);
  if (value === undefined) throw new Error(`proof: nothing provided for inject('${key}')`);
  return value;
}

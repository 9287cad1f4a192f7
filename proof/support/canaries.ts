/**
 * Secret canaries: distinctive values planted as the bot token, the signing secret, the AWS secret access
 * key, the database password and a Secrets Manager secret value. Every part hands what quell wrote (log
 * lines, Slack calls, audit entries, files) to `scan`; a canary found anywhere is a leak.
 */

export interface CanaryScanner {
  /** Adds a canary (its name and value). */
  plant(name: string, value: string): void;
  /** Looks for every canary in `text`, which came from `where` (logs, slack, audit, files). */
  scan(where: string, text: string): void;
  /** Bytes scanned and leaks found, per place. */
  tally(): {
    canaries: string[];
    scanned: Record<string, number>;
    leaks: { where: string; canary: string }[];
  };
}

export function createCanaryScanner(): CanaryScanner {
  const canaries = new Map<string, string>();
  const scanned: Record<string, number> = {};
  const leaks: { where: string; canary: string }[] = [];
  return {
    plant(name, value) {
      if (value.length < 8) throw new Error(`canary ${name} is too short to be distinctive`);
      canaries.set(name, value);
    },
    scan(where, text) {
      scanned[where] = (scanned[where] ?? 0) + text.length;
      for (const [name, value] of canaries) {
        if (text.includes(value)) leaks.push({ where, canary: name });
      }
    },
    tally: () => ({ canaries: [...canaries.keys()], scanned, leaks }),
  };
}

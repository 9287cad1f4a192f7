/**
 * Strict CIDR parsing for user input (`allow=` of isolate-vpc): IPv4 in dotted decimal without leading
 * zeros, IPv6 in RFC 4291 text form, an explicit prefix length, and no host bits set. Everything is
 * returned in canonical form (RFC 5952 for IPv6) so that what the approver reads is what AWS receives.
 */
import { z } from 'zod';

/** A parsed network. */
export interface Cidr {
  version: 4 | 6;
  /** Canonical text, like `10.9.0.0/24` or `2001:db8::/32`. */
  cidr: string;
  prefix: number;
  /** How many addresses the network holds, as text (IPv6 counts do not fit a number). */
  size: string;
}

/** Why a CIDR was refused; `message` says what to write instead. */
export class CidrError extends Error {}

/** Parses `text` as an IPv4 or IPv6 CIDR; throws CidrError with a message a user can act on. */
export function parseCidr(text: string): Cidr {
  const shown = text.length > 60 ? `${text.slice(0, 60)}…` : text;
  const slash = text.indexOf('/');
  if (slash === -1) {
    throw new CidrError(
      `\`${shown}\` has no prefix length: write the network with one, like 10.9.0.0/24 (or /32 for one address)`,
    );
  }
  const address = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  const version = address.includes(':') ? 6 : 4;
  const maxPrefix = version === 4 ? 32 : 128;
  if (!/^(0|[1-9]\d{0,2})$/.test(prefixText) || Number(prefixText) > maxPrefix) {
    throw new CidrError(`\`${shown}\`: an IPv${version} prefix length is a number from 0 to ${maxPrefix}`);
  }
  const prefix = Number(prefixText);
  const bits = version === 4 ? parseIpv4(address, shown) : parseIpv6(address, shown);
  const width = BigInt(maxPrefix);
  const hostMask = (1n << (width - BigInt(prefix))) - 1n;
  if ((bits & hostMask) !== 0n) {
    const network = format(version, bits & ~hostMask);
    throw new CidrError(
      `\`${shown}\` has host bits set: the network is ${network}/${prefix} (or use /${maxPrefix} for that one address)`,
    );
  }
  return {
    version,
    cidr: `${format(version, bits)}/${prefix}`,
    prefix,
    size: (1n << (width - BigInt(prefix))).toString(),
  };
}

function parseIpv4(address: string, shown: string): bigint {
  const parts = address.split('.');
  if (parts.length !== 4) {
    throw new CidrError(`\`${shown}\`: an IPv4 address has four dot-separated numbers, like 10.9.0.0`);
  }
  let value = 0n;
  for (const part of parts) {
    // Leading zeros are refused: some tools read 010 as octal (8), others as decimal (10).
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) {
      throw new CidrError(
        `\`${shown}\`: \`${part.slice(0, 10)}\` is not an IPv4 number (0–255, no leading zeros)`,
      );
    }
    const n = Number(part);
    if (n > 255) throw new CidrError(`\`${shown}\`: ${n} is not an IPv4 number (each is 0–255)`);
    value = (value << 8n) | BigInt(n);
  }
  return value;
}

function parseIpv6(address: string, shown: string): bigint {
  if (address.includes('%'))
    throw new CidrError(`\`${shown}\`: a zone index (%…) has no place in a network ACL rule`);
  if (address.includes('.')) {
    throw new CidrError(
      `\`${shown}\`: write the IPv6 network in hexadecimal groups only (no embedded IPv4 form)`,
    );
  }
  const halves = address.split('::');
  if (halves.length > 2) throw new CidrError(`\`${shown}\`: \`::\` may appear only once in an IPv6 address`);
  const groupsOf = (half: string) => (half === '' ? [] : half.split(':'));
  const head = groupsOf(halves[0] ?? '');
  const tail = halves.length === 2 ? groupsOf(halves[1] ?? '') : [];
  for (const group of [...head, ...tail]) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(group)) {
      throw new CidrError(
        `\`${shown}\`: \`${group.slice(0, 10)}\` is not an IPv6 group (1–4 hexadecimal digits between colons)`,
      );
    }
  }
  const count = head.length + tail.length;
  if (halves.length === 1 && count !== 8) {
    throw new CidrError(`\`${shown}\`: an IPv6 address has 8 groups, or fewer with \`::\``);
  }
  if (halves.length === 2 && count > 7) {
    throw new CidrError(`\`${shown}\`: too many groups for an IPv6 address with \`::\``);
  }
  const groups = [...head, ...Array<string>(8 - count).fill('0'), ...tail];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g, 16)), 0n);
}

function format(version: 4 | 6, bits: bigint): string {
  if (version === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((bits >> shift) & 255n)).join('.');
  }
  const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((shift) => Number((bits >> shift) & 0xffffn));
  // RFC 5952: compress the longest run of two or more zero groups (the first one on a tie), lower case.
  let best = { start: -1, length: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length && j - i >= 2) best = { start: i, length: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.start === -1) return hex.join(':');
  const left = hex.slice(0, best.start).join(':');
  const right = hex.slice(best.start + best.length).join(':');
  return `${left}::${right}`;
}

/**
 * The `allow=` option: one forensic network that the quarantine still lets through. A /0 is refused
 * because it would make the quarantine allow everything.
 */
export const ForensicCidrSchema = z
  .string()
  .max(60, 'a CIDR is at most 60 characters long')
  .transform((text, ctx) => {
    try {
      const cidr = parseCidr(text);
      if (cidr.prefix === 0) {
        ctx.addIssue({
          code: 'custom',
          message: `${cidr.cidr} is every address: a quarantine may allow one forensic network at most, like 10.9.0.0/24`,
        });
        return z.NEVER;
      }
      return cidr;
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: error instanceof CidrError ? error.message : 'not a CIDR' });
      return z.NEVER;
    }
  });

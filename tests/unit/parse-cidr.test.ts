/**
 * Strict CIDR parsing for `allow=`: every valid network round-trips to one canonical text, and every
 * malformed one is refused with a message that says what to write instead.
 */
import { isIPv4, isIPv6 } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CidrError, ForensicCidrSchema, parseCidr } from '../../src/runbooks/parse-cidr.ts';

const ipv4 = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');

describe('parseCidr', () => {
  it('accepts IPv4 and IPv6 networks and returns them canonically', () => {
    expect(parseCidr('10.9.0.0/24')).toEqual({ version: 4, cidr: '10.9.0.0/24', prefix: 24, size: '256' });
    expect(parseCidr('203.0.113.7/32').size).toBe('1');
    expect(parseCidr('2001:DB8:0:0:0:0:0:0/32').cidr).toBe('2001:db8::/32');
    expect(parseCidr('2001:0db8:0000:0000:0001:0000:0000:0000/80').cidr).toBe('2001:db8:0:0:1::/80'); // the longest zero run is compressed;
    expect(parseCidr('fd00::/8').cidr).toBe('fd00::/8');
    expect(parseCidr('::/0').cidr).toBe('::/0');
    expect(parseCidr('2001:db8:1:2:3:4:5:6/128').cidr).toBe('2001:db8:1:2:3:4:5:6/128');
  });

  it.each([
    ['10.0.0.0/33', /prefix length is a number from 0 to 32/],
    ['300.0.0.0/8', /300 is not an IPv4 number/],
    ['10.0.0/8', /four dot-separated numbers/],
    ['010.0.0.0/8', /no leading zeros/],
    ['10.0.0.0/08', /prefix length/],
    ['10.0.0.5/24', /host bits set: the network is 10\.0\.0\.0\/24/],
    ['10.0.0.0', /no prefix length/],
    ['10.0.0.0/', /prefix length/],
    ['10.0.0.0/24/1', /prefix length/],
    ['2001:db8::/129', /from 0 to 128/],
    ['2001:db8:::/64', /IPv6 group|once/],
    ['2001:db8::1::/64', /may appear only once/],
    ['2001:db8:0:0:0:0:0/64', /8 groups/],
    ['1:2:3:4:5:6:7:8::/64', /too many groups/],
    ['2001:db8::g/128', /not an IPv6 group/],
    ['12345::/16', /not an IPv6 group/],
    ['fe80::1%eth0/64', /zone index/],
    ['::ffff:10.0.0.0/104', /no embedded IPv4/],
    ['2001:db8::1/64', /host bits set: the network is 2001:db8::\/64/],
    [' 10.0.0.0/8', /not an IPv4 number/],
    ['10.0.0.0/8 ', /prefix length/],
    ['prod; rm -rf /', /prefix length/],
  ])('refuses %s', (text, message) => {
    expect(() => parseCidr(text)).toThrow(CidrError);
    expect(() => parseCidr(text)).toThrow(message);
  });

  it('property: every IPv4 network round-trips to itself, and any host bit is refused', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 32 }), (n, prefix) => {
        const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
        const network = (n & mask) >>> 0;
        const text = `${ipv4(network)}/${prefix}`;
        const parsed = parseCidr(text);
        expect(parsed.cidr).toBe(text);
        expect(isIPv4(ipv4(network))).toBe(true);
        if (prefix < 32) {
          const host = (network | (1 << (31 - prefix))) >>> 0;
          expect(() => parseCidr(`${ipv4(host)}/${prefix}`)).toThrow(/host bits set/);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('property: any spelling of an IPv6 network parses to one canonical form that node accepts', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }),
        fc.integer({ min: 0, max: 128 }),
        fc.boolean(),
        (groups, prefix, upper) => {
          // Zero the host bits, then write the address out in full, with leading zeros, maybe in upper case.
          let bits = groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
          bits &= ~((1n << BigInt(128 - prefix)) - 1n);
          const full = Array.from({ length: 8 }, (_, i) =>
            Number((bits >> BigInt(112 - 16 * i)) & 0xffffn)
              .toString(16)
              .padStart(4, '0'),
          ).join(':');
          const parsed = parseCidr(`${upper ? full.toUpperCase() : full}/${prefix}`);
          const [address, length] = parsed.cidr.split('/');
          expect(isIPv6(address ?? '')).toBe(true);
          expect(Number(length)).toBe(prefix);
          expect(address).toBe(address?.toLowerCase());
          expect(parseCidr(parsed.cidr).cidr).toBe(parsed.cidr); // canonical is a fixed point
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('property: arbitrary text either parses canonically or fails with a CidrError, never anything else', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (text) => {
        try {
          expect(parseCidr(parseCidr(text).cidr).cidr).toBe(parseCidr(text).cidr);
        } catch (error) {
          expect(error).toBeInstanceOf(CidrError);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('the allow= schema refuses /0 (a quarantine that allows everything) and over-long text', () => {
    expect(ForensicCidrSchema.safeParse('0.0.0.0/0').success).toBe(false);
    expect(ForensicCidrSchema.safeParse('::/0').error?.issues[0]?.message).toMatch(/every address/);
    expect(ForensicCidrSchema.safeParse('1'.repeat(10_000)).success).toBe(false);
    expect(ForensicCidrSchema.parse('10.9.0.0/24').cidr).toBe('10.9.0.0/24');
  });
});

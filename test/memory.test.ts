import { expect } from 'chai';
import {
  BIOS_AREA_END,
  BIOS_AREA_START,
  E820_RAM,
  E820_RESERVED,
  EBDA_START,
  e820Map,
  type E820Entry,
} from '../src/memory/e820.js';
import { GuestMemory, GuestMemoryError } from '../src/memory/guest-memory.js';
import {
  GiB,
  HIGH_RAM_START,
  KiB,
  MAX_REGION,
  MiB,
  PCI_HOLE_START,
  formatSize,
  parseSize,
  ramRanges,
  type RamRange,
} from '../src/memory/layout.js';

type Interval = [number, number]; // [start, end)

/** Merges intervals into a sorted list of disjoint, non-touching ones. */
function union(intervals: readonly Interval[]): Interval[] {
  const sorted = [...intervals].filter(([s, e]) => e > s).sort((a, b) => a[0] - b[0]);
  const out: Interval[] = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** `from` minus `cut`. */
function subtract(from: readonly Interval[], cut: Interval): Interval[] {
  const out: Interval[] = [];
  for (const [s, e] of from) {
    if (cut[1] <= s || cut[0] >= e) out.push([s, e]);
    else {
      if (s < cut[0]) out.push([s, cut[0]]);
      if (cut[1] < e) out.push([cut[1], e]);
    }
  }
  return union(out);
}

const rangesOf = (r: readonly RamRange[]): Interval[] => r.map((x) => [x.gpa, x.gpa + x.size]);

describe('memory', () => {
  describe('ramRanges', () => {
    function check(size: number, expected: RamRange[]): void {
      const r = ramRanges(size);
      expect(r).to.deep.equal(expected);
      expect(r.reduce((n, x) => n + x.size, 0)).to.equal(size);
      for (const x of r) {
        expect(x.size).to.be.above(0).and.at.most(MAX_REGION);
        // Nothing in the PCI hole.
        expect(x.gpa + x.size <= PCI_HOLE_START || x.gpa >= HIGH_RAM_START, `0x${x.gpa.toString(16)}`).to.equal(true);
      }
    }

    it('puts small RAM in one range at 0', () => {
      check(64 * MiB, [{ gpa: 0, size: 64 * MiB }]);
    });

    it('keeps exactly MAX_REGION in one range', () => {
      check(2 * GiB, [{ gpa: 0, size: 2 * GiB }]);
    });

    it('splits low RAM above 2 GiB into MAX_REGION pieces', () => {
      check(2 * GiB + 4 * KiB, [
        { gpa: 0, size: 2 * GiB },
        { gpa: 2 * GiB, size: 4 * KiB },
      ]);
    });

    it('fills exactly 3 GiB below the PCI hole, with nothing above 4 GiB', () => {
      check(3 * GiB, [
        { gpa: 0, size: 2 * GiB },
        { gpa: 2 * GiB, size: 1 * GiB },
      ]);
    });

    it('moves RAM beyond 3 GiB above 4 GiB', () => {
      check(3 * GiB + 4 * KiB, [
        { gpa: 0, size: 2 * GiB },
        { gpa: 2 * GiB, size: 1 * GiB },
        { gpa: 4 * GiB, size: 4 * KiB },
      ]);
    });

    it('splits high RAM into MAX_REGION pieces too', () => {
      check(8 * GiB, [
        { gpa: 0, size: 2 * GiB },
        { gpa: 2 * GiB, size: 1 * GiB },
        { gpa: 4 * GiB, size: 2 * GiB },
        { gpa: 6 * GiB, size: 2 * GiB },
        { gpa: 8 * GiB, size: 1 * GiB },
      ]);
    });

    it('handles a large size with a ragged end', () => {
      const size = 100 * GiB + 12 * MiB;
      const r = ramRanges(size);
      expect(r.reduce((n, x) => n + x.size, 0)).to.equal(size);
      expect(r[r.length - 1]).to.deep.equal({ gpa: HIGH_RAM_START + 96 * GiB, size: 1 * GiB + 12 * MiB });
      for (let i = 1; i < r.length; i++) expect(r[i]!.gpa).to.be.at.least(r[i - 1]!.gpa + r[i - 1]!.size);
    });
  });

  describe('parseSize', () => {
    const cases: Array<[string, number]> = [
      ['1048576', 1048576],
      ['0', 0],
      ['4096B', 4096],
      ['65536K', 65536 * KiB],
      ['64k', 64 * KiB],
      ['512M', 512 * MiB],
      ['512m', 512 * MiB],
      ['2G', 2 * GiB],
      ['2g', 2 * GiB],
      ['1T', 1024 * GiB],
      ['1t', 1024 * GiB],
      ['512MiB', 512 * MiB],
      ['512MB', 512 * MiB],
      ['512mb', 512 * MiB],
      ['4KiB', 4 * KiB],
      ['2GiB', 2 * GiB],
      ['1.5G', 1.5 * GiB],
      ['0.5K', 512],
      ['2.25M', 2.25 * MiB],
      [' 256 M ', 256 * MiB],
      ['\t8G\n', 8 * GiB],
    ];
    for (const [text, bytes] of cases) {
      it(`reads ${JSON.stringify(text)} as ${bytes} bytes`, () => {
        expect(parseSize(text)).to.equal(bytes);
      });
    }

    it('rounds fractional byte counts to the nearest byte', () => {
      expect(parseSize('0.3K')).to.equal(307);
      expect(parseSize('1.0001K')).to.equal(1024);
    });

    const bad = ['', ' ', 'M', 'abc', '-1M', '+1M', '1X', '1.M', '.5G', '1e3', '0x10', '1MM', '1 2M', '1KB B', '1,5G', '1P', 'NaN', 'Infinity'];
    for (const text of bad) {
      it(`rejects ${JSON.stringify(text)} with a message that shows the expected form`, () => {
        expect(() => parseSize(text)).to.throw(RangeError, `cannot parse size "${text}"`);
        expect(() => parseSize(text)).to.throw(/K, M, G or T suffix \(e\.g\. 512M\)/);
      });
    }
  });

  describe('formatSize', () => {
    const cases: Array<[number, string]> = [
      [2 * GiB, '2G'],
      [1024 * GiB, '1024G'],
      [1536 * MiB, '1536M'],
      [64 * MiB, '64M'],
      [4 * KiB, '4K'],
      [1023 * KiB, '1023K'],
      [1000, '1000'],
      [1, '1'],
      [0, '0'],
    ];
    for (const [bytes, text] of cases) {
      it(`writes ${bytes} as ${text}`, () => {
        expect(formatSize(bytes)).to.equal(text);
      });
    }

    it('round-trips through parseSize', () => {
      for (const n of [0, 1, 4095, 4 * KiB, 5 * MiB + 4 * KiB, 3 * GiB, 7 * GiB + 1, 1024 * GiB]) {
        expect(parseSize(formatSize(n)), formatSize(n)).to.equal(n);
      }
    });
  });

  describe('GuestMemory', () => {
    const A = 0; // 64 KiB at 0
    const B = 0x10000; // 64 KiB right after A
    const C = 0x100000; // 4 KiB after a gap
    const H = 2 ** 32; // 4 KiB above 4 GiB
    const SIZES = { [A]: 0x10000, [B]: 0x10000, [C]: 0x1000, [H]: 0x1000 } as const;

    function make(): { mem: GuestMemory; bytes: Map<number, Uint8Array> } {
      const bytes = new Map<number, Uint8Array>();
      // Given out of order on purpose.
      const regions = [H, B, A, C].map((gpa) => {
        const buffer = new SharedArrayBuffer(SIZES[gpa]!);
        const u8 = new Uint8Array(buffer);
        for (let i = 0; i < u8.length; i++) u8[i] = (i * 7 + gpa / 0x1000) & 0xff;
        bytes.set(gpa, u8);
        return { gpa, buffer };
      });
      return { mem: new GuestMemory(regions), bytes };
    }

    const snapshot = (bytes: Map<number, Uint8Array>): Uint8Array[] => [...bytes.values()].map((b) => b.slice());

    it('adds up its size and describes its regions in address order', () => {
      const { mem, bytes } = make();
      expect(mem.size).to.equal(0x10000 + 0x10000 + 0x1000 + 0x1000);
      const d = mem.descriptors();
      expect(d.map((r) => r.gpa)).to.deep.equal([A, B, C, H]);
      expect(d.map((r) => r.buffer)).to.deep.equal([A, B, C, H].map((g) => bytes.get(g)!.buffer));
    });

    it('accepts adjacent regions and rejects overlapping ones', () => {
      const r = (gpa: number, n: number): { gpa: number; buffer: SharedArrayBuffer } => ({ gpa, buffer: new SharedArrayBuffer(n) });
      expect(() => new GuestMemory([r(0, 0x1000), r(0x1000, 0x1000)])).to.not.throw();
      expect(() => new GuestMemory([r(0, 0x2000), r(0x1000, 0x1000)])).to.throw(RangeError, 'guest memory regions overlap');
      expect(() => new GuestMemory([r(0x1000, 0x1000), r(0, 0x1001)])).to.throw(RangeError, 'guest memory regions overlap');
      expect(() => new GuestMemory([r(0x5000, 0x1000), r(0x5000, 0x1000)])).to.throw(RangeError, 'guest memory regions overlap');
      expect(() => new GuestMemory([r(0, 0x1000), r(0x8000, 0x1000), r(0x7fff, 2)])).to.throw(RangeError, 'guest memory regions overlap');
    });

    it('reads each region at its own guest-physical address', () => {
      const { mem, bytes } = make();
      for (const gpa of [A, B, C, H]) {
        const u8 = bytes.get(gpa)!;
        expect(mem.readU8(gpa)).to.equal(u8[0]);
        expect(mem.readU8(gpa + u8.length - 1)).to.equal(u8[u8.length - 1]);
        expect(Array.from(mem.read(gpa + 8, 16))).to.deep.equal(Array.from(u8.subarray(8, 24)));
      }
    });

    it('writes land in the right region at the right offset', () => {
      const { mem, bytes } = make();
      mem.write(B + 0x20, Uint8Array.from([1, 2, 3]));
      mem.writeU8(H + 0xfff, 0x77);
      mem.fill(C + 0x10, 4, 0xee);
      expect(Array.from(bytes.get(B)!.subarray(0x20, 0x23))).to.deep.equal([1, 2, 3]);
      expect(bytes.get(H)![0xfff]).to.equal(0x77);
      expect(Array.from(bytes.get(C)!.subarray(0x10, 0x14))).to.deep.equal([0xee, 0xee, 0xee, 0xee]);
      mem.fill(C, 2);
      expect(Array.from(bytes.get(C)!.subarray(0, 2))).to.deep.equal([0, 0]);
    });

    it('view is live: it writes through to and sees later changes in the buffer', () => {
      const { mem, bytes } = make();
      const v = mem.view(C + 0x100, 8);
      expect(v.buffer).to.equal(bytes.get(C)!.buffer);
      v[0] = 0xaa;
      expect(bytes.get(C)![0x100]).to.equal(0xaa);
      bytes.get(C)![0x101] = 0xbb;
      expect(v[1]).to.equal(0xbb);
      mem.writeU8(C + 0x102, 0xcc);
      expect(v[2]).to.equal(0xcc);
    });

    it('read copies: later changes to guest RAM do not show in it, nor its changes in RAM', () => {
      const { mem, bytes } = make();
      const copy = mem.read(C + 0x100, 8);
      expect(copy.buffer).to.not.equal(bytes.get(C)!.buffer);
      const before = copy[0];
      mem.writeU8(C + 0x100, (before! + 1) & 0xff);
      expect(copy[0]).to.equal(before);
      copy[1] = 0x5a;
      expect(mem.readU8(C + 0x101)).to.not.equal(0x5a);
    });

    it('reads and writes little-endian u16, u32 and u64', () => {
      const { mem, bytes } = make();
      mem.writeU16(A + 0x10, 0xbeef);
      expect(Array.from(bytes.get(A)!.subarray(0x10, 0x12))).to.deep.equal([0xef, 0xbe]);
      expect(mem.readU16(A + 0x10)).to.equal(0xbeef);

      mem.writeU32(A + 0x21, 0x12345678); // unaligned on purpose
      expect(Array.from(bytes.get(A)!.subarray(0x21, 0x25))).to.deep.equal([0x78, 0x56, 0x34, 0x12]);
      expect(mem.readU32(A + 0x21)).to.equal(0x12345678);

      mem.writeU64(H + 0x40, 0x0102030405060708n);
      expect(Array.from(bytes.get(H)!.subarray(0x40, 0x48))).to.deep.equal([8, 7, 6, 5, 4, 3, 2, 1]);
      expect(mem.readU64(H + 0x40)).to.equal(0x0102030405060708n);
    });

    it('returns u32 and u64 reads unsigned and wraps out-of-range writes', () => {
      const { mem } = make();
      mem.writeU32(A, -1);
      expect(mem.readU32(A)).to.equal(0xffffffff);
      mem.writeU32(A, 0x1_0000_0005);
      expect(mem.readU32(A)).to.equal(5);
      mem.writeU64(A, -1n);
      expect(mem.readU64(A)).to.equal(0xffffffffffffffffn);
      mem.writeU64(A, (1n << 64n) + 9n);
      expect(mem.readU64(A)).to.equal(9n);
      mem.writeU16(A, 0x12345);
      expect(mem.readU16(A)).to.equal(0x2345);
      mem.writeU8(A, 0x1ff);
      expect(mem.readU8(A)).to.equal(0xff);
    });

    it('accepts accesses that end exactly at a region end, and empty ones inside a region', () => {
      const { mem } = make();
      expect(() => mem.readU64(B - 8)).to.not.throw();
      expect(() => mem.readU32(C + 0xffc)).to.not.throw();
      expect(mem.read(H + 0x1000 - 3, 3)).to.have.length(3);
      expect(mem.read(C + 0x10, 0)).to.have.length(0);
      expect(mem.contains(A, 0x10000)).to.equal(true);
      expect(mem.contains(H, 0x1000)).to.equal(true);
    });

    describe('bounds checks', () => {
      // [description, gpa, length]: none of these lies inside one region.
      const badRanges: Array<[string, number, number]> = [
        ['starts in the gap after B', B + 0x10000, 1],
        ['starts just below C', C - 1, 1],
        ['ends one byte past C', C + 0xfff, 2],
        ['ends one byte past the high region', H + 0xffc, 5],
        ['straddles the adjacent regions A and B', B - 2, 4],
        ['covers A and B entirely', A, 0x20000],
        ['starts below 4 GiB and ends in the high region', H - 4, 8],
        ['is at a negative address', -1, 1],
        ['is at -0x1000', -0x1000, 0x10],
        ['is at NaN', NaN, 1],
        ['is at a non-integer address', 0.5, 1],
        ['is at +Infinity', Infinity, 1],
        ['is at 2^60', 2 ** 60, 1],
        ['is at 2^53 (not a safe integer)', 2 ** 53, 1],
        ['has a negative length', A + 0x100, -1],
        ['has a NaN length', A + 0x100, NaN],
        ['has a non-integer length', A + 0x100, 1.5],
        ['has an infinite length', A + 0x100, Infinity],
        ['has a length of 2^60', A, 2 ** 60],
        ['is far above all RAM', 2 ** 40, 1],
      ];

      for (const [what, gpa, length] of badRanges) {
        it(`rejects a range that ${what}, touching nothing`, () => {
          const { mem, bytes } = make();
          const before = snapshot(bytes);
          const expectError = (fn: () => unknown, label: string): void => {
            let thrown: unknown;
            try {
              fn();
            } catch (e) {
              thrown = e;
            }
            expect(thrown, label).to.be.instanceOf(GuestMemoryError);
          };
          expect(mem.contains(gpa, length)).to.equal(false);
          expectError(() => mem.view(gpa, length), 'view');
          expectError(() => mem.read(gpa, length), 'read');
          expectError(() => mem.fill(gpa, length, 0x99), 'fill');
          // write takes its length from the data; use it where the length is a real one.
          if (Number.isSafeInteger(length) && length > 0 && length <= 0x20000) {
            expectError(() => mem.write(gpa, new Uint8Array(length).fill(0x99)), 'write');
          }
          expect(snapshot(bytes)).to.deep.equal(before);
        });
      }

      const badAddresses: Array<[string, number]> = [
        ['in the gap between B and C', B + 0x10000],
        ['negative', -1],
        ['NaN', NaN],
        ['non-integer', A + 0.5],
        ['2^60', 2 ** 60],
        ['Infinity', Infinity],
      ];
      for (const [what, gpa] of badAddresses) {
        it(`rejects every sized accessor at an address that is ${what}, touching nothing`, () => {
          const { mem, bytes } = make();
          const before = snapshot(bytes);
          const accessors: Array<[string, () => unknown]> = [
            ['readU8', () => mem.readU8(gpa)],
            ['readU16', () => mem.readU16(gpa)],
            ['readU32', () => mem.readU32(gpa)],
            ['readU64', () => mem.readU64(gpa)],
            ['writeU8', () => mem.writeU8(gpa, 0x99)],
            ['writeU16', () => mem.writeU16(gpa, 0x9999)],
            ['writeU32', () => mem.writeU32(gpa, 0x99999999)],
            ['writeU64', () => mem.writeU64(gpa, 0x9999999999999999n)],
          ];
          for (const [name, fn] of accessors) expect(fn, name).to.throw(GuestMemoryError);
          expect(snapshot(bytes)).to.deep.equal(before);
        });
      }

      it('rejects sized accesses that run off the end of a region or across into the next', () => {
        const { mem, bytes } = make();
        const before = snapshot(bytes);
        // Each accessor, placed so its last byte is one past a region end.
        const ends = [B, C + 0x1000, H + 0x1000]; // B's start is A's end: adjacent, still two regions
        for (const end of ends) {
          expect(() => mem.readU16(end - 1), `readU16 0x${(end - 1).toString(16)}`).to.throw(GuestMemoryError);
          expect(() => mem.readU32(end - 3)).to.throw(GuestMemoryError);
          expect(() => mem.readU64(end - 7)).to.throw(GuestMemoryError);
          expect(() => mem.writeU16(end - 1, 0x9999)).to.throw(GuestMemoryError);
          expect(() => mem.writeU32(end - 2, 0x99999999)).to.throw(GuestMemoryError);
          expect(() => mem.writeU64(end - 1, -1n)).to.throw(GuestMemoryError);
        }
        expect(snapshot(bytes)).to.deep.equal(before);
      });

      it('says which range was refused, in hex, and is a RangeError', () => {
        const { mem } = make();
        let thrown: unknown;
        try {
          mem.read(C + 0xff0, 0x20);
        } catch (e) {
          thrown = e;
        }
        expect(thrown).to.be.instanceOf(GuestMemoryError).and.to.be.instanceOf(RangeError);
        const e = thrown as GuestMemoryError;
        expect(e.name).to.equal('GuestMemoryError');
        expect(e.gpa).to.equal(C + 0xff0);
        expect(e.length).to.equal(0x20);
        expect(e.message).to.equal('guest-physical range 0x100ff0+0x20 is not guest RAM');
      });
    });
  });

  describe('e820Map', () => {
    function checkMap(ramSize: number): E820Entry[] {
      const map = e820Map(ramSize);
      for (const e of map) {
        expect(e.size, `entry at 0x${e.addr.toString(16)}`).to.be.above(0);
        expect([E820_RAM, E820_RESERVED]).to.include(e.type);
      }
      for (let i = 1; i < map.length; i++) {
        expect(map[i]!.addr, 'sorted, non-overlapping').to.be.at.least(map[i - 1]!.addr + map[i - 1]!.size);
      }
      // RAM entries cover exactly the RAM given, less the legacy hole from
      // the EBDA to 1 MiB (reserved or VGA/option-ROM space).
      const ram = union(map.filter((e) => e.type === E820_RAM).map((e): Interval => [e.addr, e.addr + e.size]));
      expect(ram).to.deep.equal(subtract(union(rangesOf(ramRanges(ramSize))), [EBDA_START, BIOS_AREA_END]));
      expect(ram.reduce((n, [s, e]) => n + e - s, 0)).to.equal(ramSize - (BIOS_AREA_END - EBDA_START));
      // The EBDA and the BIOS area (where firmware tables live) are reserved.
      expect(map).to.deep.include({ addr: EBDA_START, size: 0xa0000 - EBDA_START, type: E820_RESERVED });
      expect(map).to.deep.include({ addr: BIOS_AREA_START, size: BIOS_AREA_END - BIOS_AREA_START, type: E820_RESERVED });
      // No RAM in the PCI hole.
      for (const [s, e] of ram) expect(e <= PCI_HOLE_START || s >= HIGH_RAM_START).to.equal(true);
      return map;
    }

    it('describes 64 MiB: conventional memory, EBDA, BIOS area, RAM from 1 MiB', () => {
      expect(checkMap(64 * MiB)).to.deep.equal([
        { addr: 0, size: 0x9fc00, type: E820_RAM },
        { addr: 0x9fc00, size: 0x400, type: E820_RESERVED },
        { addr: 0xe0000, size: 0x20000, type: E820_RESERVED },
        { addr: 0x100000, size: 63 * MiB, type: E820_RAM },
      ]);
    });

    it('describes the smallest RAM size allowed (4 MiB)', () => {
      checkMap(4 * MiB);
    });

    it('describes 3 GiB with all RAM below the PCI hole', () => {
      const map = checkMap(3 * GiB);
      expect(map[map.length - 1]).to.deep.equal({ addr: 0x100000, size: 3 * GiB - MiB, type: E820_RAM });
      expect(map.some((e) => e.addr >= HIGH_RAM_START)).to.equal(false);
    });

    it('describes 8 GiB with 5 GiB of it above 4 GiB', () => {
      const map = checkMap(8 * GiB);
      expect(map.slice(-2)).to.deep.equal([
        { addr: 0x100000, size: 3 * GiB - MiB, type: E820_RAM },
        { addr: 4 * GiB, size: 5 * GiB, type: E820_RAM },
      ]);
    });

    it('describes sizes just either side of the PCI hole', () => {
      checkMap(3 * GiB - 4 * KiB);
      checkMap(3 * GiB + 4 * KiB);
    });
  });
});

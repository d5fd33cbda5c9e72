import { expect } from 'chai';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestMemory } from '../src/memory/guest-memory.js';
import { GuestRanges } from '../src/virtio/guest-ranges.js';
import { fakeVirtioFunction, ring, GSI } from './helpers/virtio-driver.js';
import { VirtioBar, VIRTIO_BAR_SIZE, LOGGED_FAILURES } from '../src/virtio/pci-transport.js';
import { VirtioRng, VIRTIO_RNG_TYPE } from '../src/virtio/rng.js';
import { VirtioStatus, VirtqDesc } from '../src/virtio/constants.js';
import { PciCfg, PciCommand } from '../src/devices/pci-config.js';
import { PciHost, pciConfigAddress } from '../src/devices/pci-host.js';
import { PciMmioWindow, PCI_MMIO_BASE } from '../src/devices/pci-mmio-window.js';
import { executeBlkRequest, BlkRequestType, BlkStatus } from '../src/virtio/blk-request.js';
import { openDiskImages, closeDiskImages } from '../src/vm/disk-images.js';
import { NodevisorError } from '../src/kvm/errors.js';

/** Model tests of the virtio PCI transport, MSI-X, virtio-rng and virtio-blk requests (no KVM). */
const { used: USED } = ring(0);
const setup = () => fakeVirtioFunction(VIRTIO_RNG_TYPE, (ctx) => new VirtioRng(ctx));

describe('virtio PCI transport (model)', () => {
  it('presents a modern virtio function: IDs, BAR 0 pre-programmed and decoding, capabilities', () => {
    const { t } = setup();
    expect(t.configRead(PciCfg.VendorId, 2)).to.equal(0x1af4);
    expect(t.configRead(PciCfg.DeviceId, 2)).to.equal(0x1044);
    expect(t.configRead(PciCfg.Revision, 1)).to.equal(1);
    expect(t.config.barAddress(0)).to.equal(PCI_MMIO_BASE);
    expect(t.config.command() & PciCommand.Memory).to.not.equal(0);
    expect(t.configRead(PciCfg.InterruptPin, 1)).to.equal(1);
    expect(t.configRead(PciCfg.InterruptLine, 1)).to.equal(GSI);
    // BAR sizing: all ones reads back the size mask.
    t.configWrite(PciCfg.Bar0, 4, 0xffffffff);
    expect(t.configRead(PciCfg.Bar0, 4)).to.equal((~(VIRTIO_BAR_SIZE - 1) & 0xfffffff0) >>> 0);
    t.configWrite(PciCfg.Bar0, 4, PCI_MMIO_BASE);
    const caps: Array<[number, number]> = [];
    for (let i = 0; ; i++) {
      const at = t.config.capabilityOffset(i);
      if (at === undefined) break;
      caps.push([t.configRead(at, 1), t.configRead(at, 1) === 0x09 ? t.configRead(at + 3, 1) : -1]);
    }
    expect(caps).to.deep.equal([
      [0x11, -1],
      [0x09, 1],
      [0x09, 3],
      [0x09, 4],
      [0x09, 2],
    ]);
  });

  it('is reached through the host bridge and the MMIO window at its BAR', () => {
    const { t } = setup();
    const host = new PciHost(PciHost.allocate());
    host.register(3, 0, t);
    host.write(0, 4, pciConfigAddress(0, 3, 0, 0), 0);
    expect(host.read(4, 4, 0)).to.equal(0x10441af4);
    const win = new PciMmioWindow();
    win.add(t.config, 0, VIRTIO_BAR_SIZE, t.bar);
    expect(win.read(0x12, 2, 0)).to.equal(1); // num_queues
    t.configWrite(PciCfg.Bar0, 4, PCI_MMIO_BASE + 0x100000); // the guest moves it
    expect(win.read(0x12, 2, 0)).to.equal(0xffff);
    expect(win.read(0x100012, 2, 0)).to.equal(1);
    t.configWrite(PciCfg.Command, 2, 0); // decoding off
    expect(win.read(0x100012, 2, 0)).to.equal(0xffff);
  });

  it('negotiates features: VERSION_1 required, nothing beyond what is offered', () => {
    const { w8, w32, r } = setup();
    w32(0x00, 1);
    expect(r(0x04) & 1).to.equal(1); // VERSION_1 (bit 32)
    w8(0x14, 3);
    w32(0x08, 1);
    w32(0x0c, 0); // no VERSION_1
    w8(0x14, 3 | VirtioStatus.FeaturesOk);
    expect(r(0x14, 1) & VirtioStatus.FeaturesOk).to.equal(0);
    w32(0x0c, 1 | 2); // an unoffered bit 33
    w8(0x14, 3 | VirtioStatus.FeaturesOk);
    expect(r(0x14, 1) & VirtioStatus.FeaturesOk).to.equal(0);
    w32(0x0c, 1);
    w8(0x14, 3 | VirtioStatus.FeaturesOk);
    expect(r(0x14, 1) & VirtioStatus.FeaturesOk).to.equal(VirtioStatus.FeaturesOk);
  });

  it('reads feature words past the second as 0 and ignores writes to them, whatever 32-bit select the driver wrote (4.1.4.3)', () => {
    const { state, w8, w32, r } = setup();
    w8(0x14, 3);
    const regs = new Int32Array(state.regs);
    for (const select of [2, 0x7fffffff, 0x80000000, 0xfffffffd, 0xffffffff]) {
      const before = Array.from(regs);
      w32(0x00, select);
      expect(r(0x00)).to.equal(select);
      expect(r(0x04), `device feature word ${select}`).to.equal(0);
      w32(0x08, select);
      w32(0x0c, 0xffffffff);
      expect(r(0x08)).to.equal(select);
      expect(r(0x0c), `driver feature word ${select}`).to.equal(0);
      // Only the two select registers (words 2 and 3) changed: no lock, feature or status word was written.
      expect(Array.from(regs).filter((v, i) => i !== 2 && i !== 3 && v !== before[i]), `select ${select}`).to.deep.equal([]);
    }
    // Reading the ISR takes the interrupt lock: it must still be free.
    expect(r(VirtioBar.Isr, 1)).to.equal(0);
    w32(0x08, 1);
    expect(r(0x0c)).to.equal(0);
  });

  it('lets no register write of any width, offset or value reach a lock word, and never throws', () => {
    const { state, t, w8, r } = setup();
    const locks = (): number[] => [
      ...new Int32Array(state.regs).subarray(0, 2), // the register lock and the interrupt lock
      new Int32Array(state.msix.regs)[0]!,
      new Int32Array(state.config.regs)[0]!,
      ...state.queues.map((q) => new Int32Array(q.regs)[0]!),
    ];
    const regions: Array<[number, number]> = [[0, 0x40], [VirtioBar.Isr, 8], [VirtioBar.Device, 0x40], [VirtioBar.Notify, 0x20], [VirtioBar.MsixTable, 0x40], [VirtioBar.MsixPba, 0x10], [VIRTIO_BAR_SIZE - 8, 8]];
    const values = [0, 1, 2, 0x7fffffff, 0x80000000, 0xfffffffd, 0xffffffff];
    for (const [start, length] of regions) {
      for (let off = start; off < start + length; off++) {
        for (const size of [1, 2, 4] as const) {
          for (const v of values) {
            t.bar.write(off, size, size === 4 ? v : v & ((1 << (8 * size)) - 1), 0);
            t.bar.read(off, size, 0);
            expect(locks(), `after a ${size}-byte write of 0x${v.toString(16)} at 0x${off.toString(16)}`).to.deep.equal(new Array(locks().length).fill(0));
          }
        }
      }
    }
    for (let off = 0; off < 256; off++) {
      for (const size of [1, 2, 4] as const) {
        for (const v of values) {
          t.configWrite(off, size, v);
          t.configRead(off, size);
        }
      }
    }
    expect(locks()).to.deep.equal(new Array(locks().length).fill(0));
    // And the device still answers: a reset works.
    w8(0x14, 0);
    expect(r(0x14, 1)).to.equal(0);
  });

  it('serves virtio-rng requests and interrupts on INTx; reading the ISR lowers the line', () => {
    const { mem, bringUp, offer, levels, r } = setup();
    bringUp({ lo: 0, hi: 1 });
    offer(0, 0x8000, 64);
    expect(mem.readU16(USED + 2)).to.equal(1);
    expect(mem.readU32(USED + 8)).to.equal(64);
    expect(Array.from(mem.read(0x8000, 64)).some((b) => b !== 0)).to.equal(true);
    expect(levels).to.deep.equal([[GSI, true]]);
    expect(r(VirtioBar.Isr, 1)).to.equal(1);
    expect(levels).to.deep.equal([
      [GSI, true],
      [GSI, false],
    ]);
    expect(r(VirtioBar.Isr, 1)).to.equal(0);
  });

  it('sends MSI-X messages per queue vector, holds them while masked and sends them on unmask', () => {
    const { t, bringUp, offer, msis, levels, w16, w32 } = setup();
    const cap = t.config.capabilityOffset(0)!;
    t.configWrite(cap + 2, 2, 0x8000); // MSI-X enable
    w32(VirtioBar.MsixTable + 16, 0xfee00000);
    w32(VirtioBar.MsixTable + 16 + 8, 0x41);
    bringUp({ lo: 0, hi: 1 });
    w16(0x16, 0);
    w16(0x1a, 1); // queue 0 -> vector 1
    offer(0, 0x8000, 16);
    expect(msis).to.deep.equal([]); // vector 1 still masked
    expect(t.bar.read(VirtioBar.MsixPba, 4, 0)).to.equal(2);
    w32(VirtioBar.MsixTable + 16 + 12, 0); // unmask
    expect(msis).to.deep.equal([[0xfee00000, 0, 0x41]]);
    expect(t.bar.read(VirtioBar.MsixPba, 4, 0)).to.equal(0);
    offer(1, 0x8100, 16);
    expect(msis).to.have.length(2);
    expect(levels).to.deep.equal([]); // never INTx while MSI-X is on
  });

  it('marks the device DEVICE_NEEDS_RESET, leaving the queue off, when the driver enables rings that are not in guest RAM', () => {
    const { bringUp, offer, r, w8, w16, w32, logs, levels, mem } = setup();
    bringUp({ lo: 0, hi: 1 }, []);
    w16(0x16, 0);
    w16(0x18, 8);
    w32(0x20, ring(0).desc);
    w32(0x28, ring(0).avail);
    w32(0x30, 0xfee00000); // the used ring on the LAPIC page
    w16(0x1c, 1);
    expect(r(0x1c, 2), 'queue enable').to.equal(0);
    expect(r(0x14, 1) & VirtioStatus.DeviceNeedsReset).to.equal(VirtioStatus.DeviceNeedsReset);
    expect(logs).to.deep.equal(['virtio-rng: queue 0: the used ring at 0xfee00000 (0x46 bytes for 8 entries) is not in guest RAM; the device needs a reset']);
    expect(levels).to.deep.equal([[GSI, true]]); // configuration change
    offer(0, 0x8000, 16); // a notify now is ignored: nothing is used
    expect(mem.readU16(USED + 2)).to.equal(0);
    w8(0x14, 0);
    bringUp({ lo: 0, hi: 1 });
    offer(0, 0x8000, 16);
    expect(mem.readU16(USED + 2), 'served after a reset (both offers: the driver kept its avail ring)').to.equal(2);
  });

  it('logs the first 8 failures of a device only, however often the driver breaks and resets it', () => {
    const { bringUp, offer, r, w8, logs } = setup();
    for (let i = 0; i < 20; i++) {
      w8(0x14, 0);
      bringUp({ lo: 0, hi: 1 });
      offer(0, 0x8000, 16, VirtqDesc.Write | VirtqDesc.Next); // a loop
      expect(r(0x14, 1) & VirtioStatus.DeviceNeedsReset, `failure ${i}`).to.equal(VirtioStatus.DeviceNeedsReset);
    }
    expect(logs).to.have.length(LOGGED_FAILURES);
    expect(logs[LOGGED_FAILURES - 1]).to.match(/the device needs a reset \(failure 8: later ones of this device are not logged\)$/);
  });

  it('marks the device DEVICE_NEEDS_RESET on a malformed chain and recovers after reset', () => {
    const { bringUp, offer, r, w8, logs, levels, mem } = setup();
    bringUp({ lo: 0, hi: 1 });
    offer(0, 0x8000, 16, VirtqDesc.Write | VirtqDesc.Next); // next = itself: a loop
    expect(r(0x14, 1) & VirtioStatus.DeviceNeedsReset).to.equal(VirtioStatus.DeviceNeedsReset);
    expect(logs.join()).to.match(/loop/);
    expect(levels).to.deep.equal([[GSI, true]]);
    expect(r(VirtioBar.Isr, 1)).to.equal(2); // configuration change
    expect(mem.readU16(USED + 2)).to.equal(0);
    w8(0x14, 0); // reset
    expect(r(0x14, 1)).to.equal(0);
    expect(r(0x1c, 2)).to.equal(0); // queue disabled
  });
});

describe('virtio-blk requests on an image file (model)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nodevisor-blk-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'disk.img');
  const mem = new GuestMemory([{ gpa: 0, buffer: new SharedArrayBuffer(0x40000) }]);
  const ram = new GuestRanges(mem);
  const header = (type: number, sector: number): void => {
    mem.writeU32(0x1000, type);
    mem.writeU32(0x1004, 0);
    mem.writeU64(0x1008, BigInt(sector));
  };
  const chain = (data: { addr: number; len: number; write: boolean } | null, readableExtra: Array<{ addr: number; len: number }> = []) => {
    const readable = [{ addr: 0x1000, len: 16 }, ...readableExtra];
    const writable: Array<{ addr: number; len: number }> = [];
    if (data && !data.write) readable.push({ addr: data.addr, len: data.len });
    if (data?.write) writable.push({ addr: data.addr, len: data.len });
    writable.push({ addr: 0x3000, len: 1 });
    const sum = (a: Array<{ len: number }>): number => a.reduce((n, b) => n + b.len, 0);
    return { head: 0, readable, writable, readableLength: sum(readable), writableLength: sum(writable) };
  };

  it('reads, writes, flushes and identifies', () => {
    const image = Buffer.alloc(64 * 1024);
    image.fill(0xab, 4096, 8192);
    writeFileSync(path, image);
    const fd = openSync(path, 'r+');
    try {
      const disk = { fd, size: image.length, readonly: false, id: 'disk.img' };
      header(BlkRequestType.In, 8);
      expect(executeBlkRequest(ram, disk, chain({ addr: 0x8000, len: 4096, write: true }))).to.equal(4097);
      expect(mem.readU8(0x3000)).to.equal(BlkStatus.Ok);
      expect(Array.from(mem.read(0x8000, 4096)).every((b) => b === 0xab)).to.equal(true);
      mem.fill(0x10000, 1024, 0x5a);
      header(BlkRequestType.Out, 32);
      expect(executeBlkRequest(ram, disk, chain({ addr: 0x10000, len: 1024, write: false }))).to.equal(1);
      header(BlkRequestType.Flush, 0);
      expect(executeBlkRequest(ram, disk, chain(null))).to.equal(1);
      expect(mem.readU8(0x3000)).to.equal(BlkStatus.Ok);
      expect(readFileSync(path).subarray(32 * 512, 32 * 512 + 1024).every((b) => b === 0x5a)).to.equal(true);
      header(BlkRequestType.GetId, 0);
      expect(executeBlkRequest(ram, disk, chain({ addr: 0x9000, len: 20, write: true }))).to.equal(21);
      expect(Buffer.from(mem.read(0x9000, 8)).toString()).to.equal('disk.img');
      header(BlkRequestType.In, 127); // one sector past the end
      executeBlkRequest(ram, disk, chain({ addr: 0x8000, len: 1024, write: true }));
      expect(mem.readU8(0x3000)).to.equal(BlkStatus.IoErr);
      header(99, 0);
      executeBlkRequest(ram, disk, chain(null));
      expect(mem.readU8(0x3000)).to.equal(BlkStatus.Unsupported);
      header(BlkRequestType.Out, 0);
      executeBlkRequest(ram, { ...disk, readonly: true }, chain({ addr: 0x10000, len: 512, write: false }));
      expect(mem.readU8(0x3000)).to.equal(BlkStatus.IoErr);
    } finally {
      closeSync(fd);
    }
  });

  it('discards and writes zeroes (with and without UNMAP) segment by segment, refusing bad segments whole', () => {
    const image = Buffer.alloc(256 * 1024, 0x77);
    writeFileSync(path, image);
    const fd = openSync(path, 'r+');
    const segments = (segs: Array<[sector: number, count: number, flags: number]>): { addr: number; len: number } => {
      segs.forEach(([sector, count, flags], i) => {
        mem.writeU64(0x2000 + 16 * i, BigInt(sector));
        mem.writeU32(0x2008 + 16 * i, count);
        mem.writeU32(0x200c + 16 * i, flags);
      });
      return { addr: 0x2000, len: 16 * segs.length };
    };
    const run = (type: number, segs: Array<[number, number, number]>, disk = { fd, size: image.length, readonly: false, id: 'd' }): number => {
      header(type, 0);
      executeBlkRequest(ram, disk, chain(null, [segments(segs)]));
      return mem.readU8(0x3000);
    };
    const zeroed = (sector: number, count: number): boolean => readFileSync(path).subarray(sector * 512, (sector + count) * 512).every((b) => b === 0);
    const untouched = (sector: number, count: number): boolean => readFileSync(path).subarray(sector * 512, (sector + count) * 512).every((b) => b === 0x77);
    try {
      // Two discard segments, 4 KiB aligned: a hole reads as zeroes (tmpfs and ext4 both punch holes).
      expect(run(BlkRequestType.Discard, [[8, 8, 0], [64, 16, 0]])).to.equal(BlkStatus.Ok);
      expect(zeroed(8, 8) && zeroed(64, 16)).to.equal(true);
      expect(untouched(0, 8) && untouched(16, 48) && untouched(80, 432)).to.equal(true);
      expect(readFileSync(path).length).to.equal(image.length); // KEEP_SIZE
      // Write zeroes, plain and with UNMAP.
      expect(run(BlkRequestType.WriteZeroes, [[100, 3, 0]])).to.equal(BlkStatus.Ok);
      expect(run(BlkRequestType.WriteZeroes, [[200, 8, 1]])).to.equal(BlkStatus.Ok);
      expect(zeroed(100, 3) && zeroed(200, 8) && untouched(103, 97) && untouched(208, 304)).to.equal(true);
      // UNMAP on a discard, unknown flags, too many segments: UNSUPP; a range past the end: IOERR; nothing touched.
      expect(run(BlkRequestType.Discard, [[300, 8, 1]])).to.equal(BlkStatus.Unsupported);
      expect(run(BlkRequestType.WriteZeroes, [[300, 8, 2]])).to.equal(BlkStatus.Unsupported);
      expect(run(BlkRequestType.WriteZeroes, [[300, 8, 0], [320, 8, 0]])).to.equal(BlkStatus.Unsupported);
      expect(run(BlkRequestType.Discard, Array.from({ length: 33 }, (_, i): [number, number, number] => [300 + i, 1, 0]))).to.equal(BlkStatus.Unsupported);
      expect(run(BlkRequestType.Discard, [[300, 8, 0], [510, 8, 0]])).to.equal(BlkStatus.IoErr);
      expect(run(BlkRequestType.Discard, [[300, 8, 0]], { fd, size: image.length, readonly: true, id: 'd' })).to.equal(BlkStatus.IoErr);
      expect(untouched(300, 212)).to.equal(true);
    } finally {
      closeSync(fd);
    }
  });

  it('gives clear errors for images that are missing, directories, too small, or opened read-write twice', () => {
    writeFileSync(path, Buffer.alloc(4096));
    const tiny = join(dir, 'tiny.img');
    writeFileSync(tiny, Buffer.alloc(100));
    mkdirSync(join(dir, 'sub'), { recursive: true });
    const attempt = (disks: Array<{ path: string; readonly?: boolean }>): string => {
      try {
        closeDiskImages(openDiskImages(disks));
        return 'ok';
      } catch (e) {
        expect(e).to.be.instanceOf(NodevisorError);
        return (e as Error).message;
      }
    };
    expect(attempt([{ path: join(dir, 'nope.img') }])).to.match(/nope\.img does not exist/);
    expect(attempt([{ path: join(dir, 'sub') }])).to.match(/is a directory|not a regular file/);
    expect(attempt([{ path: tiny }])).to.match(/smaller than one 512-byte sector/);
    expect(attempt([{ path }, { path }])).to.match(/opened read-write twice/);
    expect(attempt([{ path }, { path, readonly: true }])).to.equal(`disk image ${path} is the same file as ${path} and would be written through one disk while the other reads it (${path} is read-write): give it once, or add ",readonly" to both`);
    expect(attempt([{ path: tiny, readonly: true }, { path: tiny }])).to.match(/smaller than one 512-byte sector/);
    writeFileSync(tiny, Buffer.alloc(512));
    expect(attempt([{ path: tiny, readonly: true }, { path: `${dir}/./tiny.img` }])).to.match(/tiny\.img is the same file as .*tiny\.img and would be written through one disk while the other reads it \(.*\/\.\/tiny\.img is read-write\)/);
    expect(attempt([{ path, readonly: true }, { path, readonly: true }])).to.equal('ok');
  });
});

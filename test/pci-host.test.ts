import { expect } from 'chai';
import type { AccessSize } from '../src/devices/device.js';
import { noIrqLines } from '../src/devices/device.js';
import {
  PCI_BAR_COUNT,
  PciBarBits,
  PciCfg,
  PciCommand,
  PciConfigSpace,
  type PciConfigSpec,
  type PciFunction,
  PciStatus,
} from '../src/devices/pci-config.js';
import {
  PCI_HOST_BRIDGE_ID,
  PCI_HOST_PORT,
  PCI_HOST_PORT_COUNT,
  pciConfigAddress,
  PciConfigAddress,
  PciHost,
  PciHostReg,
  type PciHostState,
} from '../src/devices/pci-host.js';
import { ResetControl } from '../src/devices/reset-control.js';
import { deviceHost } from './helpers/recording.js';

/** The test device: a 4 KiB memory BAR, a 32-byte I/O BAR, a 16 KiB 64-bit prefetchable BAR, INTA#, two capabilities. */
const TEST_SPEC: PciConfigSpec = {
  vendorId: 0x1af4,
  deviceId: 0x1041,
  revision: 0x01,
  classCode: 0x020000,
  subsystemVendorId: 0x1af4,
  subsystemId: 0x0001,
  bars: [{ kind: 'memory', size: 4096 }, { kind: 'io', size: 32 }, { kind: 'memory', size: 16384, is64: true, prefetchable: true }],
  interruptPin: 1,
  capabilities: [
    { id: 0x09, body: [0x10, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d] },
    { id: 0x05, body: [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], writable: [0x01, 0x00, 0xfc, 0xff, 0xff, 0xff, 0xff, 0xff] },
  ],
};

function setup(state: PciHostState = PciHost.allocate()) {
  const { host, vm } = deviceHost({ irq: noIrqLines });
  const resetState = ResetControl.allocate();
  const reset = new ResetControl(resetState, host);
  const pci = new PciHost(state, { resetControl: reset });
  /** Port I/O by absolute port number. */
  const inp = (port: number, size: AccessSize): number => pci.read(port - PCI_HOST_PORT, size, 0);
  const outp = (port: number, size: AccessSize, value: number): void => pci.write(port - PCI_HOST_PORT, size, value, 0);
  /** Linux's pci_conf1_read: address dword to 0xCF8, then the data lane at 0xCFC + (reg & 3). */
  const cfgRead = (dev: number, fn: number, reg: number, size: AccessSize, bus = 0): number => {
    outp(0xcf8, 4, pciConfigAddress(bus, dev, fn, reg));
    return inp(0xcfc + (reg & 3), size);
  };
  const cfgWrite = (dev: number, fn: number, reg: number, size: AccessSize, value: number): void => {
    outp(0xcf8, 4, pciConfigAddress(0, dev, fn, reg));
    outp(0xcfc + (reg & 3), size, value);
  };
  return { state, pci, vm, reset, inp, outp, cfgRead, cfgWrite };
}

function testDevice(): { fn: PciConfigSpace; state: ReturnType<typeof PciConfigSpace.allocate> } {
  const state = PciConfigSpace.allocate(TEST_SPEC);
  return { fn: new PciConfigSpace(state, 'test-nic'), state };
}

describe('PciHost', () => {
  describe('CONFIG_ADDRESS', () => {
    it('lives at 0xCF8-0xCFF and encodes bus, device, function and register', () => {
      expect([PCI_HOST_PORT, PCI_HOST_PORT_COUNT, PciHostReg.ConfigAddress, PciHostReg.ConfigData]).to.deep.equal([0xcf8, 8, 0, 4]);
      expect(pciConfigAddress(0, 0, 0, 0)).to.equal(0x80000000);
      expect(pciConfigAddress(1, 2, 3, 0x47)).to.equal(0x80011344);
      expect(pciConfigAddress(0xff, 31, 7, 0xff)).to.equal(0x80fffffc);
    });

    it('takes 32-bit accesses only and keeps only the defined bits', () => {
      const { inp, outp } = setup();
      outp(0xcf8, 4, 0xffffffff);
      expect(inp(0xcf8, 4)).to.equal(PciConfigAddress.Writable);
      outp(0xcf8, 4, 0x12345678);
      expect(inp(0xcf8, 4)).to.equal(0x00345678);
      outp(0xcf8, 2, 0xffff);
      outp(0xcf8, 1, 0xff);
      outp(0xcfa, 1, 0xff);
      expect(inp(0xcf8, 4)).to.equal(0x00345678);
      expect(inp(0xcf8, 1)).to.equal(0xff);
      expect(inp(0xcf8, 2)).to.equal(0xffff);
    });

    it("passes Linux's pci_check_type1() probe", () => {
      // arch/x86/pci/direct.c
      const { inp, outp } = setup();
      outp(0xcfb, 1, 0x01);
      const saved = inp(0xcf8, 4);
      outp(0xcf8, 4, 0x80000000);
      expect(inp(0xcf8, 4)).to.equal(0x80000000);
      outp(0xcf8, 4, saved);
      expect(inp(0xcf8, 4)).to.equal(saved);
    });

    it('is one register shared by every view (every vCPU)', () => {
      const a = setup();
      const b = setup(a.state);
      a.outp(0xcf8, 4, pciConfigAddress(0, 0, 0, 0x08));
      expect(b.inp(0xcf8, 4)).to.equal(0x80000008);
      expect(b.inp(0xcfc, 4)).to.equal(0x06000002);
    });
  });

  describe('host bridge 00:00.0', () => {
    it('is an Intel 82441FX host bridge with a type 0 header', () => {
      const { cfgRead } = setup();
      expect(PCI_HOST_BRIDGE_ID).to.deep.equal({ vendorId: 0x8086, deviceId: 0x1237, revision: 0x02, classCode: 0x060000 });
      expect(cfgRead(0, 0, PciCfg.VendorId, 4)).to.equal(0x12378086);
      expect(cfgRead(0, 0, PciCfg.Revision, 4)).to.equal(0x06000002);
      expect(cfgRead(0, 0, PciCfg.HeaderType, 1)).to.equal(0x00);
      expect(cfgRead(0, 0, PciCfg.Command, 2)).to.equal(PciCommand.Memory | PciCommand.BusMaster);
      for (let bar = 0; bar < PCI_BAR_COUNT; bar++) expect(cfgRead(0, 0, PciCfg.Bar0 + 4 * bar, 4)).to.equal(0);
    });

    it('serves 1-, 2- and 4-byte reads at the right byte lanes of 0xCFC-0xCFF', () => {
      const { cfgRead, outp, inp } = setup();
      expect([0, 1, 2, 3].map((i) => cfgRead(0, 0, i, 1))).to.deep.equal([0x86, 0x80, 0x37, 0x12]);
      expect(cfgRead(0, 0, 0, 2)).to.equal(0x8086);
      expect(cfgRead(0, 0, 2, 2)).to.equal(0x1237);
      expect(cfgRead(0, 0, 0x0a, 2)).to.equal(0x0600);
      outp(0xcf8, 4, pciConfigAddress(0, 0, 0, 0));
      expect(inp(0xcfd, 2)).to.equal(0x3780); // bytes 1-2 of the dword
      expect(inp(0xcfe, 1)).to.equal(0x37);
    });

    it('is found by Linux pci_sanity_check(), scanning bus 0 for a host bridge class', () => {
      const { cfgRead } = setup();
      const found: number[] = [];
      for (let devfn = 0; devfn < 256; devfn++) {
        if (cfgRead(devfn >> 3, devfn & 7, 0x0a, 2) === 0x0600) found.push(devfn);
      }
      expect(found).to.deep.equal([0]);
    });
  });

  describe('absent functions', () => {
    it('read all ones at every size and swallow writes', () => {
      const { cfgRead, cfgWrite } = setup();
      expect(cfgRead(1, 0, 0, 4)).to.equal(0xffffffff);
      expect(cfgRead(31, 7, 0x3c, 1)).to.equal(0xff);
      expect(cfgRead(0, 1, 0, 2)).to.equal(0xffff);
      cfgWrite(5, 0, 0x10, 4, 0x12345678);
      expect(cfgRead(5, 0, 0x10, 4)).to.equal(0xffffffff);
    });

    it('include everything on other buses and every access with the enable bit clear', () => {
      const { cfgRead, inp, outp } = setup();
      expect(cfgRead(0, 0, 0, 4, 1)).to.equal(0xffffffff);
      outp(0xcf8, 4, 0x00000000);
      expect(inp(0xcfc, 4)).to.equal(0xffffffff);
      outp(0xcfc, 4, 0);
      expect(cfgRead(0, 0, 0, 4)).to.equal(0x12378086);
    });
  });

  describe('registered functions', () => {
    it('are reached at their device and function number', () => {
      const { pci, cfgRead } = setup();
      const { fn } = testDevice();
      pci.register(3, 0, fn);
      expect(pci.lookup(3, 0)).to.equal(fn);
      expect(cfgRead(3, 0, PciCfg.VendorId, 4)).to.equal(0x10411af4);
      expect(cfgRead(3, 0, PciCfg.Revision, 4)).to.equal(0x02000001);
      expect(cfgRead(3, 0, PciCfg.SubsystemVendorId, 4)).to.equal(0x00011af4);
      expect(cfgRead(3, 1, PciCfg.VendorId, 4)).to.equal(0xffffffff);
    });

    it('refuses taken slots and numbers out of range', () => {
      const { pci } = setup();
      const { fn } = testDevice();
      expect(() => pci.register(0, 0, fn)).to.throw(RangeError, /already pci-host-bridge/);
      expect(() => pci.register(32, 0, fn)).to.throw(RangeError);
      expect(() => pci.register(1, 8, fn)).to.throw(RangeError);
      pci.register(1, 0, fn);
      expect(() => pci.register(1, 0, fn)).to.throw(RangeError, /already test-nic/);
    });

    it('may be any PciFunction implementation', () => {
      const { pci, cfgRead, cfgWrite } = setup();
      const writes: Array<[number, number, number]> = [];
      const custom: PciFunction = {
        name: 'custom',
        configRead: (offset, size) => (offset === 0 && size === 4 ? 0xbeef1234 : 0),
        configWrite: (offset, size, value) => writes.push([offset, size, value]),
      };
      pci.register(7, 2, custom);
      expect(cfgRead(7, 2, 0, 4)).to.equal(0xbeef1234);
      cfgWrite(7, 2, 0x45, 1, 0xaa);
      cfgWrite(7, 2, 0x46, 2, 0xbbcc);
      expect(writes).to.deep.equal([
        [0x45, 1, 0xaa],
        [0x46, 2, 0xbbcc],
      ]);
    });
  });

  describe('BAR sizing protocol', () => {
    it('reads back the size mask and type bits after all ones is written, then keeps an address', () => {
      const { pci, cfgRead, cfgWrite } = setup();
      const { fn } = testDevice();
      pci.register(3, 0, fn);
      const bar = (i: number): number => PciCfg.Bar0 + 4 * i;
      // Initial values: address 0 plus the type bits.
      expect([0, 1, 2, 3, 4, 5].map((i) => cfgRead(3, 0, bar(i), 4))).to.deep.equal([0, PciBarBits.Io, PciBarBits.Mem64 | PciBarBits.Prefetchable, 0, 0, 0]);
      for (let i = 0; i < 6; i++) cfgWrite(3, 0, bar(i), 4, 0xffffffff);
      expect(cfgRead(3, 0, bar(0), 4)).to.equal(0xfffff000); // 4 KiB memory
      expect(cfgRead(3, 0, bar(1), 4)).to.equal(0xffffffe1); // 32 bytes of I/O
      expect(cfgRead(3, 0, bar(2), 4)).to.equal(0xffffc00c); // 16 KiB, 64-bit, prefetchable
      expect(cfgRead(3, 0, bar(3), 4)).to.equal(0xffffffff); // upper half: all address bits
      expect(cfgRead(3, 0, bar(4), 4)).to.equal(0); // unimplemented
      expect(cfgRead(3, 0, bar(5), 4)).to.equal(0);
      // Size from the mask, as Linux's __pci_read_base computes it.
      expect(((~0xfffff000 >>> 0) + 1) >>> 0).to.equal(4096);
      cfgWrite(3, 0, bar(0), 4, 0xfebf1234);
      cfgWrite(3, 0, bar(1), 4, 0xc043);
      cfgWrite(3, 0, bar(2), 4, 0xfe004000);
      cfgWrite(3, 0, bar(3), 4, 0x00000008);
      expect(cfgRead(3, 0, bar(0), 4)).to.equal(0xfebf1000);
      expect(cfgRead(3, 0, bar(1), 4)).to.equal(0xc041);
      expect(fn.barAddress(0)).to.equal(0xfebf1000);
      expect(fn.barAddress(1)).to.equal(0xc040);
      expect(fn.barAddress(2)).to.equal(0x8_fe00_4000);
      expect(fn.barAddress(3)).to.equal(undefined);
      expect(fn.barAddress(4)).to.equal(undefined);
    });

    it('sizes BARs with byte and word writes too', () => {
      const { pci, cfgRead, cfgWrite } = setup();
      const { fn } = testDevice();
      pci.register(3, 0, fn);
      cfgWrite(3, 0, PciCfg.Bar0, 2, 0xffff);
      cfgWrite(3, 0, PciCfg.Bar0 + 2, 2, 0xffff);
      expect(cfgRead(3, 0, PciCfg.Bar0, 4)).to.equal(0xfffff000);
      cfgWrite(3, 0, PciCfg.Bar0 + 3, 1, 0xe0);
      expect(cfgRead(3, 0, PciCfg.Bar0, 4)).to.equal(0xe0fff000);
    });

    it('validates BAR sizes and layout', () => {
      const bad = (bars: PciConfigSpec['bars']): (() => unknown) => () => PciConfigSpace.allocate({ vendorId: 1, deviceId: 1, classCode: 0, bars });
      expect(bad([{ kind: 'memory', size: 3000 }])).to.throw(RangeError);
      expect(bad([{ kind: 'memory', size: 8 }])).to.throw(RangeError);
      expect(bad([{ kind: 'io', size: 512 }])).to.throw(RangeError);
      expect(bad([{ kind: 'memory', size: 2 ** 32 }])).to.throw(RangeError);
      expect(bad([{ kind: 'memory', size: 4096, is64: true }, { kind: 'io', size: 4 }])).to.throw(RangeError);
      expect(bad([undefined, undefined, undefined, undefined, undefined, { kind: 'memory', size: 4096, is64: true }])).to.throw(RangeError);
      expect(() => PciConfigSpace.allocate({ vendorId: 1, deviceId: 1, classCode: 0, interruptPin: 5 })).to.throw(RangeError);
    });

    it('supports 64-bit BARs larger than 4 GiB', () => {
      const state = PciConfigSpace.allocate({ vendorId: 1, deviceId: 1, classCode: 0, bars: [{ kind: 'memory', size: 2 ** 34, is64: true }] });
      const fn = new PciConfigSpace(state);
      fn.configWrite(PciCfg.Bar0, 4, 0xffffffff);
      fn.configWrite(PciCfg.Bar0 + 4, 4, 0xffffffff);
      expect(fn.configRead(PciCfg.Bar0, 4)).to.equal(PciBarBits.Mem64);
      expect(fn.configRead(PciCfg.Bar0 + 4, 4)).to.equal(0xfffffffc);
    });
  });

  describe('header semantics', () => {
    it('keeps IDs, class, header type, pin and pointers read-only', () => {
      const { fn } = testDevice();
      for (const offset of [PciCfg.VendorId, PciCfg.Revision, PciCfg.SubsystemVendorId, PciCfg.CardbusCis, PciCfg.ExpansionRom, PciCfg.CapabilitiesPointer]) {
        const before = fn.configRead(offset, 4);
        fn.configWrite(offset, 4, 0xa5a5a5a5);
        expect(fn.configRead(offset, 4), `offset 0x${offset.toString(16)}`).to.equal(before);
      }
      expect(fn.configRead(PciCfg.HeaderType, 1)).to.equal(0);
      expect(fn.configRead(PciCfg.InterruptPin, 1)).to.equal(1);
    });

    it('keeps only the implemented command bits', () => {
      const { pci, cfgRead, cfgWrite } = setup();
      const { fn } = testDevice();
      pci.register(3, 0, fn);
      expect(cfgRead(3, 0, PciCfg.Command, 2)).to.equal(0);
      cfgWrite(3, 0, PciCfg.Command, 2, 0xffff);
      expect(cfgRead(3, 0, PciCfg.Command, 2)).to.equal(
        PciCommand.Io | PciCommand.Memory | PciCommand.BusMaster | PciCommand.ParityErrorResponse | PciCommand.Serr | PciCommand.InterruptDisable,
      );
      cfgWrite(3, 0, PciCfg.Command, 1, PciCommand.Memory);
      expect(fn.command()).to.equal(PciCommand.Memory | PciCommand.Serr | PciCommand.InterruptDisable);
      // A dword write at 0x04 writes command and status together: status bits are write-1-to-clear.
      cfgWrite(3, 0, PciCfg.Command, 4, 0xffff0000 | PciCommand.Io);
      expect(cfgRead(3, 0, PciCfg.Command, 4)).to.equal((PciStatus.CapabilitiesList << 16) | PciCommand.Io);
    });

    it('clears status error bits written as 1 and leaves the others alone', () => {
      const { fn } = testDevice();
      fn.setRegister(PciCfg.Status, 2, PciStatus.CapabilitiesList | PciStatus.ReceivedMasterAbort | PciStatus.DetectedParityError);
      fn.configWrite(PciCfg.Status, 2, PciStatus.ReceivedMasterAbort | PciStatus.CapabilitiesList);
      expect(fn.configRead(PciCfg.Status, 2)).to.equal(PciStatus.CapabilitiesList | PciStatus.DetectedParityError);
      fn.setInterruptStatus(true);
      expect(fn.configRead(PciCfg.Status, 2) & PciStatus.InterruptStatus).to.equal(PciStatus.InterruptStatus);
      fn.configWrite(PciCfg.Status, 2, 0xffff);
      expect(fn.configRead(PciCfg.Status, 2)).to.equal(PciStatus.CapabilitiesList | PciStatus.InterruptStatus);
      fn.setInterruptStatus(false);
      expect(fn.configRead(PciCfg.Status, 2)).to.equal(PciStatus.CapabilitiesList);
    });

    it('lets the guest write cache line size, latency timer and interrupt line', () => {
      const { pci, cfgRead, cfgWrite } = setup();
      const { fn } = testDevice();
      pci.register(3, 0, fn);
      cfgWrite(3, 0, PciCfg.CacheLineSize, 4, 0xffffffff);
      expect(cfgRead(3, 0, PciCfg.CacheLineSize, 4)).to.equal(0x0000ffff);
      cfgWrite(3, 0, PciCfg.InterruptLine, 1, 11);
      expect(cfgRead(3, 0, PciCfg.InterruptLine, 4)).to.equal(0x0000010b);
      expect(fn.interruptLine()).to.equal(11);
    });

    it('links capabilities from 0x40, dword-aligned, with their write masks', () => {
      const { fn } = testDevice();
      expect(fn.configRead(PciCfg.Status, 2) & PciStatus.CapabilitiesList).to.equal(PciStatus.CapabilitiesList);
      expect(fn.configRead(PciCfg.CapabilitiesPointer, 1)).to.equal(0x40);
      expect(fn.configRead(0x40, 2)).to.equal(0x5009); // vendor-specific, next at 0x50
      expect(fn.configRead(0x42, 1)).to.equal(0x10);
      expect(fn.configRead(0x50, 2)).to.equal(0x0005); // MSI, end of list
      expect([0, 1, 2].map((i) => fn.capabilityOffset(i))).to.deep.equal([0x40, 0x50, undefined]);
      fn.configWrite(0x52, 4, 0xffffffff);
      expect(fn.configRead(0x52, 4)).to.equal(0xfffc0001);
      fn.configWrite(0x44, 4, 0xffffffff);
      expect(fn.configRead(0x44, 4)).to.equal(0x05040302);
      // Bytes nobody defined read 0 and ignore writes.
      fn.configWrite(0x80, 4, 0xffffffff);
      expect(fn.configRead(0x80, 4)).to.equal(0);
      expect(fn.configRead(0xfc, 4)).to.equal(0);
    });

    it('reports no capabilities list for a function without capabilities', () => {
      const fn = new PciConfigSpace(PciConfigSpace.allocate({ vendorId: 1, deviceId: 2, classCode: 0x0b4000, multifunction: true }));
      expect(fn.configRead(PciCfg.Status, 2)).to.equal(0);
      expect(fn.configRead(PciCfg.CapabilitiesPointer, 1)).to.equal(0);
      expect(fn.capabilityOffset(0)).to.equal(undefined);
      expect(fn.configRead(PciCfg.HeaderType, 1)).to.equal(0x80);
    });

    it('shares one configuration space between views', () => {
      const { state } = testDevice();
      const a = new PciConfigSpace(state);
      const b = new PciConfigSpace(state);
      a.configWrite(PciCfg.Bar0, 4, 0xfe000000);
      expect(b.barAddress(0)).to.equal(0xfe000000);
    });
  });

  describe('port 0xCF9 inside the CONFIG_ADDRESS dword', () => {
    it('reaches the reset control register with byte accesses', () => {
      const { inp, outp, vm, reset } = setup();
      outp(0xcf9, 1, 0x02);
      expect(inp(0xcf9, 1)).to.equal(0x02);
      expect(vm.stops).to.deep.equal([]);
      outp(0xcf9, 1, 0x06);
      expect(vm.stops).to.deep.equal([{ kind: 'reset' }]);
      expect(reset.stats().resets).to.equal(1);
      // CONFIG_ADDRESS is untouched by the byte write.
      outp(0xcf8, 4, 0x80000000);
      outp(0xcf9, 1, 0x00);
      expect(inp(0xcf8, 4)).to.equal(0x80000000);
    });

    it('reads 0xff there when no reset control is attached', () => {
      const pci = new PciHost(PciHost.allocate());
      expect(pci.read(1, 1, 0)).to.equal(0xff);
      pci.write(1, 1, 0x06, 0);
    });
  });
});

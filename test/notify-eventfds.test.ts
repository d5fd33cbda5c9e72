import { expect } from 'chai';
import { fakeVirtioFunction } from './helpers/virtio-driver.js';
import { allocateNotifyEventfds } from '../src/virtio/notify-eventfds.js';
import { VirtioBlk, allocateVirtioBlk, virtioBlkType } from '../src/virtio/blk.js';
import { VirtioBar } from '../src/virtio/pci-transport.js';
import { PciCfg, PciCommand } from '../src/devices/pci-config.js';
import { PCI_MMIO_BASE } from '../src/devices/pci-mmio-window.js';
import { native, k } from '../src/kvm/addon.js';

/** Model tests: the queues' notify ioeventfds follow BAR 0 and memory decoding (no KVM). */
type Call = [op: 'assign' | 'deassign', addr: number, fd: number];

function setup(refuse?: (addr: number) => boolean) {
  const calls: Call[] = [];
  const registered = new Map<number, number>();
  const ioeventfd = (addr: number, len: number, fd: number, assign: boolean): void => {
    expect(len).to.equal(2);
    if (assign && refuse?.(addr)) throw Object.assign(new Error('ioctl: File exists'), { code: 'EEXIST' });
    if (assign) {
      expect(registered.has(addr), `0x${addr.toString(16)} registered twice`).to.equal(false);
      registered.set(addr, fd);
    } else {
      expect(registered.get(addr), `0x${addr.toString(16)} removed but not registered`).to.equal(fd);
      registered.delete(addr);
    }
    calls.push([assign ? 'assign' : 'deassign', addr, fd]);
  };
  const fds = [native.eventfd(0, k('EFD_NONBLOCK')), native.eventfd(0, k('EFD_NONBLOCK'))];
  opened.push(...fds);
  const notify = allocateNotifyEventfds(fds, 2);
  const blk = allocateVirtioBlk(1 << 20, false, fds);
  const f = fakeVirtioFunction(virtioBlkType(2), (ctx) => new VirtioBlk(blk, ctx), { notify, ioeventfd });
  const at = (base: number, q: number): number => base + VirtioBar.Notify + VirtioBar.NotifyMultiplier * q;
  return { ...f, calls, registered, at, fds };
}
const opened: number[] = [];

describe('virtio notify ioeventfds (model)', () => {
  after(() => opened.splice(0).forEach((fd) => native.close(fd)));

  it('registers one per queue at BAR 0 when placed, once', () => {
    const { t, calls, at, fds } = setup();
    expect(t.notifyEventfd(0)).to.equal(fds[0]);
    expect(t.notifyEventfd(1)).to.equal(fds[1]);
    t.placeNotifyEventfds();
    t.placeNotifyEventfds();
    expect(calls).to.deep.equal([
      ['assign', at(PCI_MMIO_BASE, 0), fds[0]],
      ['assign', at(PCI_MMIO_BASE, 1), fds[1]],
    ]);
  });

  it('drops them while memory decoding is off and during BAR sizing, and follows a moved BAR', () => {
    const { t, registered, at } = setup();
    t.placeNotifyEventfds();
    t.configWrite(PciCfg.Command, 2, PciCommand.BusMaster); // decoding off, as Linux sizes BARs
    expect(registered.size).to.equal(0);
    t.configWrite(PciCfg.Bar0, 4, 0xffffffff);
    t.configWrite(PciCfg.Bar0, 4, PCI_MMIO_BASE + 0x100000);
    expect(registered.size).to.equal(0);
    t.configWrite(PciCfg.Command, 2, PciCommand.Memory | PciCommand.BusMaster);
    expect([...registered.keys()]).to.deep.equal([at(PCI_MMIO_BASE + 0x100000, 0), at(PCI_MMIO_BASE + 0x100000, 1)]);
    // Moved while decoding: the old registrations go before the new ones come.
    t.configWrite(PciCfg.Bar0, 4, PCI_MMIO_BASE + 0x200000);
    expect([...registered.keys()]).to.deep.equal([at(PCI_MMIO_BASE + 0x200000, 0), at(PCI_MMIO_BASE + 0x200000, 1)]);
  });

  it('falls back to MMIO exits, logging why, when KVM refuses one, leaving none half-registered', () => {
    const { t, registered, logs, at } = setup((addr) => addr === at(PCI_MMIO_BASE, 1));
    t.placeNotifyEventfds();
    expect(registered.size).to.equal(0);
    expect(logs.join()).to.match(/ioeventfd at 0xc0000000 refused \(ioctl: File exists\); queue notifications exit to userspace instead/);
    // A later move tries again.
    t.configWrite(PciCfg.Bar0, 4, PCI_MMIO_BASE + 0x8000);
    expect(registered.size).to.equal(2);
  });

  it('signals the queue eventfd for a notification that exits, and counts both paths', () => {
    const { t, bringUp, w16, fds } = setup();
    bringUp({ lo: 0, hi: 1 }, [0, 1]);
    w16(VirtioBar.Notify + VirtioBar.NotifyMultiplier, 1);
    expect(native.eventfdRead(fds[1]!)).to.equal(1);
    expect(native.eventfdRead(fds[0]!)).to.equal(0);
    t.countEventfdNotifications(1); // the exit's signal, read by an I/O thread
    t.countEventfdNotifications(5); // five that KVM signalled
    expect(t.notifications()).to.deep.equal({ exits: 1, ioeventfd: 5 });
    expect(t.accepting(1)).to.equal(true);
    expect(t.accepting(2)).to.equal(false);
  });
});

import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runVm, kitImage, type GuestRun } from './helpers/guests.js';
import type { IrqchipMode } from '../src/index.js';

/**
 * Guests of our own that misbehave on purpose, under real KVM in every
 * irqchip mode: the VMM must neither hang nor crash, a device a guest
 * broke must only need a reset, and what stops the VM must say why.
 */

const MODES: IrqchipMode[] = ['user', 'split', 'kernel'];
const RESULTS = 0x1000000;
const RAM_END = 64 * 1024 * 1024;
const EXIT_PASS = 0x10;

function results(run: GuestRun, count: number): number[] {
  return Array.from(new Uint32Array(run.vm.memory.read(RESULTS, 4 * count).slice().buffer));
}

function expectPass(run: GuestRun): void {
  const [stage, failedLine, ...rest] = results(run, 6);
  expect(run.result.reason, `${run.result.message}\nstage ${stage}, failed at line ${failedLine}, results ${rest.join(' ')}\nlogs:\n${run.logs.join('\n')}`).to.deep.equal({ kind: 'debug-exit', code: EXIT_PASS });
}

describe('misbehaving guests under KVM', function () {
  this.timeout(120000);
  let dir: string;
  let disk: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'nodevisor-hostile-'));
    disk = join(dir, 'disk.img');
    writeFileSync(disk, Buffer.alloc(64 * 1024, 0x5a));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const mode of MODES) {
    describe(`irqchip "${mode}"`, () => {
      it('reads feature words past the second as 0 and ignores writes to them, whatever select the driver wrote; the device then works', async () => {
        const image = kitImage('virtio-hostile', { defines: { SCENARIO: 'FEATURE_SELECT', RAM_END } });
        const run = await runVm({ image, irqchip: mode, rng: true, memory: '64M' });
        expectPass(run);
        expect(run.logs.filter((l) => /virtio/.test(l))).to.deep.equal([]);
      });

      const rings: Array<[string, string, RegExp]> = [
        ['USED_LAPIC', 'a used ring on the LAPIC page', /queue 0: the used ring at 0xfee00000 .* is not in guest RAM/],
        ['USED_END', 'a used ring straddling the end of RAM', /queue 0: the used ring at 0x3fffff0 .* is not in guest RAM/],
        ['USED_EVENT', 'an avail ring whose used_event lies past the end of RAM (event idx)', /queue 0: the avail ring at 0x3ffffec .* is not in guest RAM/],
      ];
      for (const [scenario, what, log] of rings) {
        it(`answers ${what} with DEVICE_NEEDS_RESET for that device only, and serves it again after a reset`, async () => {
          const image = kitImage('virtio-hostile', { defines: { SCENARIO: scenario, RAM_END } });
          const run = await runVm({ image, irqchip: mode, disks: [{ path: disk }], memory: '64M' });
          expectPass(run);
          const [, , status, enabled, usedLen, blkStatus] = results(run, 6);
          expect(status! & 0x40, 'DEVICE_NEEDS_RESET').to.equal(0x40);
          expect(enabled, 'queue enable after the bad rings').to.equal(0);
          expect([usedLen, blkStatus], 'the read after the reset').to.deep.equal([513, 0]);
          // One complaint; the other virtio-blk line says how the disk's requests go.
          expect(run.logs.filter((l) => /virtio-blk/.test(l) && !/: (requests through io_uring|synchronous requests)/.test(l))).to.have.length(1);
          expect(run.logs.join('\n')).to.match(log);
        });
      }

      it('keeps a guest whose periodic LAPIC timer has a 1 ns period making progress', async () => {
        const run = await runVm({ image: kitImage('lapic-timer-flood'), irqchip: mode, memory: '64M' }, undefined, 90000);
        const [ticks, writes] = results(run, 2);
        expect(run.result.reason, `${run.result.message}; ${writes} port writes done, ${ticks} ticks`).to.deep.equal({ kind: 'debug-exit', code: 0x50 });
        expect(writes).to.equal(20000);
        expect(ticks, 'timer interrupts taken').to.be.greaterThan(0);
      });
    });
  }

  const nowhere: Array<[number, IrqchipMode, string]> = [
    [0x80000000, 'user', 'a hole above RAM'],
    [0xc0000000, 'user', 'the PCI MMIO window'],
    [0xfee00000, 'user', 'our LAPIC page'],
    [0xfee00000, 'kernel', "KVM's LAPIC page"],
    [0xfec00000, 'split', 'the IOAPIC page'],
  ];
  for (const [target, mode, what] of nowhere) {
    it(`says where a guest tried to execute when it jumps to ${what} (0x${target.toString(16)}, irqchip "${mode}")`, async () => {
      const run = await runVm({ image: kitImage('jump-nowhere', { defines: { TARGET: `0x${target.toString(16)}ul` } }), irqchip: mode, memory: '64M' });
      expect(run.result.reason.kind).to.equal('error');
      expect(run.result.exitStatus).to.equal(6);
      expect(run.result.message.split('\n')[0]).to.equal(`vCPU 0 tried to execute at 0x${target.toString(16)}, where there is no RAM`);
      expect(run.result.message).to.not.match(/cannot decode/);
    });
  }
});

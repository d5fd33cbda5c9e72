import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { kitImage } from './helpers/guests.js';
import { createVm, type IrqchipMode, type VmResult } from '../src/index.js';

/**
 * A guest that fuzzes the virtio PCI functions (test/guests/virtio-fuzz.c):
 * random accesses to every register of their BARs and to PCI configuration
 * space, and garbage rings. For a bounded time in each irqchip mode the
 * VMM must keep running (nothing may stop the VM but the host) and answer
 * `stop()`. NODEVISOR_FUZZ_MS runs each mode longer (default 4000 ms).
 */
const RESULTS = 0x1000000;
const RAM_END = 64 * 1024 * 1024;
const FUZZ_MS = Number(process.env.NODEVISOR_FUZZ_MS ?? 4000);
const SEEDS: Record<IrqchipMode, number> = { user: 0x5eed1, split: 0x5eed2, kernel: 0x5eed3 };

describe('virtio-pci fuzzed by a guest under KVM', function () {
  this.timeout(FUZZ_MS + 180000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'nodevisor-fuzz-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const mode of ['user', 'split', 'kernel'] as const) {
    it(`keeps running and stops when asked while a guest hammers every virtio-pci register and PCI configuration space (irqchip "${mode}")`, async () => {
      const disk = join(dir, `${mode}.img`);
      writeFileSync(disk, Buffer.alloc(1024 * 1024));
      const image = kitImage('virtio-fuzz', { defines: { SEED: SEEDS[mode], DEVICES: 3, RAM_END } });
      // Functions 1-3: the disk, the entropy device, the console.
      const vm = createVm({ image, irqchip: mode, memory: '64M', disks: [{ path: disk }], rng: true, console: 'virtio' });
      const logs: string[] = [];
      vm.on('log', (_level: string, m: string) => logs.push(m));
      let early: VmResult | undefined;
      await vm.start();
      void vm.wait().then((r) => (early ??= r));
      // The main thread stays free meanwhile: it keeps reading the guest's progress.
      let ops = 0;
      for (let waited = 0; waited < FUZZ_MS && !early; waited += 100) {
        await sleep(100);
        ops = vm.memory.readU32(RESULTS);
      }
      const result = await Promise.race([vm.stop(), sleep(60000).then(() => null)]);
      expect(result, 'stop() did not resolve within 60 s').to.not.equal(null);
      const [, irqs, configs] = new Uint32Array(vm.memory.read(RESULTS, 12).slice().buffer);
      const summary = `${ops} operations, ${configs} configuration accesses, ${irqs} interrupts; ${logs.length} log lines, e.g.\n${logs.slice(0, 8).join('\n')}`;
      expect(result!.reason, `${result!.message}\n${summary}`).to.deep.equal({ kind: 'stopped' });
      expect(ops, summary).to.be.greaterThan(1000);
    });
  }
});

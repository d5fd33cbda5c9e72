import { expect } from 'chai';
import { runBenchmark } from '../src/bench/index.js';
import { testKernelOrSkip } from './helpers/linux.js';
import { seabiosOrSkip } from './helpers/firmware.js';

describe('bench: firmware suite', function () {
  this.timeout(900_000);

  it('times a SeaBIOS boot from a built disk to the boot loader, the kernel and /init, against a direct boot in the same repetition', async function () {
    testKernelOrSkip(this);
    seabiosOrSkip(this);
    const report = await runBenchmark({ suites: ['firmware'], repetitions: 1 });
    const suite = report.suites.find((s) => s.suite === 'firmware')!;
    expect(suite.error, suite.error).to.equal(undefined);
    const m = (id: string): number => suite.metrics.find((x) => x.id === id)!.samples[0]!;
    expect(m('firmware.bios.to-loader')).to.be.greaterThan(0).and.below(m('firmware.bios.to-kernel'));
    expect(m('firmware.bios.to-kernel')).to.be.below(m('firmware.bios.to-init'));
    expect(m('firmware.direct.to-kernel')).to.be.below(m('firmware.direct.to-init'));
    expect(m('firmware.bios-vs-direct.to-init')).to.be.closeTo(m('firmware.bios.to-init') / m('firmware.direct.to-init'), 1e-9);
  });
});

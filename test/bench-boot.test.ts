import { expect } from 'chai';
import { runBenchmark } from '../src/bench/index.js';
import { testKernelOrSkip } from './helpers/linux.js';

describe('bench: boot suite', function () {
  this.timeout(400000);

  it('times the test kernel from process start to "Run /init" and says what it could not compare', async function () {
    testKernelOrSkip(this);
    const report = await runBenchmark({ suites: ['boot'], repetitions: 1, only: ['boot.run-init.vcpus-1', 'boot.qemu.vcpus-1'] });
    const suite = report.suites.find((s) => s.suite === 'boot')!;
    expect(suite.error, suite.error).to.equal(undefined);
    const m = suite.metrics.find((x) => x.id === 'boot.run-init.vcpus-1')!;
    expect(m.samples).to.have.length(1);
    expect(m.samples[0]).to.be.greaterThan(0.1).and.below(400);
    expect(m.better).to.equal('lower');
    // Either QEMU was measured (and the ratio with it) or a note says why not.
    const qemu = suite.metrics.find((x) => x.id === 'boot.qemu.vcpus-1');
    if (!qemu) expect(suite.notes.join('\n')).to.match(/QEMU (is not installed|with KVM could not boot)/);
    else expect(suite.metrics.find((x) => x.id === 'boot.vs-qemu.vcpus-1')).to.not.equal(undefined);
  });
});

import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { testImage } from './helpers/guests.js';
import type { ProcessHoldings } from './helpers/vm-churn.js';

/**
 * A library user who creates and stops VMs in a loop (as the benchmark
 * runner does) must get everything back: each stopped VM's vCPU threads,
 * its KVM VM (which lives as long as any vCPU run page is mapped, with a
 * kernel worker thread per VM on recent kernels) and its guest RAM. Run in
 * a child process, so that the count is not blurred by other tests.
 */
const CHURN = fileURLToPath(new URL('./helpers/vm-churn.js', import.meta.url));

function churn(count: number, vcpus: number): Promise<{ before: ProcessHoldings; after: ProcessHoldings }> {
  const image = testImage('spin-forever').source as string;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', CHURN, String(count), String(vcpus), image], { timeout: 300000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as { before: ProcessHoldings; after: ProcessHoldings });
    });
  });
}

describe('VMs created and stopped in a loop under KVM', function () {
  this.timeout(300000);

  it('gives back threads, file descriptors, KVM VMs and guest RAM: 20 VMs of 4 vCPUs leave the process as it was', async () => {
    const { before, after } = await churn(20, 4);
    expect(after.threads, 'threads (vCPU workers, KVM worker threads)').to.equal(before.threads);
    expect(after.fds, 'file descriptors').to.equal(before.fds);
    expect(after.kvmFds, 'KVM file descriptors').to.equal(0);
    expect(after.kvmMappings, 'mapped vCPU run pages').to.equal(0);
    expect(after.ramMappings, 'guest RAM mappings').to.equal(before.ramMappings);
    // Each VM's host-touched 16 MiB would add up to 320 MiB if it stayed; allocator pools may keep a little.
    expect(after.rssMiB - before.rssMiB, `RSS ${before.rssMiB} -> ${after.rssMiB} MiB`).to.be.below(64);
  });
});

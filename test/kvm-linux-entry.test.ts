import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildGuest } from '../src/guests/build.js';
import { runVm, TEST_GUESTS } from './helpers/guests.js';
import { fakeBzImage } from './helpers/boot-image.js';

const LOAD = 0x1000000; // the fake kernel's pref_address

/** A bzImage whose protected-mode kernel holds test/guests/linux-entry.S at the entry being tested. */
function entryImage(entry64: boolean): Uint8Array {
  const at = entry64 ? 0x200 : 0;
  const code = readFileSync(
    buildGuest({ sources: [join(TEST_GUESTS, 'linux-entry.S')], loadAddress: LOAD + at, defines: entry64 ? { ENTRY64: 1 } : {} }),
  );
  // The fake XZ payload is the kernel's to decode, so the VMM enters the bzImage itself.
  const image = fakeBzImage({ xloadflags: entry64 ? 0x0003 : 0x0000, relocatable: false, kernelSize: 0x1000, payloadOffset: 0x800, initSize: 0x100000 });
  const setupSize = (image[0x1f1]! + 1) * 512;
  image.set(code, setupSize + at);
  return image;
}

describe('Linux boot protocol entry state under KVM', function () {
  this.timeout(60000);

  it('enters a 64-bit kernel at load address + 0x200 in long mode with __BOOT_CS/__BOOT_DS and RSI = boot_params', async () => {
    const run = await runVm({ kernel: entryImage(true), memory: '64M' });
    expect(run.result.reason).to.deep.equal({ kind: 'debug-exit', code: 0x64 });
  });

  it('falls back to the 32-bit entry (protected mode, paging off, ESI = boot_params) for a kernel without XLF_KERNEL_64', async () => {
    const run = await runVm({ kernel: entryImage(false), memory: '64M' });
    expect(run.result.reason).to.deep.equal({ kind: 'debug-exit', code: 0x32 });
  });
});

import { expect } from 'chai';
import { readFirmware, DEFAULT_BIOS } from '../src/boot/firmware.js';
import { firmwareBootFailure } from '../src/vm/console-tail.js';
import { NodevisorError } from '../src/kvm/errors.js';

describe('boot: firmware images', () => {
  it('maps an image so that it ends at 4 GiB', () => {
    expect(readFirmware(new Uint8Array(256 * 1024)).base).to.equal(0xfffc0000);
  });
  it('refuses an image that is not a whole number of 64 KiB, with one line saying what it must be', () => {
    for (const size of [0, 1000, 65537, 17 * 1024 * 1024]) {
      expect(() => readFirmware(new Uint8Array(size))).to.throw(NodevisorError, /must be a whole number of 64 KiB, at most 16 MiB/);
    }
  });
  it('names a missing file, and the package to install when it is the default', () => {
    expect(() => readFirmware('/nonexistent/bios.bin')).to.throw(/firmware \/nonexistent\/bios.bin does not exist$/);
    expect(DEFAULT_BIOS).to.equal('/usr/share/seabios/bios-256k.bin');
  });
  it('recognises the firmware giving up on every boot device, with what it said about each', () => {
    const text = 'SeaBIOS (version 1.16)\nBooting from Hard Disk...\nBoot failed: not a bootable disk\n\nBooting from Floppy...\nBoot failed: could not read the boot disk\n\nNo bootable device.  Retrying in 0 seconds.\nRebooting.\n';
    expect(firmwareBootFailure(text)).to.equal('not a bootable disk; could not read the boot disk');
    expect(firmwareBootFailure('SeaBIOS (version 1.16)\nBooting from Hard Disk...\n')).to.equal(null);
  });
});

import { expect } from 'chai';
import { NodevisorError } from '../src/kvm/errors.js';
import {
  describeNonBzImage,
  detectCompression,
  formatProtocol,
  parseBzImage,
  SetupHeader,
  type KernelCompression,
} from '../src/boot/bzimage.js';
import { fakeBzImage, FAKE_XZ_PAYLOAD, fakeElf } from './helpers/boot-image.js';

function parseError(data: Uint8Array): NodevisorError {
  try {
    parseBzImage(data, 'bzImage-under-test');
  } catch (e) {
    expect(e).to.be.instanceOf(NodevisorError);
    expect((e as NodevisorError).code).to.equal('EKERNEL');
    expect((e as NodevisorError).message).to.match(/^bzImage-under-test /);
    return e as NodevisorError;
  }
  throw new Error('expected parseBzImage to throw');
}

describe('boot: bzImage parsing', () => {
  it('reads every field a 64-bit loader needs', () => {
    const file = fakeBzImage({ setupSects: 27, kernelVersion: '6.6.8 (nodevisor@test) #1 SMP' });
    const bz = parseBzImage(file);
    expect(bz.protocol).to.equal(0x020f);
    expect(bz.setupSects).to.equal(27);
    expect(bz.setupSize).to.equal(28 * 512);
    expect(bz.headerEnd).to.equal(0x26c);
    expect(bz.header.length).to.equal(0x26c - 0x1f1);
    expect(Array.from(bz.header)).to.deep.equal(Array.from(file.subarray(0x1f1, 0x26c)));
    expect(bz.loadflags).to.equal(0x01);
    expect(bz.xloadflags).to.equal(0x03);
    expect(bz.canLoadAbove4G).to.equal(true);
    expect(bz.relocatable).to.equal(true);
    expect(bz.kernelAlignment).to.equal(0x200000);
    expect(bz.minAlignment).to.equal(0x200000);
    expect(bz.prefAddress).to.equal(0x1000000);
    expect(bz.initSize).to.equal(0x2000000);
    expect(bz.cmdlineSize).to.equal(2047);
    expect(bz.initrdAddrMax).to.equal(0x7fffffff);
    expect(bz.payloadOffset).to.equal(0x3a0);
    expect(bz.payloadLength).to.equal(FAKE_XZ_PAYLOAD.length);
    expect(bz.compression).to.equal('xz');
    expect(bz.kernelVersion).to.equal('6.6.8 (nodevisor@test) #1 SMP');
    expect(bz.kernel.length).to.equal(file.length - 28 * 512);
    expect(bz.kernel[0]).to.equal(3);
    expect(bz.kernel[1]).to.equal(10);
  });

  it('reads setup_sects 0 as 4', () => {
    const bz = parseBzImage(fakeBzImage({ setupSects: 0 }));
    expect(bz.setupSects).to.equal(4);
    expect(bz.setupSize).to.equal(5 * 512);
    expect(bz.kernel[0]).to.equal(3);
  });

  it('loads syssize * 16 bytes and ignores data appended after them (e.g. a signature)', () => {
    const plain = fakeBzImage();
    const signed = new Uint8Array(plain.length + 100).fill(0xee);
    signed.set(plain);
    const bz = parseBzImage(signed);
    expect(bz.kernel.length).to.equal(plain.length - 5 * 512);
  });

  it('tolerates a final partial paragraph (syssize rounded up)', () => {
    const file = fakeBzImage({ kernelSize: 0x400 + 16 });
    expect(parseBzImage(file.slice(0, file.length - 12)).kernel.length).to.equal(0x400 + 4);
  });

  it('accepts exactly protocol 2.12 with its shorter header', () => {
    const bz = parseBzImage(fakeBzImage({ version: 0x020c, jumpDisplacement: 0x66 }));
    expect(bz.protocol).to.equal(0x020c);
    expect(bz.headerEnd).to.equal(0x268);
    expect(bz.header.length).to.equal(0x268 - 0x1f1);
  });

  it('reports a non-relocatable kernel and a missing kernel version', () => {
    const bz = parseBzImage(fakeBzImage({ relocatable: false, kernelAlignment: 0x1000000 }));
    expect(bz.relocatable).to.equal(false);
    expect(bz.kernelVersion).to.equal(null);
  });

  it('takes initrd_addr_max 0 as the historical default 0x37ffffff', () => {
    expect(parseBzImage(fakeBzImage({ initrdAddrMax: 0 })).initrdAddrMax).to.equal(0x37ffffff);
  });

  it('exports the setup header offsets of boot.rst', () => {
    expect(SetupHeader).to.include({
      setupSects: 0x1f1,
      syssize: 0x1f4,
      bootFlag: 0x1fe,
      header: 0x202,
      version: 0x206,
      typeOfLoader: 0x210,
      loadflags: 0x211,
      ramdiskImage: 0x218,
      ramdiskSize: 0x21c,
      heapEndPtr: 0x224,
      cmdLinePtr: 0x228,
      initrdAddrMax: 0x22c,
      kernelAlignment: 0x230,
      relocatableKernel: 0x234,
      xloadflags: 0x236,
      cmdlineSize: 0x238,
      payloadOffset: 0x248,
      payloadLength: 0x24c,
      prefAddress: 0x258,
      initSize: 0x260,
    });
    expect(formatProtocol(0x020f)).to.equal('2.15');
    expect(formatProtocol(0x0206)).to.equal('2.06');
  });

  describe('errors', () => {
    it('an ELF vmlinux', () => {
      const e = parseError(fakeElf({ segments: [] }));
      expect(e.message).to.contain('looks like an ELF file').and.contain('vmlinux');
    });

    it('gzip-compressed data', () => {
      const e = parseError(Uint8Array.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]));
      expect(e.message).to.contain('gzip-compressed');
    });

    it('a cpio archive', () => {
      expect(parseError(new TextEncoder().encode('070701000000010000')).message).to.contain('cpio archive');
    });

    it('a PE file without a Linux header', () => {
      const f = new Uint8Array(0x400);
      f[0] = 0x4d;
      f[1] = 0x5a;
      expect(parseError(f).message).to.contain('PE/EFI');
    });

    it('an arm64 Image', () => {
      const f = new Uint8Array(0x400);
      f.set([0x41, 0x52, 0x4d, 0x64], 0x38);
      expect(parseError(f).message).to.contain('arm64');
    });

    it('no HdrS signature, naming the bytes found', () => {
      const e = parseError(fakeBzImage({ magic: 'ABCD' }));
      expect(e.message).to.contain('no "HdrS" signature at offset 0x202').and.contain('found 41 42 43 44');
    });

    it('a file too short to hold a header', () => {
      expect(parseError(new Uint8Array(100)).message).to.contain('only 100 bytes');
    });

    it('a bad boot_flag', () => {
      expect(parseError(fakeBzImage({ bootFlag: 0x1234 })).message).to.contain('boot_flag').and.contain('0x1234');
    });

    it('protocol too old', () => {
      const e = parseError(fakeBzImage({ version: 0x020b }));
      expect(e.message).to.contain('boot protocol 2.11').and.contain('2.12 or newer');
    });

    it('a header shorter than protocol 2.12 defines', () => {
      expect(parseError(fakeBzImage({ jumpDisplacement: 0x50 })).message).to.contain('setup header ends at 0x252');
    });

    it('a zImage (LOADED_HIGH clear)', () => {
      expect(parseError(fakeBzImage({ loadflags: 0 })).message).to.contain('zImage');
    });

    it('not 64-bit capable: parsed, and marked for the 32-bit entry', () => {
      expect(parseBzImage(fakeBzImage({ xloadflags: 0x0002 })).entry64).to.equal(false);
      expect(parseBzImage(fakeBzImage({ xloadflags: 0x0003 })).entry64).to.equal(true);
    });

    it('truncated inside the setup code', () => {
      expect(parseError(fakeBzImage({ setupSects: 30, truncateTo: 4000 })).message).to.contain('truncated').and.contain('setup code');
    });

    it('truncated inside the kernel', () => {
      const full = fakeBzImage();
      const e = parseError(full.slice(0, full.length - 32));
      expect(e.message).to.contain('truncated').and.contain('the file has only');
    });

    it('a payload that runs past the kernel', () => {
      const file = fakeBzImage();
      new DataView(file.buffer).setUint32(0x24c, 0x10000, true); // payload_length
      const e = parseError(file);
      expect(e.message).to.contain('compressed payload');
    });

    it('a non-power-of-two kernel_alignment', () => {
      expect(parseError(fakeBzImage({ kernelAlignment: 0x300000 })).message).to.contain('kernel_alignment');
    });

    it('init_size 0', () => {
      expect(parseError(fakeBzImage({ initSize: 0 })).message).to.contain('init_size 0');
    });
  });

  describe('payload compression', () => {
    const cases: Array<[KernelCompression, number[]]> = [
      ['gzip', [0x1f, 0x8b, 0x08]],
      ['bzip2', [0x42, 0x5a, 0x68, 0x39]],
      ['lzma', [0x5d, 0x00, 0x00, 0x80]],
      ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00]],
      ['lzo', [0x89, 0x4c, 0x5a, 0x4f, 0x00]],
      ['lz4', [0x02, 0x21, 0x4c, 0x18, 0x00]],
      ['zstd', [0x28, 0xb5, 0x2f, 0xfd, 0x00]],
      ['none', [0x7f, 0x45, 0x4c, 0x46, 0x02]],
      ['unknown', [0x00, 0x01, 0x02, 0x03]],
    ];
    for (const [name, magic] of cases) {
      it(`detects ${name} from the payload bytes`, () => {
        expect(detectCompression(Uint8Array.from(magic))).to.equal(name);
        expect(parseBzImage(fakeBzImage({ payload: Uint8Array.from([...magic, 1, 2, 3]) })).compression).to.equal(name);
      });
    }

    it('treats an empty or short payload as unknown', () => {
      expect(detectCompression(new Uint8Array(0))).to.equal('unknown');
      expect(detectCompression(Uint8Array.of(0x1f))).to.equal('unknown');
    });

    it('describes non-bzImage files, or returns null', () => {
      expect(describeNonBzImage(new Uint8Array(16))).to.equal(null);
      expect(describeNonBzImage(Uint8Array.from([0x28, 0xb5, 0x2f, 0xfd]))).to.contain('zstd');
    });
  });
});

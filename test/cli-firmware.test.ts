import { expect } from 'chai';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';
import { multibootKernel } from './helpers/multiboot.js';
import { bootSectorDisk, scratchDir, seabiosOrSkip } from './helpers/firmware.js';

describe('nodevisor CLI: --bios, --module, image build-disk', function () {
  this.timeout(120_000);
  let dir = '';
  before(() => (dir = scratchDir()));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('documents the firmware options and build-disk in --help', async () => {
    const run = await cli('run', '--help');
    for (const o of ['--bios [FILE]', '--boot-order', '--debug-console', '--module FILE[,ARGS]', 'image build-disk']) expect(run.stdout).to.contain(o);
    const image = await cli('image', 'build-disk', '--help');
    expect(image.status).to.equal(0);
    expect(image.stdout).to.contain('nodevisor image build-disk OUT --kernel FILE');
  });

  const small = (): string => {
    const p = join(dir, 'small.bin');
    writeFileSync(p, Buffer.alloc(1000));
    return p;
  };
  for (const [args, message] of [
    [['--bios', '/nonexistent/bios.bin'], /firmware \/nonexistent\/bios.bin does not exist/],
    [['--bios', 'SMALL'], /is 1000 bytes: a BIOS image must be a whole number of 64 KiB/],
    [['--bios', '--kernel', 'k'], /--bios boots from the disks/],
    [['--boot-order', '1'], /--boot-order needs --bios/],
    [['--bios', '--boot-order', '0'], /--boot-order takes disk positions counted from 1/],
    [['--module', 'm'], /--module needs --kernel/],
  ] as const) {
    it(`rejects \`run ${args.join(' ')}\` with one clear line and status 64`, async () => {
      const r = await cli('run', ...args.map((a) => (a === 'SMALL' ? small() : a)));
      expect(r.status).to.equal(64);
      expect(r.stderr.trimEnd().split('\n')).to.have.length(1);
      expect(r.stderr).to.match(message);
    });
  }

  it('stops with status 12 and says why when no disk has a boot sector, writing the firmware log with --debug-console', async function () {
    seabiosOrSkip(this);
    const log = join(dir, 'debug.log');
    const r = await cli('run', '--bios', '--disk', bootSectorDisk(dir, 'blank.img'), '--debug-console', log);
    expect(r.status).to.equal(12);
    expect(r.stdout).to.contain('SeaBIOS (version');
    expect(r.stderr).to.match(/the firmware found no bootable device \(not a bootable disk/);
    expect(readFileSync(log, 'utf8')).to.match(/Found QEMU fw_cfg/);
  });

  it('boots a multiboot kernel with --module FILE,ARGS', async () => {
    writeFileSync(join(dir, 'm0'), 'first data\n');
    writeFileSync(join(dir, 'm1'), 'second\n');
    const r = await cli('run', '--kernel', multibootKernel('multiboot'), '--cmdline', 'mbtest hello=world', '--module', `${join(dir, 'm0')},mod-a arg1 arg2`, '--module', `${join(dir, 'm1')},mod-b`);
    expect(r.stdout).to.contain('multiboot: all checks passed');
    expect(r.status).to.equal(33);
  });

  it('refuses a multiboot kernel that requires a video mode, naming the flag', async () => {
    const header = Uint32Array.from([0x1badb002, 4, (-(0x1badb002 + 4)) >>> 0]);
    const file = join(dir, 'video.bin');
    writeFileSync(file, Buffer.from(header.buffer));
    const r = await cli('run', '--kernel', file);
    expect(r.status).to.equal(64);
    expect(r.stderr).to.match(/requires flags 0x4 \(bit 2: a video mode/);
  });
});

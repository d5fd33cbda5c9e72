import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { NodevisorError } from '../src/kvm/errors.js';
import { checkNetOptions, parseHostForward, parseNetSpec } from '../src/vm/net-options.js';
import { formatMac, parseMac, randomMac } from '../src/virtio/net-mac.js';
import { netServeTasks } from '../src/vm/threads/net-io-pool.js';
import { findPasst, passtForwardArgs } from '../src/vm/passt.js';

/** How NICs are described (`--net`, library options) and checked before anything is opened. */

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

function cli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ status: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 60000, env }, (err, _stdout, stderr) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stderr }));
  });
}

describe('network options', function () {
  this.timeout(60000);

  it('parses --net tap=NAME with a MAC and a queue count, and user with host forwards', () => {
    expect(parseNetSpec('tap=tap0')).to.deep.equal({ kind: 'tap', name: 'tap0' });
    expect(parseNetSpec('tap=tap1,mac=52:54:00:aa:bb:cc,queues=2')).to.deep.equal({ kind: 'tap', name: 'tap1', mac: '52:54:00:aa:bb:cc', queues: 2 });
    expect(parseNetSpec('user')).to.deep.equal({ kind: 'user', hostfwd: [] });
    expect(parseNetSpec('user,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp::5353-:53')).to.deep.equal({
      kind: 'user',
      hostfwd: [
        { protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 2222, guestPort: 22 },
        { protocol: 'udp', hostPort: 5353, guestPort: 53 },
      ],
    });
  });

  it('refuses what it cannot use, saying how to write it', () => {
    const bad: Array<[string, RegExp]> = [
      ['bridge=br0', /start with tap=NAME or user/],
      ['tap=t0,queues=9', /queues must be 1-8/],
      ['tap=t0,queues=x', /queues must be 1-8/],
      ['tap=t0,hostfwd=tcp::1-:2', /unknown option "hostfwd" \(tap takes mac, queues\)/],
      ['user,queues=2', /unknown option "queues" \(user takes mac, hostfwd\)/],
      ['user,mac=52:54:00:00:00:01,mac=52:54:00:00:00:02', /mac= is given twice/],
      ['user,hostfwd=tcp:127.0.0.1:70000-:22', /the host port must be 1-65535/],
      ['user,hostfwd=sctp:127.0.0.1:1-:2', /write tcp:HOSTADDR:HOSTPORT-:GUESTPORT/],
      ['user,nonsense', /"nonsense" is not KEY=VALUE/],
    ];
    for (const [spec, why] of bad) expect(() => parseNetSpec(spec), spec).to.throw(NodevisorError, why);
    expect(() => parseHostForward('tcp:localhost:80-:80')).to.throw(/must be an IPv4 address/);
  });

  it('takes unicast MAC addresses only, and makes random ones in QEMU\'s locally administered range', () => {
    expect(parseMac('52:54:00:AB:cd:0f')).to.deep.equal([0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f]);
    expect(parseMac('52-54-00-ab-cd-0f')).to.deep.equal([0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f]);
    expect(() => parseMac('01:00:5e:00:00:01')).to.throw(/multicast/);
    expect(() => parseMac('00:00:00:00:00:00')).to.throw(/all zeroes/);
    expect(() => parseMac('52:54:00:ab:cd')).to.throw(/six hex bytes/);
    expect(() => parseMac('52:54:00-ab:cd:ef')).to.throw(/six hex bytes/);
    const r = randomMac();
    expect(formatMac(r)).to.match(/^52:54:00(:[0-9a-f]{2}){3}$/);
  });

  it('checks every NIC before opening any: names, duplicate taps and MACs, queue counts', () => {
    expect(() => checkNetOptions([{ kind: 'tap', name: 'a/b' }])).to.throw(/not a valid interface name/);
    expect(() => checkNetOptions([{ kind: 'tap', name: 'x'.repeat(16) }])).to.throw(/not a valid interface name/);
    expect(() => checkNetOptions([{ kind: 'tap', name: 't0' }, { kind: 'tap', name: 't0' }])).to.throw(/tap device t0 is given twice/);
    expect(() => checkNetOptions([{ kind: 'user', mac: '52:54:00:00:00:01' }, { kind: 'tap', name: 't0', mac: '52:54:00:00:00:01' }])).to.throw(/52:54:00:00:00:01 is given to two NICs/);
    expect(() => checkNetOptions([{ kind: 'tap', name: 't0', queues: 0 }])).to.throw(/queues must be 1-8/);
    expect(() => checkNetOptions([{ kind: 'wifi' } as never])).to.throw(/kind must be "tap" or "user"/);
    const [a, b] = checkNetOptions([{ kind: 'user' }, { kind: 'user' }]);
    expect(formatMac(a!.mac)).to.not.equal(formatMac(b!.mac));
  });

  it('gives each NIC one I/O thread per queue pair up to the limit, the control queue to the thread of pair 0', () => {
    expect(netServeTasks([{ pairs: 1 }, { pairs: 4 }], 2)).to.deep.equal([
      { nic: 0, pairs: [0], ctrl: false },
      { nic: 1, pairs: [0, 2], ctrl: true },
      { nic: 1, pairs: [1, 3], ctrl: false },
    ]);
    expect(netServeTasks([{ pairs: 2 }], 1)).to.deep.equal([{ nic: 0, pairs: [0, 1], ctrl: true }]);
  });

  it('turns host forwards into passt\'s -t/-u arguments', () => {
    expect(passtForwardArgs({ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 2222, guestPort: 22 })).to.deep.equal(['-t', '127.0.0.1/2222:22']);
    expect(passtForwardArgs({ protocol: 'udp', hostPort: 5353, guestPort: 53 })).to.deep.equal(['-u', '5353:53']);
    expect(findPasst('/nonexistent')).to.equal(undefined);
  });

  it('CLI: a bad --net stops before the VM starts, with exit status 64 and one line saying why', async () => {
    const r = await cli(['run', '--net', 'tap=t0,mac=01:02:03:04:05:06']);
    expect(r.status).to.equal(64);
    expect(r.stderr).to.equal('nodevisor: bad MAC address "01:02:03:04:05:06": it is a multicast address (the first byte is odd); a NIC needs a unicast one, e.g. 52:54:00:12:34:56\n');
  });

  it('CLI: --net user without passt installed says which package to install (exit status 64)', async () => {
    const r = await cli(['run', '--net', 'user'], { ...process.env, PATH: '/nonexistent' });
    expect(r.status).to.equal(64);
    expect(r.stderr).to.equal('nodevisor: user-mode networking (--net user) needs passt, which is not installed: apt-get install passt\n');
  });
});

import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createVm, type Vm } from '../src/index.js';
import { buildInitramfs } from '../src/images/initramfs.js';
import type { VmResult } from '../src/vm/vm.js';
import { ConsoleWatcher, testKernelOrSkip } from './helpers/linux.js';
import { NetNamespace, netOrSkip, startPeer, uniqueIfName, type NetPeer } from './helpers/netns.js';
import { filePattern } from './helpers/net-patterns.js';

/**
 * The Linux test kernel's virtio_net driver on nodevisor's virtio-net:
 * over a tap in a network namespace of the test's own (the guest
 * configures eth0 itself and moves a file both ways over TCP, checked by
 * SHA-256 on each side), and through passt (DHCP, then HTTP from a server
 * on the host's loopback), also across a snapshot and restore.
 */

const BOOT_MS = 240000;
/** Guest kernel code is emulated on the development hosts: TCP in the guest moves tens of KiB/s there. */
const FILE_BYTES = 256 << 10;
const MAC = '52:54:00:4e:56:10';
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** A busybox initramfs whose /init runs `script` and powers off (udhcpc's hook script included). */
function netInitramfs(script: string): Uint8Array {
  const udhcpc = `#!/bin/sh
# busybox udhcpc calls this with the lease in its environment.
case "$1" in
  bound|renew)
    ifconfig "$interface" "$ip" netmask "\${subnet:-255.255.255.0}"
    for r in $router; do route add default gw "$r" dev "$interface"; break; done
    echo "lease $ip router $router"
    ;;
esac
`;
  return buildInitramfs({ busybox: true, initScript: { contents: `#!/bin/sh\nset -e\n${script}` }, files: [{ path: 'etc/udhcpc.script', data: udhcpc, mode: 0o755 }] });
}

async function bootAndRun(vm: Vm, during?: (con: ConsoleWatcher) => Promise<void>): Promise<{ result: VmResult; console: string }> {
  const con = new ConsoleWatcher(vm);
  await vm.start();
  const deadline = setTimeout(() => void vm.stop(), BOOT_MS);
  try {
    if (during) await during(con);
    const result = await vm.wait();
    return { result, console: con.text };
  } catch (e) {
    await vm.stop();
    throw e;
  } finally {
    clearTimeout(deadline);
  }
}

describe('Linux with virtio-net on a tap device in a network namespace', function () {
  this.timeout(300000);
  let out = '';
  let result: VmResult | undefined;
  let uploads: Array<{ bytes: number; sha256: string }> = [];
  let stats: ReturnType<Vm['stats']>['virtio'] = [];

  before(async function () {
    const kernel = testKernelOrSkip(this);
    netOrSkip(this, 'namespaces');
    const ns = NetNamespace.create();
    const tap = uniqueIfName();
    const peers: NetPeer[] = [];
    try {
      const script = `ip link set eth0 up
ip addr add 10.78.0.2/24 dev eth0
echo "eth0 queues: $(ls /sys/class/net/eth0/queues | tr '\\n' ' ')"
echo "eth0 mac $(cat /sys/class/net/eth0/address)"
i=0
until nc 10.78.0.1 7001 </dev/null >/tmp/f; do i=$((i + 1)); [ $i -lt 10 ]; sleep 1; done
echo "download $(wc -c </tmp/f) bytes sha256 $(sha256sum /tmp/f | cut -d' ' -f1)"
nc 10.78.0.1 7002 </tmp/f >/dev/null
echo "upload done"
`;
      const vm = createVm({ vcpus: 2, memory: '256M', irqchip: 'split', kernel, initrd: netInitramfs(script), nets: [{ kind: 'tap', name: tap, mac: MAC, queues: 2 }] });
      const run = await bootAndRun(vm, async (con) => {
        // The VM made the tap; it moves into the namespace long before the guest's driver probes.
        ns.adopt(tap, { address: '10.78.0.1/24' });
        peers.push(await startPeer(ns, ['tcp-file', '10.78.0.1', '7001', String(FILE_BYTES)]));
        peers.push(await startPeer(ns, ['tcp-sink', '10.78.0.1', '7002']));
        await con.waitFor(/upload done|nodevisor-init: exit status/, BOOT_MS);
        stats = vm.stats().virtio;
      });
      out = run.console;
      result = run.result;
      uploads = await peers[1]!.ask<Array<{ bytes: number; sha256: string }>>('report');
    } finally {
      for (const p of peers) p.stop();
      ns.delete();
    }
  });

  it('boots, finds the NIC with the MAC it was given, and powers off after the script', () => {
    expect(result, out.slice(-3000)).to.deep.include({ exitStatus: 0 });
    expect(out).to.contain(`eth0 mac ${MAC}`);
  });

  it('uses both queue pairs (one per vCPU) after the driver turns multiqueue on', () => {
    expect(out).to.match(/eth0 queues: rx-0 rx-1 tx-0 tx-1/);
    expect(stats[0]!.net).to.include({ queuePairs: 2, activePairs: 2, link: 'up' });
  });

  it('downloads a file from a TCP server in the namespace: the guest\'s SHA-256 equals the server\'s', () => {
    expect(out).to.contain(`download ${FILE_BYTES} bytes sha256 ${sha256(filePattern(FILE_BYTES))}`);
  });

  it('uploads it back: the server receives exactly those bytes', () => {
    expect(uploads).to.deep.equal([{ bytes: FILE_BYTES, sha256: sha256(filePattern(FILE_BYTES)) }]);
  });

  it('hands the host\'s TSO packets to the guest whole and passes partial checksums both ways (the offloads the tap carries)', () => {
    const net = stats[0]!.net!;
    expect(net.rx.bytes).to.be.at.least(FILE_BYTES);
    expect(net.tx.bytes).to.be.at.least(FILE_BYTES);
    expect(net.rx.gso, 'GSO packets received').to.be.greaterThan(0);
    expect(net.rx.checksumOffloaded, 'received with NEEDS_CSUM').to.be.greaterThan(0);
    expect(net.tx.checksumOffloaded, 'sent with NEEDS_CSUM').to.be.greaterThan(0);
    expect(net.rx.dropped + net.tx.dropped).to.equal(0);
  });
});

describe('Linux with virtio-net through passt (user-mode networking)', function () {
  this.timeout(300000);
  let out = '';
  let result: VmResult | undefined;
  let server: Server | undefined;

  before(async function () {
    const kernel = testKernelOrSkip(this);
    netOrSkip(this, 'passt');
    const data = filePattern(FILE_BYTES);
    // HTTP rather than a bare stream: busybox nc half-closes at once, and this passt (Debian 12's) stalls when a
    // guest that has half-closed also shrinks its window to zero; wget does not half-close.
    server = createHttpServer((_req, res) => res.end(data));
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const script = `ip link set eth0 up
udhcpc -i eth0 -n -q -s /etc/udhcpc.script
gw=$(route -n | awk '$1 == "0.0.0.0" { print $2 }')
wget -q -O /tmp/f "http://$gw:${port}/file"
echo "download $(wc -c </tmp/f) bytes sha256 $(sha256sum /tmp/f | cut -d' ' -f1)"
`;
    const vm = createVm({ vcpus: 1, memory: '256M', irqchip: 'split', kernel, initrd: netInitramfs(script), nets: [{ kind: 'user' }] });
    try {
      const run = await bootAndRun(vm);
      out = run.console;
      result = run.result;
    } finally {
      server.close();
    }
  });

  it('gets an address and a default route from passt\'s DHCP server', () => {
    expect(result, out.slice(-3000)).to.deep.include({ exitStatus: 0 });
    expect(out).to.match(/lease \d+\.\d+\.\d+\.\d+ router \d+\.\d+\.\d+\.\d+/);
  });

  it('reaches an HTTP server on the host\'s loopback through the gateway address, and gets the file intact', () => {
    expect(out).to.contain(`download ${FILE_BYTES} bytes sha256 ${sha256(filePattern(FILE_BYTES))}`);
  });
});

describe('Linux on passt snapshotted after DHCP and restored onto a new passt', function () {
  this.timeout(400000);
  const bytes = 16 << 10;
  let leased = '';
  let after = '';
  let result: VmResult | undefined;

  before(async function () {
    const kernel = testKernelOrSkip(this);
    netOrSkip(this, 'passt');
    const data = filePattern(bytes);
    const server = createHttpServer((_req, res) => res.end(data));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const dir = mkdtempSync(join(tmpdir(), 'nodevisor-linux-net-snapshot-'));
    // The guest takes its lease and waits on the console; the snapshot is taken there, and only the restored VM goes on.
    const script = `ip link set eth0 up
udhcpc -i eth0 -n -q -s /etc/udhcpc.script
gw=$(route -n | awk '$1 == "0.0.0.0" { print $2 }')
echo "snapshot-me"
read go
wget -q -O /tmp/f "http://$gw:${port}/file"
echo "download $(wc -c </tmp/f) bytes sha256 $(sha256sum /tmp/f | cut -d' ' -f1)"
`;
    try {
      const first = createVm({ vcpus: 1, memory: '256M', kernel, initrd: netInitramfs(script), nets: [{ kind: 'user' }] });
      const con = new ConsoleWatcher(first);
      await first.start();
      try {
        await con.waitFor(/^snapshot-me/m, BOOT_MS);
        await first.snapshot(dir, { resume: false });
        leased = con.text;
      } finally {
        await first.stop();
      }
      const restored = createVm({ restore: dir });
      const run = await bootAndRun(restored, async (c) => {
        restored.sendConsoleInput(Buffer.from('go\n'));
        await c.waitFor(/^download .*$/m, BOOT_MS);
      });
      after = run.console;
      result = run.result;
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('had its lease before the snapshot', () => {
    expect(leased).to.match(/lease \d+\.\d+\.\d+\.\d+ router \d+\.\d+\.\d+\.\d+/);
  });

  it('reaches the host through the new passt after the restore, and gets the file intact', () => {
    expect(result, after.slice(-3000)).to.deep.include({ exitStatus: 0 });
    expect(after).to.contain(`download ${bytes} bytes sha256 ${sha256(filePattern(bytes))}`);
  });
});

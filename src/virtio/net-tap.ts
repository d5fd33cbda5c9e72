import { existsSync, readFileSync } from 'node:fs';
import { native, k, layoutOf } from '../kvm/addon.js';
import { NodevisorError, errnoCode } from '../kvm/errors.js';
import { NET_HDR_SIZE } from './net-header.js';
import type { NetPacketSource } from './net-rx.js';
import type { NetPacketSink, NetSendResult } from './net-tx.js';

/**
 * virtio-net's tap back end: a Linux tap device (/dev/net/tun with
 * IFF_TAP | IFF_NO_PI) opened with IFF_VNET_HDR and a 12-byte header, the
 * layout of virtio_net_hdr with num_buffers, so packets pass between the
 * guest's buffers and the kernel with their offload metadata (partial
 * checksums, GSO) and no copy in this process: readv into receive chains,
 * writev from transmit chains. One file per queue pair (IFF_MULTI_QUEUE
 * when there are several); the kernel spreads incoming flows over the
 * attached ones, and a queue the driver does not use is detached
 * (TUNSETQUEUE), so nothing arrives where nobody reads.
 */

/** The tap names Linux accepts: at most IFNAMSIZ - 1 bytes, no '/', whitespace or ':'. */
export function validTapName(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) < k('IFNAMSIZ') && !/[/\s:]/.test(name) && name !== '.' && name !== '..';
}

function ifreq(name: string, flags: number): Uint8Array {
  const l = layoutOf('ifreq');
  const buf = new Uint8Array(l.size);
  buf.set(Buffer.from(name), l.ifr_name!);
  new DataView(buf.buffer).setInt16(l.ifr_flags!, flags, true);
  return buf;
}

/** The tun_flags of an existing tap (sysfs), or undefined if there is no such device here. */
function existingTapFlags(name: string): number | undefined {
  const p = `/sys/class/net/${name}/tun_flags`;
  if (!existsSync(p)) return undefined;
  return Number.parseInt(readFileSync(p, 'utf8').trim(), 16);
}

/**
 * Whether `name` exists as a tap created without multi_queue, so that it
 * can only be opened with one queue pair.
 */
export function tapIsSingleQueue(name: string): boolean {
  const flags = existingTapFlags(name);
  return flags !== undefined && (flags & k('IFF_MULTI_QUEUE')) === 0;
}

/**
 * Opens (creating it if it does not exist) tap `name` with `queues` files,
 * each non-blocking, with the virtio-net header, all but the first
 * detached until the driver asks for more queue pairs; the device lives
 * while the files are open unless it was made persistent (`ip tuntap add`).
 * Errors name the device and what to do.
 */
export function openTap(name: string, queues: number): number[] {
  const fds: number[] = [];
  const flags = k('IFF_TAP') | k('IFF_NO_PI') | k('IFF_VNET_HDR') | (queues > 1 ? k('IFF_MULTI_QUEUE') : 0);
  try {
    for (let q = 0; q < queues; q++) {
      let fd: number;
      try {
        fd = native.open('/dev/net/tun');
      } catch (e) {
        throw tapError(name, queues, e, 'open /dev/net/tun');
      }
      fds.push(fd);
      try {
        native.ioctl(fd, k('TUNSETIFF'), ifreq(name, flags));
        const size = new Int32Array([NET_HDR_SIZE]);
        native.ioctl(fd, k('TUNSETVNETHDRSZ'), size);
        // No offloads until the driver has negotiated them.
        native.ioctl(fd, k('TUNSETOFFLOAD'), 0);
      } catch (e) {
        throw tapError(name, queues, e, 'TUNSETIFF');
      }
      native.setNonBlocking(fd, true);
    }
    // The driver starts with one queue pair: the kernel must not steer packets to the others yet.
    for (const fd of fds.slice(1)) setTapQueueAttached(fd, false);
    return fds;
  } catch (e) {
    for (const fd of fds) native.close(fd);
    throw e;
  }
}

function tapError(name: string, queues: number, e: unknown, what: string): NodevisorError {
  const code = errnoCode(e);
  const why = (() => {
    switch (code) {
      case 'ENOENT':
      case 'ENODEV':
        return '/dev/net/tun does not exist: load the tun module (modprobe tun)';
      case 'EPERM':
      case 'EACCES':
        return 'no permission: opening or creating a tap device needs CAP_NET_ADMIN (run as root, or create it for your user with `ip tuntap add NAME mode tap user $USER`' + (queues > 1 ? ' multi_queue' : '') + ')';
      case 'EBUSY':
        return 'it is busy: another process has it open (a tap without multi_queue takes one user)';
      case 'EINVAL':
        return tapIsSingleQueue(name) && queues > 1
          ? `it was created without multi_queue, so it cannot carry ${queues} queue pairs: use queues=1, or recreate it with \`ip tuntap add ${name} mode tap multi_queue\``
          : 'the kernel refused its flags: is it a tun (not tap) device, or a multi_queue tap opened with queues=1?';
      default:
        return `${what}: ${e instanceof Error ? e.message : String(e)}`;
    }
  })();
  return new NodevisorError('ENET', `tap device ${name}: ${why}`, { cause: e });
}

/** Which offloads the tap may hand us (TUNSETOFFLOAD; TUN_F_* flags). */
export function setTapOffload(fd: number, flags: number): void {
  native.ioctl(fd, k('TUNSETOFFLOAD'), flags);
}

/** Attaches or detaches one queue file of a multi_queue tap (TUNSETQUEUE). */
export function setTapQueueAttached(fd: number, attached: boolean): void {
  native.ioctl(fd, k('TUNSETQUEUE'), ifreq('', attached ? k('IFF_ATTACH_QUEUE') : k('IFF_DETACH_QUEUE')));
}

/** Errors that mean the tap (or this queue of it) is gone for good: deleted, or its namespace with it. */
const GONE = new Set(['EBADFD', 'ENODEV', 'ENXIO', 'EBADF']);
/** A read fails with EIO too while the device is being unregistered. */
const GONE_READING = new Set([...GONE, 'EIO']);

/** One queue file of a tap, as the I/O thread that serves its queue pair uses it. */
export class TapQueueIo implements NetPacketSource, NetPacketSink {
  gone = false;
  why = '';

  constructor(readonly fd: number) {}

  receive(views: readonly Uint8Array[]): number {
    if (this.gone) return -1;
    try {
      const n = native.readv(this.fd, views);
      return n < 0 ? 0 : n;
    } catch (e) {
      if (!GONE_READING.has(errnoCode(e) ?? '')) throw e;
      this.lose(e);
      return -1;
    }
  }

  transmit(views: readonly Uint8Array[]): NetSendResult {
    if (this.gone) return 'dropped';
    try {
      return native.writev(this.fd, views) < 0 ? 'busy' : 'sent';
    } catch (e) {
      const code = errnoCode(e) ?? '';
      if (GONE.has(code)) this.lose(e);
      // EIO: the interface is down; EINVAL: a header or length the kernel refuses. The packet is lost, as on a wire.
      if (GONE.has(code) || code === 'EIO' || code === 'EINVAL' || code === 'EFAULT' || code === 'EMSGSIZE') return 'dropped';
      throw e;
    }
  }

  private lose(e: unknown): void {
    this.gone = true;
    this.why = `the tap device is gone (${errnoCode(e)}: deleted, or its network namespace was)`;
  }
}

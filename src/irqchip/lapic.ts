/**
 * Local APIC model (Intel SDM vol. 3, ch. 11), shared by every thread: the
 * public entry point. `LapicSet` lays out all local APICs of a VM in one
 * SharedArrayBuffer, gives each thread a view over it, and is the APIC bus
 * that routes IPIs, IOAPIC redirections and MSIs to them. The per-APIC logic
 * is in lapic-core.ts, the timer in lapic-timer.ts, constants and the
 * shared layout in lapic-regs.ts; all are re-exported here.
 */
import { loadState, saveState, type SavedState } from '../sync/state-layout.js';
import type { AccessSize, BusDevice } from '../devices/device.js';
import { DeliveryMode, Shorthand, type ApicBus, type ApicMessage, type WakeFn } from './types.js';
import { Lapic, type LapicSetOptions } from './lapic-core.js';
import {
  APIC_BASE_EN,
  APIC_BASE_EXTD,
  BLOCK_WORDS,
  F64_PER_BLOCK,
  H_COUNT,
  H_IDS_CHANGED,
  H_INIT,
  H_MAGIC,
  H_ROUND_ROBIN,
  HEADER_WORDS,
  lapicSetLayout,
  LAPIC_DEFAULT_BASE,
  LAPIC_MAGIC,
  LAPIC_MMIO_SIZE,
  LAPIC_SET_MIGRATIONS,
  W_BASE_LO,
  W_DFR,
  W_ID,
  W_INITIAL_ID,
  W_LDR,
} from './lapic-regs.js';

export * from './lapic-regs.js';
export { Lapic, x2apicLogicalId, type LapicMode, type LapicSetOptions } from './lapic-core.js';
export { APIC_BUS_NS_PER_TICK, MIN_PERIODIC_NS, timerDivisor } from './lapic-timer.js';

const X2APIC_BROADCAST = 0xffffffff;
const XAPIC_BROADCAST = 0xff;

/**
 * The local APICs of a VM: a per-thread view over shared state, and the
 * "APIC bus" that IPIs, IOAPIC redirections and MSIs are delivered on.
 */
export class LapicSet implements ApicBus {
  readonly count: number;
  private readonly i32: Int32Array;
  private readonly lapics: Lapic[];
  private readonly wake: WakeFn;
  private readonly ipiDelivered?: (from: number, to: number) => void;
  /** APIC ID -> vCPU index for IDs below 255 (the physical-destination shortcut). */
  private readonly idToIndex: Int32Array;
  /** All initial IDs are below 255, so 8- and 32-bit IDs cannot alias. */
  private readonly smallIds: boolean;

  /** Every APIC's state by name (the VM paused). */
  static save(buffer: SharedArrayBuffer): SavedState {
    return saveState(lapicSetLayout(new Int32Array(buffer, 0, HEADER_WORDS)[H_COUNT]!), buffer);
  }

  /** Loads saved APICs into a freshly allocated set of the same size, before any view is built. */
  static load(buffer: SharedArrayBuffer, saved: SavedState): void {
    loadState(lapicSetLayout(new Int32Array(buffer, 0, HEADER_WORDS)[H_COUNT]!), buffer, saved, LAPIC_SET_MIGRATIONS);
  }

  /** Shared state for `count` local APICs; pass it to every thread's `new LapicSet`. */
  static allocate(count: number): SharedArrayBuffer {
    if (!Number.isInteger(count) || count < 1) throw new RangeError('need at least one local APIC');
    const buffer = lapicSetLayout(count).allocate();
    const h = new Int32Array(buffer, 0, HEADER_WORDS);
    h[H_MAGIC] = LAPIC_MAGIC;
    h[H_COUNT] = count;
    return buffer;
  }

  constructor(buffer: SharedArrayBuffer, options: LapicSetOptions) {
    const i32 = new Int32Array(buffer);
    if (i32.length < HEADER_WORDS || i32[H_MAGIC] !== LAPIC_MAGIC) {
      throw new TypeError('not a LapicSet buffer (use LapicSet.allocate)');
    }
    const count = i32[H_COUNT]!;
    this.count = count;
    this.i32 = i32;
    this.wake = options.wake;
    this.ipiDelivered = options.ipiDelivered;
    const f64 = new Float64Array(buffer);
    if (f64.length * 2 < HEADER_WORDS + count * BLOCK_WORDS || BLOCK_WORDS !== F64_PER_BLOCK * 2) {
      throw new RangeError('LapicSet buffer too small');
    }

    const ids = options.apicIds ?? Array.from({ length: count }, (_, i) => i);
    if (ids.length !== count) throw new RangeError(`apicIds has ${ids.length} entries, expected ${count}`);
    const seen = new Set<number>();
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id > 0xfffffffe || seen.has(id)) {
        throw new RangeError(`invalid or duplicate APIC ID ${id}`);
      }
      seen.add(id);
    }
    this.idToIndex = new Int32Array(XAPIC_BROADCAST).fill(-1);
    this.smallIds = ids.every((id) => id < XAPIC_BROADCAST);
    ids.forEach((id, i) => {
      if (id < XAPIC_BROADCAST) this.idToIndex[id] = i;
    });

    this.lapics = [];
    for (let i = 0; i < count; i++) this.lapics.push(new Lapic(this, i, i32, f64, options));
    this.initialiseOnce(ids, options.apicIds !== undefined);
  }

  /**
   * The first view built powers the APICs up; the others wait for it, then
   * check that they were given the same IDs.
   */
  private initialiseOnce(ids: readonly number[], explicitIds: boolean): void {
    const h = this.i32;
    if (Atomics.compareExchange(h, H_INIT, 0, 1) === 0) {
      for (let i = 0; i < this.count; i++) {
        Atomics.store(h, HEADER_WORDS + i * BLOCK_WORDS + W_INITIAL_ID, ids[i]! | 0);
        this.lapics[i]!.powerUp();
      }
      Atomics.store(h, H_INIT, 2);
      Atomics.notify(h, H_INIT);
      return;
    }
    for (let tries = 0; Atomics.load(h, H_INIT) !== 2; tries++) {
      if (tries === 100) throw new Error('LapicSet initialisation did not finish');
      Atomics.wait(h, H_INIT, 1, 100);
    }
    if (explicitIds && ids.some((id, i) => this.lapics[i]!.initialApicId !== id)) {
      throw new RangeError('apicIds differ from those the buffer was initialised with');
    }
  }

  /** The local APIC of vCPU `vcpu`. */
  get(vcpu: number): Lapic {
    const lapic = this.lapics[vcpu];
    if (lapic === undefined) throw new RangeError(`no local APIC for vCPU ${vcpu}`);
    return lapic;
  }

  /**
   * Delivers a message on the APIC bus (any thread): decodes the destination,
   * picks the target(s), accepts on each and wakes those on which something
   * became newly pending. Returns the number of such targets; a message that
   * coalesced with an interrupt already pending in IRR (or an event already
   * pending) counts 0 there, as do refusals (globally or software-disabled
   * targets, illegal vectors). INIT level de-assert is accepted by nobody.
   */
  deliver(msg: ApicMessage): number {
    const mode = msg.deliveryMode;
    if (mode === DeliveryMode.INIT && msg.levelTriggered && !msg.assert) return 0;
    const dest = msg.dest >>> 0;
    if (
      msg.shorthand === Shorthand.None &&
      !msg.logical &&
      dest < XAPIC_BROADCAST &&
      this.smallIds &&
      Atomics.load(this.i32, H_IDS_CHANGED) === 0
    ) {
      // Every ID is its unique initial one: at most this APIC can match.
      const i = this.idToIndex[dest]!;
      return i >= 0 && this.lapics[i]!.hwEnabled() ? this.acceptOn(i, msg) : 0;
    }
    if (mode === DeliveryMode.LowestPriority) {
      const i = this.arbitrate(msg);
      return i >= 0 ? this.acceptOn(i, msg) : 0;
    }
    let n = 0;
    for (let i = 0; i < this.count; i++) if (this.matches(i, msg)) n += this.acceptOn(i, msg);
    return n;
  }

  private acceptOn(i: number, msg: ApicMessage): number {
    if (msg.source >= 0) this.ipiDelivered?.(msg.source, i);
    if (!this.lapics[i]!.accept(msg)) return 0;
    this.wake(i);
    return 1;
  }

  /**
   * Lowest-priority delivery (SDM 11.6.2.4): the software-enabled match with
   * the lowest arbitration priority. Ties go round-robin: each arbitration
   * starts its scan one APIC further on. No focus-processor check.
   */
  private arbitrate(msg: ApicMessage): number {
    const n = this.count;
    let i = (Atomics.add(this.i32, H_ROUND_ROBIN, 1) >>> 0) % n;
    let best = -1;
    let bestApr = 0x100;
    for (let k = 0; k < n; k++, i = i + 1 === n ? 0 : i + 1) {
      if (!this.matches(i, msg)) continue;
      const lapic = this.lapics[i]!;
      if (!lapic.swEnabled()) continue;
      const apr = lapic.apr();
      if (apr < bestApr) {
        best = i;
        bestApr = apr;
      }
    }
    return best;
  }

  /**
   * Destination matching (SDM 11.6.2). `msg.x2apic` says whether `dest` is a
   * 32-bit x2APIC destination (broadcast 0xFFFFFFFF) or 8-bit (broadcast
   * 0xFF). Mixed modes follow KVM: an x2APIC target compares an 8-bit
   * destination with its full ID and takes 0xFF as broadcast; an xAPIC
   * target matches 32-bit destinations only within its 8-bit ID space.
   */
  private matches(i: number, msg: ApicMessage): boolean {
    const s = this.i32;
    const b = HEADER_WORDS + i * BLOCK_WORDS;
    const base = Atomics.load(s, b + W_BASE_LO);
    if (!(base & APIC_BASE_EN)) return false; // globally disabled: not on the bus
    switch (msg.shorthand) {
      case Shorthand.Self:
        return i === msg.source;
      case Shorthand.AllIncludingSelf:
        return true;
      case Shorthand.AllExcludingSelf:
        return i !== msg.source;
      default:
        break;
    }
    const dest = msg.dest >>> 0;
    const broadcast = msg.x2apic === true ? X2APIC_BROADCAST : XAPIC_BROADCAST;
    if (dest === broadcast) return true;
    const x2 = (base & APIC_BASE_EXTD) !== 0;
    if (!msg.logical) {
      const id = Atomics.load(s, b + W_ID) >>> 0;
      return x2 ? dest === id : dest === (id & 0xff);
    }
    const ldr = Atomics.load(s, b + W_LDR) >>> 0;
    if (x2) return ldr >>> 16 === dest >>> 16 && (ldr & dest & 0xffff) !== 0;
    if (dest > 0xff) return false;
    const logicalId = ldr >>> 24;
    if (Atomics.load(s, b + W_DFR) >>> 28 === 0xf) return (logicalId & dest) !== 0; // flat
    // Cluster: high nibble selects the cluster, low nibble the members.
    return logicalId >>> 4 === dest >>> 4 && (logicalId & dest & 0xf) !== 0;
  }
}

/**
 * The xAPIC MMIO page as a bus device: every vCPU reaches its own APIC at
 * the same address. An APIC whose IA32_APIC_BASE points elsewhere (or is
 * globally disabled / in x2APIC mode) does not answer here: reads 0.
 */
export function createMmioDevice(set: LapicSet, base: number = LAPIC_DEFAULT_BASE): BusDevice {
  const decodes = (lapic: Lapic, offset: number): boolean =>
    offset >= 0 && offset < LAPIC_MMIO_SIZE && lapic.baseAddress() === base;
  return {
    name: 'lapic',
    read(offset: number, size: AccessSize, vcpu: number): number {
      const lapic = set.get(vcpu);
      return decodes(lapic, offset) ? lapic.read(offset, size) : 0;
    },
    write(offset: number, size: AccessSize, value: number, vcpu: number): void {
      const lapic = set.get(vcpu);
      if (decodes(lapic, offset)) lapic.write(offset, size, value);
    },
  };
}

/**
 * One vCPU of the LAPIC stress test: sends fixed physical interrupts to
 * random vCPUs through `LapicSet.deliver` while, as the owner of its own
 * APIC, it acknowledges and EOIs whatever arrives, parking on its WakeWord
 * when nothing is pending. Reports exact per-(target, vector) counts of
 * acceptances that set a new IRR bit, and its own per-vector acknowledgements.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { LapicSet, LapicReg } from '../src/irqchip/lapic.js';
import { DeliveryMode, Shorthand, type ApicMessage } from '../src/irqchip/types.js';
import { FakeClock } from '../src/sync/clock.js';
import { WakeWord } from '../src/sync/wake-word.js';

/** Words of the control SharedArrayBuffer. */
export const CTL_READY = 0;
export const CTL_START = 1;
export const CTL_DONE_SENDING = 2;
export const CTL_WAKE = 4; // one WakeWord per vCPU from here
export const ctlWords = (vcpus: number): number => CTL_WAKE + vcpus;

export interface StressWorkerData {
  lapics: SharedArrayBuffer;
  ctl: SharedArrayBuffer;
  vcpu: number;
  vcpus: number;
  sends: number;
  seed: number;
  /** Any single wait longer than this fails the test. */
  waitTimeoutMs: number;
}

export interface StressResult {
  vcpu: number;
  /** [target * 256 + vector]: deliveries that set a new IRR bit. */
  newlyPending: Int32Array;
  /** [vector]: acknowledgements by this vCPU. */
  acknowledged: Int32Array;
  coalesced: number;
  parks: number;
  sendMs: number;
}

const HOT_VECTORS = [0x40, 0x41, 0x80, 0xf0];

function run(data: StressWorkerData): StressResult {
  const ctl = new Int32Array(data.ctl);
  const wakeWords = Array.from({ length: data.vcpus }, (_, i) => new WakeWord(ctl, CTL_WAKE + i));
  const set = new LapicSet(data.lapics, { clock: new FakeClock(), wake: (t) => wakeWords[t]!.notify() });
  const me = set.get(data.vcpu);
  const myWake = wakeWords[data.vcpu]!;
  const newlyPending = new Int32Array(data.vcpus * 256);
  const acknowledged = new Int32Array(256);
  let coalesced = 0;
  let parks = 0;
  let eoiByMmio = false;

  const wait = (index: number, value: number, what: string): void => {
    if (Atomics.wait(ctl, index, value, data.waitTimeoutMs) === 'timed-out') {
      throw new Error(`vCPU ${data.vcpu}: timed out waiting for ${what}`);
    }
  };

  /** Takes everything deliverable: nests as deep as priorities allow, then EOIs. */
  const service = (): void => {
    for (;;) {
      let depth = 0;
      for (let v = me.pendingVector(); v >= 0; v = me.pendingVector()) {
        // A higher vector may arrive in between; only the owner clears IRR,
        // so what was pending cannot vanish (no spurious acknowledge here).
        const got = me.acknowledge();
        if (got < v) throw new Error(`vCPU ${data.vcpu}: pending ${v} but acknowledged ${got}`);
        acknowledged[got]!++;
        depth++;
      }
      if (depth === 0) return;
      for (; depth > 0; depth--) {
        // Alternate between the register path and the direct call.
        if ((eoiByMmio = !eoiByMmio)) me.write(LapicReg.EOI, 4, 0);
        else me.eoi();
      }
    }
  };

  const msg: ApicMessage = {
    vector: 0,
    deliveryMode: DeliveryMode.Fixed,
    logical: false,
    dest: 0,
    levelTriggered: false,
    assert: true,
    shorthand: Shorthand.None,
    source: data.vcpu,
  };

  Atomics.add(ctl, CTL_READY, 1);
  Atomics.notify(ctl, CTL_READY);
  while (Atomics.load(ctl, CTL_START) === 0) wait(CTL_START, 0, 'the start signal');

  const t0 = performance.now();
  let rng = data.seed | 1;
  for (let n = 0; n < data.sends; n++) {
    // xorshift32
    rng ^= rng << 13;
    rng ^= rng >>> 17;
    rng ^= rng << 5;
    const r = rng >>> 0;
    const target = r % data.vcpus;
    // A quarter from a few hot vectors, so that coalescing really happens.
    const vector = (r & 0x300) === 0 ? HOT_VECTORS[(r >>> 9) & 3]! : 0x20 + ((r >>> 12) % 0xe0);
    msg.dest = target;
    msg.vector = vector;
    if (set.deliver(msg) === 1) newlyPending[target * 256 + vector]!++;
    else coalesced++;
    if ((n & 3) === 3) service();
  }
  const sendMs = performance.now() - t0;

  // Tell everyone, then keep serving until every sender is done and nothing
  // is left; sleeping only on the WakeWord, sampled before the check.
  Atomics.add(ctl, CTL_DONE_SENDING, 1);
  for (const w of wakeWords) w.notify();
  for (;;) {
    const seen = myWake.snapshot();
    service();
    if (Atomics.load(ctl, CTL_DONE_SENDING) === data.vcpus) {
      // Every delivery happened before its sender's increment: one last pass sees them all.
      service();
      break;
    }
    parks++;
    if (!myWake.wait(seen, data.waitTimeoutMs)) throw new Error(`vCPU ${data.vcpu}: parked without a wake-up`);
  }
  return { vcpu: data.vcpu, newlyPending, acknowledged, coalesced, parks, sendMs };
}

if (!isMainThread && parentPort !== null) {
  parentPort.postMessage(run(workerData as StressWorkerData));
}

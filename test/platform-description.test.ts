import { expect } from 'chai';
import { acpiContents } from '../src/boot/acpi/tables.js';
import { IapcBootArch } from '../src/boot/acpi/fadt.js';
import { describeDevices } from '../src/vm/device-specs.js';
import { platformDescription, platformDevices } from '../src/vm/platform.js';

const latin1 = (b: Uint8Array): string => Buffer.from(b).toString('latin1');
const platform = { ramSize: 256 << 20, vcpus: 2 };

describe('the firmware tables describe the devices the platform declares', () => {
  it('takes the PM block, SCI, S5 type, reset register, 8042, RTC, PCI host and pvpanic from the declared devices', () => {
    expect(platformDescription(platform)).to.deep.equal({
      pmBase: 0x600,
      sciIrq: 9,
      s5SlpTyp: 5,
      reset: { port: 0xcf9, value: 0x06 },
      i8042: true,
      cmosRtc: true,
      pciHostBridge: true,
      pvpanicPort: 0x505,
    });
  });

  it('follows a declared port: a pvpanic elsewhere is described where it is', () => {
    const specs = platformDevices(platform).map((s) => (s.kind === 'pvpanic' ? { ...s, port: 0x515 } : s));
    expect(describeDevices(specs).pvpanicPort).to.equal(0x515);
  });

  it('describes nothing a platform leaves out: no pvpanic, PCI host, 8042, RTC or reset register in its tables', () => {
    const full = acpiContents({ cpus: 1, ...platformDescription(platform) });
    const bare = describeDevices(platformDevices(platform).filter((s) => !['pvpanic', 'pci-host', 'i8042', 'rtc'].includes(s.kind)));
    expect(bare).to.include({ i8042: false, cmosRtc: false, pciHostBridge: false, pvpanicPort: null, reset: null });
    const tables = acpiContents({ cpus: 1, ...bare });
    expect(latin1(full.dsdt)).to.include('QEMU0001').and.to.include('PCI0');
    expect(latin1(tables.dsdt)).to.not.include('QEMU0001');
    expect(latin1(tables.dsdt)).to.not.include('PCI0');
    const bootArch = (fadt: Uint8Array): number => fadt[109]! | (fadt[110]! << 8);
    expect(bootArch(full.fadt(0, 0)) & IapcBootArch.I8042).to.equal(IapcBootArch.I8042);
    expect(bootArch(tables.fadt(0, 0)) & IapcBootArch.I8042).to.equal(0);
    expect(bootArch(tables.fadt(0, 0)) & IapcBootArch.CMOS_RTC_NOT_PRESENT).to.equal(IapcBootArch.CMOS_RTC_NOT_PRESENT);
  });
});

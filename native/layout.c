/* Constants and struct layouts from the kernel headers, compiled as C:
 * <linux/kvm.h> uses flexible array members, which C++ sizes differently,
 * and ioctl numbers encode struct sizes. */
#define _GNU_SOURCE
#include <stddef.h>
#include <fcntl.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <sys/eventfd.h>
#include <linux/kvm.h>
#include <liburing.h>
#include <poll.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include "layout.h"

#define K(name) {#name, (double)(name)},

const struct nv_constant nv_constants[] = {

  // system / VM ioctls
K(KVM_GET_API_VERSION)
K(KVM_CREATE_VM)
K(KVM_CHECK_EXTENSION)
K(KVM_GET_VCPU_MMAP_SIZE)
K(KVM_GET_SUPPORTED_CPUID)
K(KVM_GET_MSR_INDEX_LIST)
K(KVM_CREATE_VCPU)
K(KVM_SET_USER_MEMORY_REGION)
K(KVM_SET_TSS_ADDR)
K(KVM_SET_IDENTITY_MAP_ADDR)
K(KVM_CREATE_IRQCHIP)
K(KVM_IRQ_LINE)
K(KVM_IRQ_LINE_STATUS)
K(KVM_CREATE_PIT2)
K(KVM_ENABLE_CAP)
K(KVM_SIGNAL_MSI)
K(KVM_IRQFD)
K(KVM_IOEVENTFD)
K(KVM_GET_DIRTY_LOG)
K(KVM_CLEAR_DIRTY_LOG)
K(KVM_X86_SET_MSR_FILTER)
K(KVM_SET_GSI_ROUTING)
K(KVM_GET_CLOCK)
K(KVM_SET_CLOCK)
K(KVM_GET_IRQCHIP)
K(KVM_SET_IRQCHIP)
K(KVM_GET_PIT2)
K(KVM_SET_PIT2)
K(KVM_HAS_DEVICE_ATTR)
K(KVM_GET_DEVICE_ATTR)
K(KVM_SET_DEVICE_ATTR)
// vCPU ioctls
K(KVM_RUN)
K(KVM_GET_REGS)
K(KVM_SET_REGS)
K(KVM_GET_SREGS)
K(KVM_SET_SREGS)
K(KVM_GET_FPU)
K(KVM_SET_FPU)
K(KVM_GET_MSRS)
K(KVM_SET_MSRS)
K(KVM_SET_CPUID2)
K(KVM_GET_CPUID2)
K(KVM_GET_VCPU_EVENTS)
K(KVM_SET_VCPU_EVENTS)
K(KVM_GET_MP_STATE)
K(KVM_SET_MP_STATE)
K(KVM_INTERRUPT)
K(KVM_NMI)
K(KVM_GET_TSC_KHZ)
K(KVM_SET_TSC_KHZ)
K(KVM_SET_GUEST_DEBUG)
K(KVM_GET_LAPIC)
K(KVM_SET_LAPIC)
K(KVM_GET_XSAVE)
K(KVM_SET_XSAVE)
K(KVM_GET_XCRS)
K(KVM_SET_XCRS)
K(KVM_GET_DEBUGREGS)
K(KVM_SET_DEBUGREGS)
K(KVM_VCPU_TSC_CTRL)
K(KVM_VCPU_TSC_OFFSET)
K(KVM_CLOCK_TSC_STABLE)
K(KVM_TRANSLATE)
// capabilities
K(KVM_CAP_IRQCHIP)
K(KVM_CAP_HLT)
K(KVM_CAP_USER_MEMORY)
K(KVM_CAP_SET_TSS_ADDR)
K(KVM_CAP_EXT_CPUID)
K(KVM_CAP_NR_VCPUS)
K(KVM_CAP_MAX_VCPUS)
K(KVM_CAP_MAX_VCPU_ID)
K(KVM_CAP_NR_MEMSLOTS)
K(KVM_CAP_IRQFD)
K(KVM_CAP_IOEVENTFD)
K(KVM_CAP_IOEVENTFD_ANY_LENGTH)
K(KVM_CAP_IMMEDIATE_EXIT)
K(KVM_CAP_SYNC_REGS)
K(KVM_CAP_SPLIT_IRQCHIP)
K(KVM_CAP_X86_USER_SPACE_MSR)
K(KVM_CAP_X86_MSR_FILTER)
K(KVM_CAP_X2APIC_API)
K(KVM_CAP_GET_TSC_KHZ)
K(KVM_CAP_SET_GUEST_DEBUG)
K(KVM_CAP_SET_GUEST_DEBUG2)
K(KVM_CAP_SIGNAL_MSI)
K(KVM_CAP_PIT2)
K(KVM_CAP_VCPU_EVENTS)
K(KVM_CAP_MP_STATE)
K(KVM_CAP_READONLY_MEM)
K(KVM_CAP_EXIT_ON_EMULATION_FAILURE)
K(KVM_CAP_X86_TRIPLE_FAULT_EVENT)
K(KVM_CAP_ADJUST_CLOCK)
K(KVM_CAP_TSC_DEADLINE_TIMER)
K(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)
K(KVM_CAP_VCPU_ATTRIBUTES)
K(KVM_CAP_XSAVE)
K(KVM_CAP_XCRS)
K(KVM_CAP_DEBUGREGS)
// exit reasons
K(KVM_EXIT_UNKNOWN)
K(KVM_EXIT_EXCEPTION)
K(KVM_EXIT_IO)
K(KVM_EXIT_HYPERCALL)
K(KVM_EXIT_DEBUG)
K(KVM_EXIT_HLT)
K(KVM_EXIT_MMIO)
K(KVM_EXIT_IRQ_WINDOW_OPEN)
K(KVM_EXIT_SHUTDOWN)
K(KVM_EXIT_FAIL_ENTRY)
K(KVM_EXIT_INTR)
K(KVM_EXIT_SET_TPR)
K(KVM_EXIT_TPR_ACCESS)
K(KVM_EXIT_NMI)
K(KVM_EXIT_INTERNAL_ERROR)
K(KVM_EXIT_SYSTEM_EVENT)
K(KVM_EXIT_IOAPIC_EOI)
K(KVM_EXIT_X86_RDMSR)
K(KVM_EXIT_X86_WRMSR)
K(KVM_EXIT_IO_IN)
K(KVM_EXIT_IO_OUT)
K(KVM_INTERNAL_ERROR_EMULATION)
K(KVM_INTERNAL_ERROR_SIMUL_EX)
K(KVM_INTERNAL_ERROR_DELIVERY_EV)
K(KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON)
K(KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)
K(KVM_SYSTEM_EVENT_SHUTDOWN)
K(KVM_SYSTEM_EVENT_RESET)
K(KVM_SYSTEM_EVENT_CRASH)
K(KVM_MP_STATE_RUNNABLE)
K(KVM_MP_STATE_UNINITIALIZED)
K(KVM_MP_STATE_INIT_RECEIVED)
K(KVM_MP_STATE_HALTED)
K(KVM_MP_STATE_SIPI_RECEIVED)
K(KVM_SYNC_X86_REGS)
K(KVM_SYNC_X86_SREGS)
K(KVM_SYNC_X86_EVENTS)
K(KVM_VCPUEVENT_VALID_NMI_PENDING)
K(KVM_VCPUEVENT_VALID_SIPI_VECTOR)
K(KVM_VCPUEVENT_VALID_SHADOW)
K(KVM_VCPUEVENT_VALID_PAYLOAD)
K(KVM_VCPUEVENT_VALID_TRIPLE_FAULT)
K(KVM_IOEVENTFD_FLAG_DATAMATCH)
K(KVM_IOEVENTFD_FLAG_PIO)
K(KVM_IOEVENTFD_FLAG_DEASSIGN)
// eventfd(2), fallocate(2)
K(EFD_NONBLOCK)
K(EFD_CLOEXEC)
K(EFD_SEMAPHORE)
K(FALLOC_FL_KEEP_SIZE)
K(FALLOC_FL_PUNCH_HOLE)
K(SEEK_DATA)
// io_uring (src/kvm/io-uring.ts): the features and operations it relies on
K(IORING_FEAT_NODROP)
K(IORING_FEAT_SUBMIT_STABLE)
K(IORING_OP_READV)
K(IORING_OP_WRITEV)
K(IORING_OP_READ)
K(IORING_OP_WRITE)
K(IORING_OP_FSYNC)
K(IORING_OP_FALLOCATE)
K(IORING_OP_TIMEOUT)
K(SEEK_HOLE)
K(KVM_MEM_LOG_DIRTY_PAGES)
K(KVM_MEM_READONLY)
K(KVM_GUESTDBG_ENABLE)
K(KVM_GUESTDBG_SINGLESTEP)
K(KVM_GUESTDBG_USE_SW_BP)
K(KVM_GUESTDBG_USE_HW_BP)
K(KVM_GUESTDBG_BLOCKIRQ)
K(KVM_MSR_EXIT_REASON_INVAL)
K(KVM_MSR_EXIT_REASON_UNKNOWN)
K(KVM_MSR_EXIT_REASON_FILTER)
K(KVM_MSR_FILTER_READ)
K(KVM_MSR_FILTER_WRITE)
K(KVM_MSR_FILTER_DEFAULT_ALLOW)
K(KVM_MSR_FILTER_DEFAULT_DENY)
K(KVM_MSR_FILTER_MAX_RANGES)
K(KVM_X2APIC_API_USE_32BIT_IDS)
K(KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK)
K(KVM_IRQFD_FLAG_DEASSIGN)
K(KVM_IOEVENTFD_FLAG_DATAMATCH)
K(KVM_IOEVENTFD_FLAG_PIO)
K(KVM_IOEVENTFD_FLAG_DEASSIGN)
K(KVM_CPUID_FLAG_SIGNIFCANT_INDEX)
K(KVM_IRQ_ROUTING_MSI)
K(KVM_IRQ_ROUTING_IRQCHIP)
// tap devices (virtio-net's tap back end) and poll(2)
K(TUNSETIFF)
K(TUNSETOFFLOAD)
K(TUNSETVNETHDRSZ)
K(TUNSETVNETLE)
K(TUNSETQUEUE)
K(TUNGETFEATURES)
K(IFF_TAP)
K(IFF_NO_PI)
K(IFF_VNET_HDR)
K(IFF_MULTI_QUEUE)
K(IFF_ATTACH_QUEUE)
K(IFF_DETACH_QUEUE)
K(TUN_F_CSUM)
K(TUN_F_TSO4)
K(TUN_F_TSO6)
K(TUN_F_TSO_ECN)
K(TUN_F_UFO)
K(IFNAMSIZ)
K(POLLIN)
K(POLLOUT)
K(POLLERR)
K(POLLHUP)
K(POLLNVAL)
};
const size_t nv_constants_count = sizeof(nv_constants) / sizeof(nv_constants[0]);

const struct nv_field nv_fields[] = {
  {"kvm_irq_routing", "size", sizeof(struct kvm_irq_routing)},
  {"kvm_irq_routing", "nr", offsetof(struct kvm_irq_routing, nr)},
  {"kvm_irq_routing", "flags", offsetof(struct kvm_irq_routing, flags)},
  {"kvm_irq_routing", "entries", offsetof(struct kvm_irq_routing, entries)},
  {"kvm_irq_routing_entry", "size", sizeof(struct kvm_irq_routing_entry)},
  {"kvm_irq_routing_entry", "gsi", offsetof(struct kvm_irq_routing_entry, gsi)},
  {"kvm_irq_routing_entry", "type", offsetof(struct kvm_irq_routing_entry, type)},
  {"kvm_irq_routing_entry", "msi_address_lo", offsetof(struct kvm_irq_routing_entry, u.msi.address_lo)},
  {"kvm_irq_routing_entry", "msi_address_hi", offsetof(struct kvm_irq_routing_entry, u.msi.address_hi)},
  {"kvm_irq_routing_entry", "msi_data", offsetof(struct kvm_irq_routing_entry, u.msi.data)},
  {"kvm_run", "size", sizeof(struct kvm_run)},
  {"kvm_run", "request_interrupt_window", offsetof(struct kvm_run, request_interrupt_window)},
  {"kvm_run", "immediate_exit", offsetof(struct kvm_run, immediate_exit)},
  {"kvm_run", "exit_reason", offsetof(struct kvm_run, exit_reason)},
  {"kvm_run", "ready_for_interrupt_injection", offsetof(struct kvm_run, ready_for_interrupt_injection)},
  {"kvm_run", "if_flag", offsetof(struct kvm_run, if_flag)},
  {"kvm_run", "flags", offsetof(struct kvm_run, flags)},
  {"kvm_run", "cr8", offsetof(struct kvm_run, cr8)},
  {"kvm_run", "apic_base", offsetof(struct kvm_run, apic_base)},
  {"kvm_run", "io_direction", offsetof(struct kvm_run, io.direction)},
  {"kvm_run", "io_size", offsetof(struct kvm_run, io.size)},
  {"kvm_run", "io_port", offsetof(struct kvm_run, io.port)},
  {"kvm_run", "io_count", offsetof(struct kvm_run, io.count)},
  {"kvm_run", "io_data_offset", offsetof(struct kvm_run, io.data_offset)},
  {"kvm_run", "mmio_phys_addr", offsetof(struct kvm_run, mmio.phys_addr)},
  {"kvm_run", "mmio_data", offsetof(struct kvm_run, mmio.data)},
  {"kvm_run", "mmio_len", offsetof(struct kvm_run, mmio.len)},
  {"kvm_run", "mmio_is_write", offsetof(struct kvm_run, mmio.is_write)},
  {"kvm_run", "fail_entry_reason", offsetof(struct kvm_run, fail_entry.hardware_entry_failure_reason)},
  {"kvm_run", "fail_entry_cpu", offsetof(struct kvm_run, fail_entry.cpu)},
  {"kvm_run", "ex_exception", offsetof(struct kvm_run, ex.exception)},
  {"kvm_run", "ex_error_code", offsetof(struct kvm_run, ex.error_code)},
  {"kvm_run", "internal_suberror", offsetof(struct kvm_run, internal.suberror)},
  {"kvm_run", "internal_ndata", offsetof(struct kvm_run, internal.ndata)},
  {"kvm_run", "internal_data", offsetof(struct kvm_run, internal.data)},
  {"kvm_run", "emulation_failure_flags", offsetof(struct kvm_run, emulation_failure.flags)},
  {"kvm_run", "emulation_failure_insn_size", offsetof(struct kvm_run, emulation_failure.insn_size)},
  {"kvm_run", "emulation_failure_insn_bytes", offsetof(struct kvm_run, emulation_failure.insn_bytes)},
  {"kvm_run", "system_event_type", offsetof(struct kvm_run, system_event.type)},
  {"kvm_run", "system_event_ndata", offsetof(struct kvm_run, system_event.ndata)},
  {"kvm_run", "system_event_data", offsetof(struct kvm_run, system_event.data)},
  {"kvm_run", "msr_error", offsetof(struct kvm_run, msr.error)},
  {"kvm_run", "msr_reason", offsetof(struct kvm_run, msr.reason)},
  {"kvm_run", "msr_index", offsetof(struct kvm_run, msr.index)},
  {"kvm_run", "msr_data", offsetof(struct kvm_run, msr.data)},
  {"kvm_run", "eoi_vector", offsetof(struct kvm_run, eoi.vector)},
  {"kvm_run", "debug_exception", offsetof(struct kvm_run, debug.arch.exception)},
  {"kvm_run", "debug_pc", offsetof(struct kvm_run, debug.arch.pc)},
  {"kvm_run", "debug_dr6", offsetof(struct kvm_run, debug.arch.dr6)},
  {"kvm_run", "debug_dr7", offsetof(struct kvm_run, debug.arch.dr7)},
  {"kvm_run", "kvm_valid_regs", offsetof(struct kvm_run, kvm_valid_regs)},
  {"kvm_run", "kvm_dirty_regs", offsetof(struct kvm_run, kvm_dirty_regs)},
  {"kvm_run", "sync_regs", offsetof(struct kvm_run, s.regs.regs)},
  {"kvm_run", "sync_sregs", offsetof(struct kvm_run, s.regs.sregs)},
  {"kvm_run", "sync_events", offsetof(struct kvm_run, s.regs.events)},
  {"kvm_clock_data", "size", sizeof(struct kvm_clock_data)},
  {"kvm_clock_data", "clock", offsetof(struct kvm_clock_data, clock)},
  {"kvm_clock_data", "flags", offsetof(struct kvm_clock_data, flags)},
  {"kvm_device_attr", "size", sizeof(struct kvm_device_attr)},
  {"kvm_device_attr", "flags", offsetof(struct kvm_device_attr, flags)},
  {"kvm_device_attr", "group", offsetof(struct kvm_device_attr, group)},
  {"kvm_device_attr", "attr", offsetof(struct kvm_device_attr, attr)},
  {"kvm_device_attr", "addr", offsetof(struct kvm_device_attr, addr)},
  {"kvm_lapic_state", "size", sizeof(struct kvm_lapic_state)},
  {"kvm_irqchip", "size", sizeof(struct kvm_irqchip)},
  {"kvm_irqchip", "chip_id", offsetof(struct kvm_irqchip, chip_id)},
  {"kvm_pit_state2", "size", sizeof(struct kvm_pit_state2)},
  {"kvm_xsave", "size", sizeof(struct kvm_xsave)},
  {"kvm_xcrs", "size", sizeof(struct kvm_xcrs)},
  {"kvm_debugregs", "size", sizeof(struct kvm_debugregs)},
  {"kvm_regs", "size", sizeof(struct kvm_regs)},
  {"kvm_regs", "rax", offsetof(struct kvm_regs, rax)},
  {"kvm_regs", "rip", offsetof(struct kvm_regs, rip)},
  {"kvm_regs", "rflags", offsetof(struct kvm_regs, rflags)},
  {"kvm_segment", "size", sizeof(struct kvm_segment)},
  {"kvm_segment", "base", offsetof(struct kvm_segment, base)},
  {"kvm_segment", "limit", offsetof(struct kvm_segment, limit)},
  {"kvm_segment", "selector", offsetof(struct kvm_segment, selector)},
  {"kvm_segment", "type", offsetof(struct kvm_segment, type)},
  {"kvm_segment", "present", offsetof(struct kvm_segment, present)},
  {"kvm_segment", "dpl", offsetof(struct kvm_segment, dpl)},
  {"kvm_segment", "db", offsetof(struct kvm_segment, db)},
  {"kvm_segment", "s", offsetof(struct kvm_segment, s)},
  {"kvm_segment", "l", offsetof(struct kvm_segment, l)},
  {"kvm_segment", "g", offsetof(struct kvm_segment, g)},
  {"kvm_segment", "avl", offsetof(struct kvm_segment, avl)},
  {"kvm_segment", "unusable", offsetof(struct kvm_segment, unusable)},
  {"kvm_dtable", "size", sizeof(struct kvm_dtable)},
  {"kvm_dtable", "base", offsetof(struct kvm_dtable, base)},
  {"kvm_dtable", "limit", offsetof(struct kvm_dtable, limit)},
  {"kvm_sregs", "size", sizeof(struct kvm_sregs)},
  {"kvm_sregs", "cs", offsetof(struct kvm_sregs, cs)},
  {"kvm_sregs", "ds", offsetof(struct kvm_sregs, ds)},
  {"kvm_sregs", "es", offsetof(struct kvm_sregs, es)},
  {"kvm_sregs", "fs", offsetof(struct kvm_sregs, fs)},
  {"kvm_sregs", "gs", offsetof(struct kvm_sregs, gs)},
  {"kvm_sregs", "ss", offsetof(struct kvm_sregs, ss)},
  {"kvm_sregs", "tr", offsetof(struct kvm_sregs, tr)},
  {"kvm_sregs", "ldt", offsetof(struct kvm_sregs, ldt)},
  {"kvm_sregs", "gdt", offsetof(struct kvm_sregs, gdt)},
  {"kvm_sregs", "idt", offsetof(struct kvm_sregs, idt)},
  {"kvm_sregs", "cr0", offsetof(struct kvm_sregs, cr0)},
  {"kvm_sregs", "cr2", offsetof(struct kvm_sregs, cr2)},
  {"kvm_sregs", "cr3", offsetof(struct kvm_sregs, cr3)},
  {"kvm_sregs", "cr4", offsetof(struct kvm_sregs, cr4)},
  {"kvm_sregs", "cr8", offsetof(struct kvm_sregs, cr8)},
  {"kvm_sregs", "efer", offsetof(struct kvm_sregs, efer)},
  {"kvm_sregs", "apic_base", offsetof(struct kvm_sregs, apic_base)},
  {"kvm_sregs", "interrupt_bitmap", offsetof(struct kvm_sregs, interrupt_bitmap)},
  {"kvm_fpu", "size", sizeof(struct kvm_fpu)},
  {"kvm_fpu", "fpr", offsetof(struct kvm_fpu, fpr)},
  {"kvm_fpu", "fcw", offsetof(struct kvm_fpu, fcw)},
  {"kvm_fpu", "fsw", offsetof(struct kvm_fpu, fsw)},
  {"kvm_fpu", "ftwx", offsetof(struct kvm_fpu, ftwx)},
  {"kvm_fpu", "last_opcode", offsetof(struct kvm_fpu, last_opcode)},
  {"kvm_fpu", "last_ip", offsetof(struct kvm_fpu, last_ip)},
  {"kvm_fpu", "last_dp", offsetof(struct kvm_fpu, last_dp)},
  {"kvm_fpu", "xmm", offsetof(struct kvm_fpu, xmm)},
  {"kvm_fpu", "mxcsr", offsetof(struct kvm_fpu, mxcsr)},
  {"kvm_msrs", "size", sizeof(struct kvm_msrs)},
  {"kvm_msrs", "nmsrs", offsetof(struct kvm_msrs, nmsrs)},
  {"kvm_msrs", "entries", offsetof(struct kvm_msrs, entries)},
  {"kvm_msr_entry", "size", sizeof(struct kvm_msr_entry)},
  {"kvm_msr_entry", "index", offsetof(struct kvm_msr_entry, index)},
  {"kvm_msr_entry", "data", offsetof(struct kvm_msr_entry, data)},
  {"kvm_cpuid2", "size", sizeof(struct kvm_cpuid2)},
  {"kvm_cpuid2", "nent", offsetof(struct kvm_cpuid2, nent)},
  {"kvm_cpuid2", "entries", offsetof(struct kvm_cpuid2, entries)},
  {"kvm_cpuid_entry2", "size", sizeof(struct kvm_cpuid_entry2)},
  {"kvm_cpuid_entry2", "function", offsetof(struct kvm_cpuid_entry2, function)},
  {"kvm_cpuid_entry2", "index", offsetof(struct kvm_cpuid_entry2, index)},
  {"kvm_cpuid_entry2", "flags", offsetof(struct kvm_cpuid_entry2, flags)},
  {"kvm_cpuid_entry2", "eax", offsetof(struct kvm_cpuid_entry2, eax)},
  {"kvm_cpuid_entry2", "ebx", offsetof(struct kvm_cpuid_entry2, ebx)},
  {"kvm_cpuid_entry2", "ecx", offsetof(struct kvm_cpuid_entry2, ecx)},
  {"kvm_cpuid_entry2", "edx", offsetof(struct kvm_cpuid_entry2, edx)},
  {"kvm_vcpu_events", "size", sizeof(struct kvm_vcpu_events)},
  {"kvm_vcpu_events", "exception_injected", offsetof(struct kvm_vcpu_events, exception.injected)},
  {"kvm_vcpu_events", "exception_nr", offsetof(struct kvm_vcpu_events, exception.nr)},
  {"kvm_vcpu_events", "exception_has_error_code", offsetof(struct kvm_vcpu_events, exception.has_error_code)},
  {"kvm_vcpu_events", "exception_pending", offsetof(struct kvm_vcpu_events, exception.pending)},
  {"kvm_vcpu_events", "exception_error_code", offsetof(struct kvm_vcpu_events, exception.error_code)},
  {"kvm_vcpu_events", "interrupt_injected", offsetof(struct kvm_vcpu_events, interrupt.injected)},
  {"kvm_vcpu_events", "interrupt_nr", offsetof(struct kvm_vcpu_events, interrupt.nr)},
  {"kvm_vcpu_events", "interrupt_soft", offsetof(struct kvm_vcpu_events, interrupt.soft)},
  {"kvm_vcpu_events", "interrupt_shadow", offsetof(struct kvm_vcpu_events, interrupt.shadow)},
  {"kvm_vcpu_events", "nmi_injected", offsetof(struct kvm_vcpu_events, nmi.injected)},
  {"kvm_vcpu_events", "nmi_pending", offsetof(struct kvm_vcpu_events, nmi.pending)},
  {"kvm_vcpu_events", "nmi_masked", offsetof(struct kvm_vcpu_events, nmi.masked)},
  {"kvm_vcpu_events", "sipi_vector", offsetof(struct kvm_vcpu_events, sipi_vector)},
  {"kvm_vcpu_events", "flags", offsetof(struct kvm_vcpu_events, flags)},
  {"kvm_vcpu_events", "exception_has_payload", offsetof(struct kvm_vcpu_events, exception_has_payload)},
  {"kvm_vcpu_events", "exception_payload", offsetof(struct kvm_vcpu_events, exception_payload)},
  {"kvm_mp_state", "size", sizeof(struct kvm_mp_state)},
  {"kvm_mp_state", "mp_state", offsetof(struct kvm_mp_state, mp_state)},
  {"kvm_userspace_memory_region", "size", sizeof(struct kvm_userspace_memory_region)},
  {"kvm_userspace_memory_region", "slot", offsetof(struct kvm_userspace_memory_region, slot)},
  {"kvm_userspace_memory_region", "flags", offsetof(struct kvm_userspace_memory_region, flags)},
  {"kvm_userspace_memory_region", "guest_phys_addr", offsetof(struct kvm_userspace_memory_region, guest_phys_addr)},
  {"kvm_userspace_memory_region", "memory_size", offsetof(struct kvm_userspace_memory_region, memory_size)},
  {"kvm_userspace_memory_region", "userspace_addr", offsetof(struct kvm_userspace_memory_region, userspace_addr)},
  {"kvm_enable_cap", "size", sizeof(struct kvm_enable_cap)},
  {"kvm_enable_cap", "cap", offsetof(struct kvm_enable_cap, cap)},
  {"kvm_enable_cap", "flags", offsetof(struct kvm_enable_cap, flags)},
  {"kvm_enable_cap", "args", offsetof(struct kvm_enable_cap, args)},
  {"kvm_guest_debug", "size", sizeof(struct kvm_guest_debug)},
  {"kvm_guest_debug", "control", offsetof(struct kvm_guest_debug, control)},
  {"kvm_guest_debug", "debugreg", offsetof(struct kvm_guest_debug, arch.debugreg)},
  {"kvm_dirty_log", "size", sizeof(struct kvm_dirty_log)},
  {"kvm_dirty_log", "slot", offsetof(struct kvm_dirty_log, slot)},
  {"kvm_dirty_log", "dirty_bitmap", offsetof(struct kvm_dirty_log, dirty_bitmap)},
  {"kvm_msr_filter", "size", sizeof(struct kvm_msr_filter)},
  {"kvm_msr_filter", "flags", offsetof(struct kvm_msr_filter, flags)},
  {"kvm_msr_filter", "ranges", offsetof(struct kvm_msr_filter, ranges)},
  {"kvm_msr_filter_range", "size", sizeof(struct kvm_msr_filter_range)},
  {"kvm_msr_filter_range", "flags", offsetof(struct kvm_msr_filter_range, flags)},
  {"kvm_msr_filter_range", "nmsrs", offsetof(struct kvm_msr_filter_range, nmsrs)},
  {"kvm_msr_filter_range", "base", offsetof(struct kvm_msr_filter_range, base)},
  {"kvm_msr_filter_range", "bitmap", offsetof(struct kvm_msr_filter_range, bitmap)},
  {"kvm_ioeventfd", "size", sizeof(struct kvm_ioeventfd)},
  {"kvm_ioeventfd", "datamatch", offsetof(struct kvm_ioeventfd, datamatch)},
  {"kvm_ioeventfd", "addr", offsetof(struct kvm_ioeventfd, addr)},
  {"kvm_ioeventfd", "len", offsetof(struct kvm_ioeventfd, len)},
  {"kvm_ioeventfd", "fd", offsetof(struct kvm_ioeventfd, fd)},
  {"kvm_ioeventfd", "flags", offsetof(struct kvm_ioeventfd, flags)},
  {"kvm_msi", "size", sizeof(struct kvm_msi)},
  {"kvm_msi", "address_lo", offsetof(struct kvm_msi, address_lo)},
  {"kvm_msi", "address_hi", offsetof(struct kvm_msi, address_hi)},
  {"kvm_msi", "data", offsetof(struct kvm_msi, data)},
  {"kvm_msi", "flags", offsetof(struct kvm_msi, flags)},
  {"kvm_irq_level", "size", sizeof(struct kvm_irq_level)},
  {"kvm_irq_level", "irq", offsetof(struct kvm_irq_level, irq)},
  {"kvm_irq_level", "level", offsetof(struct kvm_irq_level, level)},
  {"kvm_interrupt", "size", sizeof(struct kvm_interrupt)},
  {"kvm_interrupt", "irq", offsetof(struct kvm_interrupt, irq)},
  {"kvm_lapic_state", "size", sizeof(struct kvm_lapic_state)},
  {"kvm_lapic_state", "regs", offsetof(struct kvm_lapic_state, regs)},
  {"kvm_pit_config", "size", sizeof(struct kvm_pit_config)},
  {"kvm_pit_config", "flags", offsetof(struct kvm_pit_config, flags)},
  {"kvm_irqfd", "size", sizeof(struct kvm_irqfd)},
  {"kvm_irqfd", "fd", offsetof(struct kvm_irqfd, fd)},
  {"kvm_irqfd", "gsi", offsetof(struct kvm_irqfd, gsi)},
  {"kvm_irqfd", "flags", offsetof(struct kvm_irqfd, flags)},
  {"kvm_ioeventfd", "size", sizeof(struct kvm_ioeventfd)},
  {"kvm_ioeventfd", "datamatch", offsetof(struct kvm_ioeventfd, datamatch)},
  {"kvm_ioeventfd", "addr", offsetof(struct kvm_ioeventfd, addr)},
  {"kvm_ioeventfd", "len", offsetof(struct kvm_ioeventfd, len)},
  {"kvm_ioeventfd", "fd", offsetof(struct kvm_ioeventfd, fd)},
  {"kvm_ioeventfd", "flags", offsetof(struct kvm_ioeventfd, flags)},
  {"ifreq", "size", sizeof(struct ifreq)},
  {"ifreq", "ifr_name", offsetof(struct ifreq, ifr_name)},
  {"ifreq", "ifr_flags", offsetof(struct ifreq, ifr_flags)},
};
const size_t nv_fields_count = sizeof(nv_fields) / sizeof(nv_fields[0]);

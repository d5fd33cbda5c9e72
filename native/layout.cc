#include "layout.h"

#include <cstddef>
#include <linux/kvm.h>

namespace nodevisor {

#define K(name) o.Set(#name, Napi::Number::New(env, static_cast<double>(name)))

Napi::Object Constants(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  // system / VM ioctls
  K(KVM_GET_API_VERSION); K(KVM_CREATE_VM); K(KVM_CHECK_EXTENSION); K(KVM_GET_VCPU_MMAP_SIZE);
  K(KVM_GET_SUPPORTED_CPUID); K(KVM_GET_MSR_INDEX_LIST); K(KVM_CREATE_VCPU); K(KVM_SET_USER_MEMORY_REGION);
  K(KVM_SET_TSS_ADDR); K(KVM_SET_IDENTITY_MAP_ADDR); K(KVM_CREATE_IRQCHIP); K(KVM_IRQ_LINE); K(KVM_IRQ_LINE_STATUS);
  K(KVM_CREATE_PIT2); K(KVM_ENABLE_CAP); K(KVM_SIGNAL_MSI); K(KVM_IRQFD); K(KVM_IOEVENTFD);
  K(KVM_GET_DIRTY_LOG); K(KVM_CLEAR_DIRTY_LOG); K(KVM_X86_SET_MSR_FILTER); K(KVM_SET_GSI_ROUTING);
  K(KVM_GET_CLOCK); K(KVM_SET_CLOCK);
  // vCPU ioctls
  K(KVM_RUN); K(KVM_GET_REGS); K(KVM_SET_REGS); K(KVM_GET_SREGS); K(KVM_SET_SREGS); K(KVM_GET_FPU); K(KVM_SET_FPU);
  K(KVM_GET_MSRS); K(KVM_SET_MSRS); K(KVM_SET_CPUID2); K(KVM_GET_CPUID2); K(KVM_GET_VCPU_EVENTS); K(KVM_SET_VCPU_EVENTS);
  K(KVM_GET_MP_STATE); K(KVM_SET_MP_STATE); K(KVM_INTERRUPT); K(KVM_NMI); K(KVM_GET_TSC_KHZ); K(KVM_SET_TSC_KHZ);
  K(KVM_SET_GUEST_DEBUG); K(KVM_GET_LAPIC); K(KVM_SET_LAPIC); K(KVM_TRANSLATE);
  // capabilities
  K(KVM_CAP_IRQCHIP); K(KVM_CAP_HLT); K(KVM_CAP_USER_MEMORY); K(KVM_CAP_SET_TSS_ADDR); K(KVM_CAP_EXT_CPUID);
  K(KVM_CAP_NR_VCPUS); K(KVM_CAP_MAX_VCPUS); K(KVM_CAP_MAX_VCPU_ID); K(KVM_CAP_NR_MEMSLOTS); K(KVM_CAP_IRQFD);
  K(KVM_CAP_IOEVENTFD); K(KVM_CAP_IMMEDIATE_EXIT); K(KVM_CAP_SYNC_REGS); K(KVM_CAP_SPLIT_IRQCHIP);
  K(KVM_CAP_X86_USER_SPACE_MSR); K(KVM_CAP_X86_MSR_FILTER); K(KVM_CAP_X2APIC_API); K(KVM_CAP_GET_TSC_KHZ);
  K(KVM_CAP_SET_GUEST_DEBUG); K(KVM_CAP_SIGNAL_MSI); K(KVM_CAP_PIT2); K(KVM_CAP_VCPU_EVENTS); K(KVM_CAP_MP_STATE);
  K(KVM_CAP_READONLY_MEM); K(KVM_CAP_EXIT_ON_EMULATION_FAILURE); K(KVM_CAP_X86_TRIPLE_FAULT_EVENT);
  K(KVM_CAP_ADJUST_CLOCK); K(KVM_CAP_TSC_DEADLINE_TIMER); K(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2);
  // exit reasons
  K(KVM_EXIT_UNKNOWN); K(KVM_EXIT_EXCEPTION); K(KVM_EXIT_IO); K(KVM_EXIT_HYPERCALL); K(KVM_EXIT_DEBUG);
  K(KVM_EXIT_HLT); K(KVM_EXIT_MMIO); K(KVM_EXIT_IRQ_WINDOW_OPEN); K(KVM_EXIT_SHUTDOWN); K(KVM_EXIT_FAIL_ENTRY);
  K(KVM_EXIT_INTR); K(KVM_EXIT_SET_TPR); K(KVM_EXIT_TPR_ACCESS); K(KVM_EXIT_NMI); K(KVM_EXIT_INTERNAL_ERROR);
  K(KVM_EXIT_SYSTEM_EVENT); K(KVM_EXIT_IOAPIC_EOI); K(KVM_EXIT_X86_RDMSR); K(KVM_EXIT_X86_WRMSR);
  K(KVM_EXIT_IO_IN); K(KVM_EXIT_IO_OUT);
  K(KVM_INTERNAL_ERROR_EMULATION); K(KVM_INTERNAL_ERROR_SIMUL_EX); K(KVM_INTERNAL_ERROR_DELIVERY_EV);
  K(KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON); K(KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES);
  K(KVM_SYSTEM_EVENT_SHUTDOWN); K(KVM_SYSTEM_EVENT_RESET); K(KVM_SYSTEM_EVENT_CRASH);
  K(KVM_MP_STATE_RUNNABLE); K(KVM_MP_STATE_UNINITIALIZED); K(KVM_MP_STATE_INIT_RECEIVED); K(KVM_MP_STATE_HALTED);
  K(KVM_MP_STATE_SIPI_RECEIVED);
  K(KVM_SYNC_X86_REGS); K(KVM_SYNC_X86_SREGS); K(KVM_SYNC_X86_EVENTS);
  K(KVM_VCPUEVENT_VALID_NMI_PENDING); K(KVM_VCPUEVENT_VALID_SIPI_VECTOR); K(KVM_VCPUEVENT_VALID_SHADOW);
  K(KVM_VCPUEVENT_VALID_PAYLOAD); K(KVM_VCPUEVENT_VALID_TRIPLE_FAULT);
  K(KVM_MEM_LOG_DIRTY_PAGES); K(KVM_MEM_READONLY);
  K(KVM_GUESTDBG_ENABLE); K(KVM_GUESTDBG_SINGLESTEP); K(KVM_GUESTDBG_USE_SW_BP); K(KVM_GUESTDBG_USE_HW_BP);
  K(KVM_MSR_EXIT_REASON_INVAL); K(KVM_MSR_EXIT_REASON_UNKNOWN); K(KVM_MSR_EXIT_REASON_FILTER);
  K(KVM_MSR_FILTER_READ); K(KVM_MSR_FILTER_WRITE); K(KVM_MSR_FILTER_DEFAULT_ALLOW); K(KVM_MSR_FILTER_DEFAULT_DENY);
  K(KVM_MSR_FILTER_MAX_RANGES);
  K(KVM_X2APIC_API_USE_32BIT_IDS); K(KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK);
  K(KVM_IRQFD_FLAG_DEASSIGN); K(KVM_IOEVENTFD_FLAG_DATAMATCH); K(KVM_IOEVENTFD_FLAG_PIO); K(KVM_IOEVENTFD_FLAG_DEASSIGN);
  K(KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
  return o;
}

#define STRUCT(name) { Napi::Object o = Napi::Object::New(env); o.Set("size", Napi::Number::New(env, sizeof(struct name)));
#define F(st, member, key) o.Set(key, Napi::Number::New(env, offsetof(struct st, member)))
#define END(key) root.Set(key, o); }

Napi::Object Layout(Napi::Env env) {
  Napi::Object root = Napi::Object::New(env);
  STRUCT(kvm_run)
    F(kvm_run, request_interrupt_window, "request_interrupt_window");
    F(kvm_run, immediate_exit, "immediate_exit");
    F(kvm_run, exit_reason, "exit_reason");
    F(kvm_run, ready_for_interrupt_injection, "ready_for_interrupt_injection");
    F(kvm_run, if_flag, "if_flag");
    F(kvm_run, flags, "flags");
    F(kvm_run, cr8, "cr8");
    F(kvm_run, apic_base, "apic_base");
    F(kvm_run, io.direction, "io_direction");
    F(kvm_run, io.size, "io_size");
    F(kvm_run, io.port, "io_port");
    F(kvm_run, io.count, "io_count");
    F(kvm_run, io.data_offset, "io_data_offset");
    F(kvm_run, mmio.phys_addr, "mmio_phys_addr");
    F(kvm_run, mmio.data, "mmio_data");
    F(kvm_run, mmio.len, "mmio_len");
    F(kvm_run, mmio.is_write, "mmio_is_write");
    F(kvm_run, fail_entry.hardware_entry_failure_reason, "fail_entry_reason");
    F(kvm_run, fail_entry.cpu, "fail_entry_cpu");
    F(kvm_run, ex.exception, "ex_exception");
    F(kvm_run, ex.error_code, "ex_error_code");
    F(kvm_run, internal.suberror, "internal_suberror");
    F(kvm_run, internal.ndata, "internal_ndata");
    F(kvm_run, internal.data, "internal_data");
    F(kvm_run, emulation_failure.flags, "emulation_failure_flags");
    F(kvm_run, emulation_failure.insn_size, "emulation_failure_insn_size");
    F(kvm_run, emulation_failure.insn_bytes, "emulation_failure_insn_bytes");
    F(kvm_run, system_event.type, "system_event_type");
    F(kvm_run, system_event.ndata, "system_event_ndata");
    F(kvm_run, system_event.data, "system_event_data");
    F(kvm_run, msr.error, "msr_error");
    F(kvm_run, msr.reason, "msr_reason");
    F(kvm_run, msr.index, "msr_index");
    F(kvm_run, msr.data, "msr_data");
    F(kvm_run, eoi.vector, "eoi_vector");
    F(kvm_run, debug.arch.exception, "debug_exception");
    F(kvm_run, debug.arch.pc, "debug_pc");
    F(kvm_run, debug.arch.dr6, "debug_dr6");
    F(kvm_run, debug.arch.dr7, "debug_dr7");
    F(kvm_run, kvm_valid_regs, "kvm_valid_regs");
    F(kvm_run, kvm_dirty_regs, "kvm_dirty_regs");
    F(kvm_run, s.regs.regs, "sync_regs");
    F(kvm_run, s.regs.sregs, "sync_sregs");
    F(kvm_run, s.regs.events, "sync_events");
  END("kvm_run")
  STRUCT(kvm_regs)
    F(kvm_regs, rax, "rax"); F(kvm_regs, rip, "rip"); F(kvm_regs, rflags, "rflags");
  END("kvm_regs")
  STRUCT(kvm_segment)
    F(kvm_segment, base, "base"); F(kvm_segment, limit, "limit"); F(kvm_segment, selector, "selector");
    F(kvm_segment, type, "type"); F(kvm_segment, present, "present"); F(kvm_segment, dpl, "dpl");
    F(kvm_segment, db, "db"); F(kvm_segment, s, "s"); F(kvm_segment, l, "l"); F(kvm_segment, g, "g");
    F(kvm_segment, avl, "avl"); F(kvm_segment, unusable, "unusable");
  END("kvm_segment")
  STRUCT(kvm_dtable)
    F(kvm_dtable, base, "base"); F(kvm_dtable, limit, "limit");
  END("kvm_dtable")
  STRUCT(kvm_sregs)
    F(kvm_sregs, cs, "cs"); F(kvm_sregs, ds, "ds"); F(kvm_sregs, es, "es"); F(kvm_sregs, fs, "fs");
    F(kvm_sregs, gs, "gs"); F(kvm_sregs, ss, "ss"); F(kvm_sregs, tr, "tr"); F(kvm_sregs, ldt, "ldt");
    F(kvm_sregs, gdt, "gdt"); F(kvm_sregs, idt, "idt"); F(kvm_sregs, cr0, "cr0"); F(kvm_sregs, cr2, "cr2");
    F(kvm_sregs, cr3, "cr3"); F(kvm_sregs, cr4, "cr4"); F(kvm_sregs, cr8, "cr8"); F(kvm_sregs, efer, "efer");
    F(kvm_sregs, apic_base, "apic_base"); F(kvm_sregs, interrupt_bitmap, "interrupt_bitmap");
  END("kvm_sregs")
  STRUCT(kvm_fpu)
    F(kvm_fpu, fpr, "fpr"); F(kvm_fpu, fcw, "fcw"); F(kvm_fpu, fsw, "fsw"); F(kvm_fpu, ftwx, "ftwx");
    F(kvm_fpu, xmm, "xmm"); F(kvm_fpu, mxcsr, "mxcsr");
  END("kvm_fpu")
  STRUCT(kvm_msrs)
    F(kvm_msrs, nmsrs, "nmsrs"); F(kvm_msrs, entries, "entries");
  END("kvm_msrs")
  STRUCT(kvm_msr_entry)
    F(kvm_msr_entry, index, "index"); F(kvm_msr_entry, data, "data");
  END("kvm_msr_entry")
  STRUCT(kvm_cpuid2)
    F(kvm_cpuid2, nent, "nent"); F(kvm_cpuid2, entries, "entries");
  END("kvm_cpuid2")
  STRUCT(kvm_cpuid_entry2)
    F(kvm_cpuid_entry2, function, "function"); F(kvm_cpuid_entry2, index, "index"); F(kvm_cpuid_entry2, flags, "flags");
    F(kvm_cpuid_entry2, eax, "eax"); F(kvm_cpuid_entry2, ebx, "ebx"); F(kvm_cpuid_entry2, ecx, "ecx");
    F(kvm_cpuid_entry2, edx, "edx");
  END("kvm_cpuid_entry2")
  STRUCT(kvm_vcpu_events)
    F(kvm_vcpu_events, exception.injected, "exception_injected"); F(kvm_vcpu_events, exception.nr, "exception_nr");
    F(kvm_vcpu_events, exception.has_error_code, "exception_has_error_code");
    F(kvm_vcpu_events, exception.pending, "exception_pending"); F(kvm_vcpu_events, exception.error_code, "exception_error_code");
    F(kvm_vcpu_events, interrupt.injected, "interrupt_injected"); F(kvm_vcpu_events, interrupt.nr, "interrupt_nr");
    F(kvm_vcpu_events, interrupt.soft, "interrupt_soft"); F(kvm_vcpu_events, interrupt.shadow, "interrupt_shadow");
    F(kvm_vcpu_events, nmi.injected, "nmi_injected"); F(kvm_vcpu_events, nmi.pending, "nmi_pending");
    F(kvm_vcpu_events, nmi.masked, "nmi_masked"); F(kvm_vcpu_events, sipi_vector, "sipi_vector");
    F(kvm_vcpu_events, flags, "flags"); F(kvm_vcpu_events, exception_has_payload, "exception_has_payload");
    F(kvm_vcpu_events, exception_payload, "exception_payload");
  END("kvm_vcpu_events")
  STRUCT(kvm_mp_state)
    F(kvm_mp_state, mp_state, "mp_state");
  END("kvm_mp_state")
  STRUCT(kvm_userspace_memory_region)
    F(kvm_userspace_memory_region, slot, "slot"); F(kvm_userspace_memory_region, flags, "flags");
    F(kvm_userspace_memory_region, guest_phys_addr, "guest_phys_addr");
    F(kvm_userspace_memory_region, memory_size, "memory_size");
    F(kvm_userspace_memory_region, userspace_addr, "userspace_addr");
  END("kvm_userspace_memory_region")
  STRUCT(kvm_enable_cap)
    F(kvm_enable_cap, cap, "cap"); F(kvm_enable_cap, flags, "flags"); F(kvm_enable_cap, args, "args");
  END("kvm_enable_cap")
  STRUCT(kvm_guest_debug)
    F(kvm_guest_debug, control, "control"); F(kvm_guest_debug, arch.debugreg, "debugreg");
  END("kvm_guest_debug")
  STRUCT(kvm_dirty_log)
    F(kvm_dirty_log, slot, "slot"); F(kvm_dirty_log, dirty_bitmap, "dirty_bitmap");
  END("kvm_dirty_log")
  STRUCT(kvm_msr_filter)
    F(kvm_msr_filter, flags, "flags"); F(kvm_msr_filter, ranges, "ranges");
  END("kvm_msr_filter")
  STRUCT(kvm_msr_filter_range)
    F(kvm_msr_filter_range, flags, "flags"); F(kvm_msr_filter_range, nmsrs, "nmsrs");
    F(kvm_msr_filter_range, base, "base"); F(kvm_msr_filter_range, bitmap, "bitmap");
  END("kvm_msr_filter_range")
  STRUCT(kvm_msi)
    F(kvm_msi, address_lo, "address_lo"); F(kvm_msi, address_hi, "address_hi"); F(kvm_msi, data, "data");
    F(kvm_msi, flags, "flags");
  END("kvm_msi")
  STRUCT(kvm_irq_level)
    F(kvm_irq_level, irq, "irq"); F(kvm_irq_level, level, "level");
  END("kvm_irq_level")
  STRUCT(kvm_interrupt)
    F(kvm_interrupt, irq, "irq");
  END("kvm_interrupt")
  STRUCT(kvm_lapic_state)
    F(kvm_lapic_state, regs, "regs");
  END("kvm_lapic_state")
  STRUCT(kvm_pit_config)
    F(kvm_pit_config, flags, "flags");
  END("kvm_pit_config")
  STRUCT(kvm_irqfd)
    F(kvm_irqfd, fd, "fd"); F(kvm_irqfd, gsi, "gsi"); F(kvm_irqfd, flags, "flags");
  END("kvm_irqfd")
  STRUCT(kvm_ioeventfd)
    F(kvm_ioeventfd, datamatch, "datamatch"); F(kvm_ioeventfd, addr, "addr"); F(kvm_ioeventfd, len, "len");
    F(kvm_ioeventfd, fd, "fd"); F(kvm_ioeventfd, flags, "flags");
  END("kvm_ioeventfd")
  return root;
}

}  // namespace nodevisor

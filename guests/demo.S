/*
 * nodevisor's built-in demo guest. Every vCPU enters here in 64-bit mode
 * with its index in rdi and the vCPU count in rsi (see src/vcpu/boot-state.ts),
 * records the APIC ID CPUID gives it and halts; vCPU 0 waits until every
 * vCPU has checked in, reports each on the serial console and powers the
 * machine off through ACPI. One vCPU prints: a console lock that hundreds
 * of vCPUs spin on would, on a host with a few cores, keep descheduling its
 * holder and turn the demo into a test of the host's scheduler.
 */
#include "guest.h"
	.intel_syntax noprefix
	.code64
	.section .text.entry, "ax"
	.global _start
_start:
	cmp rdi, MAX_CPUS
	jae park
	mov r12, rdi
	mov r13, rsi

	/* The APIC ID the hypervisor gave this vCPU, from CPUID leaf 1. */
	mov eax, 1
	cpuid
	shr ebx, 24
	lea rax, [rip + apic_ids]
	mov [rax + r12 * 4], ebx

	lock inc dword ptr [rip + online]
	test r12, r12
	jnz park

	/* vCPU 0: wait for the others, report them all, then power off. */
	lea rsp, [rip + stack_end]
	mov r14d, r13d
	cmp r14d, MAX_CPUS
	jbe 1f
	mov r14d, MAX_CPUS
1:	mov eax, [rip + online]
	cmp eax, r14d
	jae 2f
	pause
	jmp 1b
2:	xor r15d, r15d
3:	lea rsi, [rip + msg_cpu]
	call puts
	mov rax, r15
	call putdec
	lea rsi, [rip + msg_apic]
	call puts
	lea rax, [rip + apic_ids]
	mov eax, [rax + r15 * 4]
	call putdec
	lea rsi, [rip + msg_of]
	call puts
	mov rax, r13
	call putdec
	lea rsi, [rip + msg_online]
	call puts
	inc r15d
	cmp r15d, r14d
	jb 3b

	lea rsi, [rip + msg_all]
	call puts
	mov rax, r14
	call putdec
	lea rsi, [rip + msg_off]
	call puts
	call poweroff

park:
	cli
	hlt
	jmp park

#include "serial64.S"

	.section .rodata
msg_cpu:    .asciz "nodevisor demo: vCPU "
msg_apic:   .asciz " (APIC ID "
msg_of:     .asciz ") of "
msg_online: .asciz " online\r\n"
msg_all:    .asciz "nodevisor demo: all "
msg_off:    .asciz " vCPUs reported; powering off\r\n"

	.section .data
	.balign 4
online:     .long 0

	.section .bss
	.balign 4096
stack:      .skip 4096
stack_end:
apic_ids:   .skip 4 * MAX_CPUS

/*
 * nodevisor's built-in demo guest. Every vCPU enters here in 64-bit mode
 * with its index in rdi and the vCPU count in rsi (see src/vcpu/boot-state.ts),
 * reports itself on the serial console, and vCPU 0 powers the machine off
 * through ACPI once every vCPU has reported.
 */
#include "guest.h"
	.intel_syntax noprefix
	.code64
	.section .text.entry, "ax"
	.global _start
_start:
	cmp rdi, MAX_CPUS
	jae park
	lea rsp, [rip + stacks_end]
	mov rax, rdi
	shl rax, 12
	sub rsp, rax
	mov r12, rdi
	mov r13, rsi

	/* The APIC ID the hypervisor gave this vCPU, from CPUID leaf 1. */
	mov eax, 1
	cpuid
	shr ebx, 24
	mov r14, rbx

	lea rdi, [rip + print_lock]
	call spin_lock
	lea rsi, [rip + msg_cpu]
	call puts
	mov rax, r12
	call putdec
	lea rsi, [rip + msg_apic]
	call puts
	mov rax, r14
	call putdec
	lea rsi, [rip + msg_of]
	call puts
	mov rax, r13
	call putdec
	lea rsi, [rip + msg_online]
	call puts
	lea rdi, [rip + print_lock]
	call spin_unlock

	lock inc dword ptr [rip + online]
	test r12, r12
	jnz park

	/* vCPU 0: wait for the others, then power off. */
	mov ecx, r13d
	cmp ecx, MAX_CPUS
	jbe 1f
	mov ecx, MAX_CPUS
1:	mov eax, [rip + online]
	cmp eax, ecx
	jae 2f
	pause
	jmp 1b
2:	lea rsi, [rip + msg_all]
	call puts
	mov rax, rcx
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
print_lock: .long 0
online:     .long 0

	.section .bss
	.balign 4096
stacks:     .skip 4096 * MAX_CPUS
stacks_end:

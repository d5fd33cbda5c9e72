/*
 * popcnt with an MMIO operand: KVM must emulate the access, and its
 * instruction emulator has no popcnt, so this is an emulation failure on
 * every host (and any popcnt is one in ring 0 on software-virtualising hosts).
 */
	.intel_syntax noprefix
	.code64
	.section .text.entry, "ax"
	.global _start
_start:
	mov rbx, 0xd0000000
	mov rcx, 0x5a5a
	popcnt rax, qword ptr [rbx]
	hlt

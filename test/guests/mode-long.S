/* 64-bit entry: EFER.LMA set, CS.L in effect; report 0x33 + rsi (vCPU count). */
#include "guest.h"
	.intel_syntax noprefix
	.code64
	.section .text.entry, "ax"
	.global _start
_start:
	mov ecx, 0xc0000080
	rdmsr
	test eax, 0x400
	jz bad
	movabs rax, 0x123456789
	shr rax, 32
	cmp eax, 1
	jne bad
	lea eax, [rsi + 0x33]
	out DEBUG_EXIT_PORT, al
bad:
	mov al, 0x7f
	out DEBUG_EXIT_PORT, al
	hlt

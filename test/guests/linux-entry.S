/*
 * Stands in for a kernel at the Linux boot protocol's entry points and
 * checks the CPU state the protocol promises (boot.rst): __BOOT_CS 0x10,
 * __BOOT_DS 0x18 in DS/ES/SS, interrupts off, and the zero page at ESI/RSI
 * ("HdrS" at +0x202). ENTRY64 selects the 64-bit entry (long mode, paging
 * on), else the 32-bit one (protected mode, paging off). Exits 0x64 / 0x32
 * when all holds, 0x7f otherwise.
 */
#include "guest.h"
	.intel_syntax noprefix
	.section .text.entry, "ax"
	.global _start
#ifdef ENTRY64
	.code64
_start:
	mov esp, 0x10000	/* the protocol gives no stack */
	mov ax, cs
	cmp ax, 0x10
	jne bad
	mov ax, ds
	cmp ax, 0x18
	jne bad
	mov ax, ss
	cmp ax, 0x18
	jne bad
	pushfq
	pop rax
	test eax, 0x200
	jnz bad
	mov ecx, 0xc0000080
	rdmsr
	test eax, 0x400
	jz bad
	cmp dword ptr [rsi + 0x202], 0x53726448
	jne bad
	mov al, 0x64
	out DEBUG_EXIT_PORT, al
#else
	.code32
_start:
	mov esp, 0x10000
	mov ax, cs
	cmp ax, 0x10
	jne bad
	mov ax, ds
	cmp ax, 0x18
	jne bad
	mov ax, es
	cmp ax, 0x18
	jne bad
	pushfd
	pop eax
	test eax, 0x200
	jnz bad
	mov eax, cr0
	test eax, 1
	jz bad
	test eax, eax
	js bad
	cmp dword ptr [esi + 0x202], 0x53726448
	jne bad
	mov al, 0x32
	out DEBUG_EXIT_PORT, al
#endif
bad:
	mov al, 0x7f
	out DEBUG_EXIT_PORT, al
	hlt

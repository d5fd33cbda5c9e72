/*
 * Touches ports and MMIO addresses no device claims, stores what the reads
 * returned at OUT, then reports through the debug-exit port. A VMM that
 * survives prints nothing but a log line per address and exits with 0x10.
 */
#include "guest.h"
#define OUT      0x310000
#define NO_PORT  0x2345
#define NO_MMIO  0xd0000000

	.intel_syntax noprefix
	.code64
	.section .text.entry, "ax"
	.global _start
_start:
	mov dx, NO_PORT
	in al, dx
	mov [OUT], al
	in ax, dx
	mov [OUT + 2], ax
	in eax, dx
	mov [OUT + 4], eax
	mov eax, 0x12345678
	out dx, eax
	mov rbx, NO_MMIO
	mov eax, [rbx]
	mov [OUT + 8], eax
	mov qword ptr [rbx + 8], 42
	mov rax, [rbx + 16]
	mov [OUT + 16], rax
	mov al, 0x10
	out DEBUG_EXIT_PORT, al
1:	hlt
	jmp 1b

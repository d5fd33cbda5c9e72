/*
 * Exit-latency guest (real mode, so the C reference can enter it with two
 * register writes): ITERATIONS port writes to 0x80, then the debug-exit port.
 */
#include "guest.h"
	.intel_syntax noprefix
	.code16
	.section .text.entry, "ax"
	.global _start
_start:
	mov ecx, ITERATIONS
1:	out POST_PORT, al
	dec ecx
	jnz 1b
	xor al, al
	out DEBUG_EXIT_PORT, al
2:	hlt
	jmp 2b

/* Real-mode entry: report 0x11 with DI (vCPU index) added. */
#include "guest.h"
	.intel_syntax noprefix
	.code16
	.section .text.entry, "ax"
	.global _start
_start:
	mov eax, cr0
	test al, 1
	jnz bad
	mov ax, di
	add al, 0x11
	out DEBUG_EXIT_PORT, al
bad:
	mov al, 0x7f
	out DEBUG_EXIT_PORT, al
	hlt

/* 32-bit protected-mode entry: PE set, paging off; report 0x22. */
#include "guest.h"
	.intel_syntax noprefix
	.code32
	.section .text.entry, "ax"
	.global _start
_start:
	mov eax, cr0
	test eax, 1
	jz bad
	test eax, eax
	js bad
	mov eax, 0x22
	out DEBUG_EXIT_PORT, al
bad:
	mov al, 0x7f
	out DEBUG_EXIT_PORT, al
	hlt

/* Writes port 0x80 in a loop until the host stops the VM: a steady stream of I/O exits. */
#include "guest.h"
	.intel_syntax noprefix
	.code64
	.section .text.entry, "ax"
	.global _start
_start:
1:	out POST_PORT, al
	jmp 1b

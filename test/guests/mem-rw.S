/*
 * Guest RAM round trip while the guest runs. The guest fills PATTERN, sets
 * READY, waits for the host to store GO_MAGIC in GO after writing DATA
 * (count, then values), sums DATA into RESULT, and exits with 0x21.
 */
#include "guest.h"
#define PATTERN  0x320000
#define PATTERN_WORDS 1024
#define READY    0x310000
#define GO       0x310008
#define RESULT   0x310010
#define DATA     0x300000
#define GO_MAGIC 0xc0ffee
#define PHI      0x9e3779b97f4a7c15

	.intel_syntax noprefix
	.code64
	.section .text.entry, "ax"
	.global _start
_start:
	mov rdi, PATTERN
	xor ecx, ecx
	movabs rbx, PHI
1:	mov rax, rcx
	imul rax, rbx
	mov [rdi + rcx * 8], rax
	inc ecx
	cmp ecx, PATTERN_WORDS
	jb 1b
	mov qword ptr [READY], 1
2:	pause
	cmp qword ptr [GO], GO_MAGIC
	jne 2b
	mov rcx, [DATA]
	xor eax, eax
	xor edx, edx
3:	test rcx, rcx
	jz 4f
	add rax, [DATA + 8 + rdx * 8]
	inc rdx
	dec rcx
	jmp 3b
4:	mov [RESULT], rax
	mov al, 0x21
	out DEBUG_EXIT_PORT, al
5:	hlt
	jmp 5b

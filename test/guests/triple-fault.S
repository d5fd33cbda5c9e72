/* Loads an empty IDT and executes ud2: #UD -> #DF -> triple fault. */
	.intel_syntax noprefix
	.code64
	.section .text.entry, "ax"
	.global _start
_start:
	lidt [rip + empty_idt]
	mov rax, 0xfeedface
	.global fault_here
fault_here:
	ud2
	.balign 8
empty_idt:
	.word 0
	.quad 0

/*
 * Entry for C test guests (see kit.h). The VMM enters _start in 64-bit mode
 * on every vCPU it starts, with the vCPU index in rdi and the count in rsi.
 * APs started by INIT-SIPI-SIPI begin at a copy of ap_trampoline below 1 MiB
 * (see install_trampoline in kit.h) in real mode, switch to long mode on the
 * VMM's boot GDT and page tables, and call ap_main(apic_id).
 */
#include "guest.h"
#define STACK_SIZE 8192
#define BOOT_GDT  0x500
#define BOOT_PML4 0x1000

	.intel_syntax noprefix
	.section .text.entry, "ax"
	.code64
	.global _start
_start:
	cmp rdi, MAX_CPUS
	jae 9f
	mov rax, rdi
	inc rax
	imul rax, STACK_SIZE
	lea rsp, [rip + stacks]
	add rsp, rax
	push rdi
	push rsi
	call idt_load
	pop rsi
	pop rdi
	call guest_main
9:	cli
	hlt
	jmp 9b

/* Builds (once) and loads the IDT: vectors 32-255 call isr(vector). */
idt_load:
	lea rdi, [rip + idt + 32 * 16]
	lea rsi, [rip + isr_stubs]
	mov ecx, 224
1:	mov rax, rsi
	mov [rdi], ax
	mov word ptr [rdi + 2], 0x08
	mov word ptr [rdi + 4], 0x8e00
	shr rax, 16
	mov [rdi + 6], ax
	shr rax, 16
	mov [rdi + 8], eax
	mov dword ptr [rdi + 12], 0
	add rsi, 16
	add rdi, 16
	dec ecx
	jnz 1b
	lidt [rip + idt_ptr]
	ret

/* Each stub is 16 bytes: push the vector, jump to the common path. */
	.balign 16
isr_stubs:
	.set vec, 32
	.rept 224
	.balign 16
	push vec
	jmp isr_common
	.set vec, vec + 1
	.endr

isr_common:
	push rax
	push rcx
	push rdx
	push rsi
	push rdi
	push r8
	push r9
	push r10
	push r11
	mov edi, [rsp + 72]
	cld
	call isr
	pop r11
	pop r10
	pop r9
	pop r8
	pop rdi
	pop rsi
	pop rdx
	pop rcx
	pop rax
	add rsp, 8
	iretq

/* AP startup: real mode at ap_trampoline, CS = its page. */
	.section .text.trampoline, "ax"
	.balign 4096
	.global ap_trampoline
ap_trampoline:
	.code16
	cli
	mov ax, cs
	mov ds, ax
	lgdt [gdt_ptr16 - ap_trampoline]
	mov eax, 0x20             /* CR4.PAE */
	mov cr4, eax
	mov eax, BOOT_PML4
	mov cr3, eax
	mov ecx, 0xc0000080       /* EFER.LME */
	rdmsr
	or eax, 0x100
	wrmsr
	mov eax, 0x80010033       /* PG | WP | NE | ET | MP | PE */
	mov cr0, eax
	.byte 0x66, 0xea          /* ljmpl 0x08:ap_entry64 */
	.long ap_entry64
	.word 0x08
	.balign 8
gdt_ptr16:
	.word 31
	.long BOOT_GDT
	.global ap_trampoline_end
ap_trampoline_end:

	.code64
ap_entry64:
	mov ax, 0x10
	mov ds, ax
	mov es, ax
	mov ss, ax
	mov eax, LAPIC_ID_ADDR    /* zero-extends: a disp32 would sign-extend */
	mov eax, [rax]
	shr eax, 24
	mov edi, eax
	cmp edi, MAX_CPUS
	jae 9b
	mov rax, rdi
	inc rax
	imul rax, STACK_SIZE
	lea rsp, [rip + stacks]
	add rsp, rax
	push rdi
	call idt_load
	pop rdi
	call ap_main
	jmp 9b

	.section .bss
	.balign 4096
idt:	.skip 256 * 16
stacks:	.skip STACK_SIZE * (MAX_CPUS + 1)

	.section .data
	.balign 8
idt_ptr:
	.word 256 * 16 - 1
	.quad idt

/*
 * A multiboot (0.6.96) test kernel: checks what the boot loader hands it -
 * the magic in EAX, the information structure's flags, the memory map
 * against mem_lower/mem_upper, the command line and two modules (contents,
 * strings, page alignment) - and reports through the debug-exit port 0xf4:
 * 0x10 when everything matches (exit status 33), else the number of the
 * first check that failed. Linked as ELF32 at 1 MiB.
 */
#define MB_MAGIC 0x1badb002
#define MB_FLAGS 0x00000003 /* page-aligned modules, memory information */

	.code32
	.section .text
	.globl _start
	.align 4
header:
	.long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

_start:
	mov $stack_top, %esp
	mov $2, %dl
	cmp $0x2badb002, %eax
	jne fail
	mov $3, %dl                     /* flags: memory, cmdline, modules, memory map */
	mov (%ebx), %eax
	and $0x4d, %eax
	cmp $0x4d, %eax
	jne fail
	mov $4, %dl                     /* the map has RAM at 0 of mem_lower KiB and at 1 MiB of mem_upper KiB */
	mov 44(%ebx), %ecx              /* mmap_length */
	mov 48(%ebx), %esi              /* mmap_addr */
	add %esi, %ecx
	xor %edi, %edi                  /* entries matched */
1:	cmp %ecx, %esi
	jae 3f
	cmpl $1, 20(%esi)               /* type RAM */
	jne 2f
	cmpl $0, 8(%esi)                /* base high */
	jne 2f
	mov 12(%esi), %eax              /* length low, in KiB */
	shr $10, %eax
	cmpl $0, 4(%esi)
	jne 4f
	cmp 4(%ebx), %eax               /* base 0: mem_lower */
	jne fail
	inc %edi
	jmp 2f
4:	cmpl $0x100000, 4(%esi)
	jne 2f
	cmp 8(%ebx), %eax               /* base 1 MiB: mem_upper */
	jne fail
	inc %edi
2:	add (%esi), %esi                /* size excludes its own field */
	add $4, %esi
	jmp 1b
3:	cmp $2, %edi
	jne fail
	mov $5, %dl
	mov 16(%ebx), %esi
	mov $want_cmdline, %edi
	call streq
	mov $6, %dl
	cmpl $2, 20(%ebx)
	jne fail
	mov 24(%ebx), %ebp              /* module 0 */
	mov $7, %dl
	mov $want_mod0, %esi
	call modeq
	mov $8, %dl
	add $16, %ebp
	mov $want_mod1, %esi
	call modeq
	mov $ok, %esi
	call puts
	mov $0x10, %al
	out %al, $0xf4
	hlt

/* The module at EBP: page-aligned, bytes = the string at ESI (length in
   the byte before it), then its own string = the next one. */
modeq:
	testl $0xfff, (%ebp)
	jnz fail
	movzbl -1(%esi), %ecx
	mov 4(%ebp), %eax
	sub (%ebp), %eax
	cmp %ecx, %eax
	jne fail
	mov (%ebp), %edi
	repe cmpsb
	jne fail
	mov %esi, %edi
	mov 8(%ebp), %esi
	/* fall through */
/* NUL-terminated strings at ESI and EDI equal, else fail. */
streq:
	mov (%esi), %al
	cmp (%edi), %al
	jne fail
	inc %esi
	inc %edi
	test %al, %al
	jnz streq
	ret

puts:
	mov $0x3f8, %dx
1:	lodsb
	test %al, %al
	jz 2f
	out %al, %dx
	jmp 1b
2:	ret

fail:
	mov %dl, %al
	out %al, $0xf4
	hlt

	.section .data
want_cmdline:	.asciz "mbtest hello=world"
	.byte 11
want_mod0:	.ascii "first data\n"
	.asciz "mod-a arg1 arg2"
	.byte 7
want_mod1:	.ascii "second\n"
	.asciz "mod-b"
ok:	.asciz "multiboot: all checks passed\n"
	.section .bss
	.align 16
	.space 4096
stack_top:

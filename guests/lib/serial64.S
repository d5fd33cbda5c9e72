/*
 * 64-bit helpers for guests: polled COM1 output, a spinlock, power-off.
 * Include after `.code64`. Calling convention: arguments in the registers
 * each routine names; rax, rdx are clobbered.
 */
#include "guest.h"

/* putc: writes the byte in bl once the transmitter has room. */
putc:
	mov dx, COM1_LSR
1:	in al, dx
	test al, LSR_THRE
	jz 1b
	mov dx, COM1
	mov al, bl
	out dx, al
	ret

/* puts: writes the NUL-terminated string at rsi. */
puts:
	push rbx
	push rsi
2:	mov bl, [rsi]
	test bl, bl
	jz 3f
	call putc
	inc rsi
	jmp 2b
3:	pop rsi
	pop rbx
	ret

/* putdec: writes rax in decimal. */
putdec:
	push rbx
	push rcx
	push rdx
	xor ecx, ecx
	mov rbx, 10
4:	xor edx, edx
	div rbx
	push rdx
	inc ecx
	test rax, rax
	jnz 4b
5:	pop rbx
	add bl, '0'
	call putc
	dec ecx
	jnz 5b
	pop rdx
	pop rcx
	pop rbx
	ret

/* spin_lock / spin_unlock: the lock word's address in rdi. */
spin_lock:
	mov eax, 1
6:	xchg eax, [rdi]
	test eax, eax
	jz 7f
	pause
	jmp 6b
7:	ret

spin_unlock:
	mov dword ptr [rdi], 0
	ret

/* poweroff: ACPI S5 through PM1a_CNT; parks if that returns. */
poweroff:
	mov dx, ACPI_PM1A_CNT
	mov ax, ACPI_SLP_S5
	out dx, ax
8:	cli
	hlt
	jmp 8b

/* Each vCPU checks in (atomic increment at 0x310000), then spins in guest code until the host stops the VM. */
	.intel_syntax noprefix
	.code64
	.section .text.entry, "ax"
	.global _start
_start:
	lock inc dword ptr [0x310000]
1:	pause
	jmp 1b

import { expect } from 'chai';
import { decodeInstruction, InstructionDecodeError, type CpuMode, type DecodedInstruction } from '../src/vcpu/quirks/insn-decoder.js';
import { disassemble } from '../src/vcpu/quirks/disasm.js';

const bytes = (hex: string): Uint8Array => Uint8Array.from(hex.split(/\s+/).filter(Boolean).map((h) => parseInt(h, 16)));

/** Decodes `hex` followed by filler, so the decoder must find the end itself. */
function decode(hex: string, mode: CpuMode = 64): DecodedInstruction {
  const b = bytes(hex);
  const padded = new Uint8Array(Math.max(15, b.length)).fill(0xcc);
  padded.set(b);
  return decodeInstruction(padded, mode);
}

function decodeError(hex: string, mode: CpuMode = 64, exact = false): InstructionDecodeError {
  try {
    if (exact) decodeInstruction(bytes(hex), mode);
    else decode(hex, mode);
  } catch (e) {
    expect(e).to.be.instanceOf(InstructionDecodeError);
    return e as InstructionDecodeError;
  }
  throw new Error(`expected ${hex} to be rejected`);
}

/**
 * Real encodings: assembled with GNU as 2.40 (.code64/.code32/.code16, Intel
 * syntax) and split into instructions by objdump, which agrees with these
 * lengths. [mode, bytes, length, objdump's disassembly].
 */
const ENCODINGS: ReadonlyArray<readonly [CpuMode, string, number, string]> = [
  [64, '90', 1, 'nop'],
  [64, 'c3', 1, 'ret'],
  [64, 'c2 08 00', 3, 'ret 0x8'],
  [64, 'cc', 1, 'int3'],
  [64, 'cd 80', 2, 'int 0x80'],
  [64, 'f1', 1, 'int1'],
  [64, 'f4', 1, 'hlt'],
  [64, '0f a2', 2, 'cpuid'],
  [64, '0f 31', 2, 'rdtsc'],
  [64, '0f 01 f9', 3, 'rdtscp'],
  [64, '0f 32', 2, 'rdmsr'],
  [64, '0f 30', 2, 'wrmsr'],
  [64, '0f 01 f8', 3, 'swapgs'],
  [64, '0f 05', 2, 'syscall'],
  [64, '48 0f 07', 3, 'sysretq'],
  [64, '48 cf', 2, 'iretq'],
  [64, '9b', 1, 'fwait'],
  [64, 'f3 90', 2, 'pause'],
  [64, 'fa', 1, 'cli'],
  [64, 'fb', 1, 'sti'],
  [64, '55', 1, 'push rbp'],
  [64, '41 54', 2, 'push r12'],
  [64, '41 5f', 2, 'pop r15'],
  [64, '6a 12', 2, 'push 0x12'],
  [64, '68 78 56 34 12', 5, 'push 0x12345678'],
  [64, '66 ff 30', 3, 'push WORD PTR [rax]'],
  [64, 'b8 01 00 00 00', 5, 'mov eax,0x1'],
  [64, '66 b8 01 00', 4, 'mov ax,0x1'],
  [64, 'b0 01', 2, 'mov al,0x1'],
  [64, '41 b1 01', 3, 'mov r9b,0x1'],
  [64, '48 b8 88 77 66 55 44 33 22 11', 10, 'movabs rax,0x1122334455667788'],
  [64, '49 bb 88 77 66 55 44 33 22 11', 10, 'movabs r11,0x1122334455667788'],
  [64, '48 c7 c0 ff ff ff ff', 7, 'mov rax,0xffffffffffffffff'],
  [64, '8b 05 00 10 00 00', 6, 'mov eax,DWORD PTR [rip+0x1000]'],
  [64, '48 8b 05 e0 ff ff ff', 7, 'mov rax,QWORD PTR [rip+0xffffffffffffffe0]'],
  [64, '89 0d 10 00 00 00', 6, 'mov DWORD PTR [rip+0x10],ecx'],
  [64, '8b 04 24', 3, 'mov eax,DWORD PTR [rsp]'],
  [64, '8b 44 24 08', 4, 'mov eax,DWORD PTR [rsp+0x8]'],
  [64, '8b 45 00', 3, 'mov eax,DWORD PTR [rbp+0x0]'],
  [64, '8b 45 f8', 3, 'mov eax,DWORD PTR [rbp-0x8]'],
  [64, '41 8b 04 24', 4, 'mov eax,DWORD PTR [r12]'],
  [64, '41 8b 45 00', 4, 'mov eax,DWORD PTR [r13+0x0]'],
  [64, '41 8b 85 00 01 00 00', 7, 'mov eax,DWORD PTR [r13+0x100]'],
  [64, '48 8b 84 c8 78 56 34 12', 8, 'mov rax,QWORD PTR [rax+rcx*8+0x12345678]'],
  [64, '4b 8b 44 88 01', 5, 'mov rax,QWORD PTR [r8+r9*4+0x1]'],
  [64, '48 8b 04 4d 00 00 00 00', 8, 'mov rax,QWORD PTR [rcx*2+0x0]'],
  [64, '4b 8b 04 24', 4, 'mov rax,QWORD PTR [r12+r12*1]'],
  [64, '64 48 8b 04 25 28 00 00 00', 9, 'mov rax,QWORD PTR fs:0x28'],
  [64, '65 48 8b 00', 4, 'mov rax,QWORD PTR gs:[rax]'],
  [64, '67 8b 00', 3, 'mov eax,DWORD PTR [eax]'],
  [64, '67 8b 05 10 00 00 00', 7, 'mov eax,DWORD PTR [eip+0x10]'],
  [64, 'a0 88 77 66 55 44 33 22 11', 9, 'movabs al,ds:0x1122334455667788'],
  [64, '48 a1 88 77 66 55 44 33 22 11', 10, 'movabs rax,ds:0x1122334455667788'],
  [64, 'a3 88 77 66 55 44 33 22 11', 9, 'movabs ds:0x1122334455667788,eax'],
  [64, 'c6 07 7f', 3, 'mov BYTE PTR [rdi],0x7f'],
  [64, '66 c7 47 02 34 12', 6, 'mov WORD PTR [rdi+0x2],0x1234'],
  [64, 'c7 47 04 78 56 34 12', 7, 'mov DWORD PTR [rdi+0x4],0x12345678'],
  [64, '48 c7 47 08 fe ff ff ff', 8, 'mov QWORD PTR [rdi+0x8],0xfffffffffffffffe'],
  [64, '0f 22 d8', 3, 'mov cr3,rax'],
  [64, '0f 20 c0', 3, 'mov rax,cr0'],
  [64, '44 0f 22 c2', 4, 'mov cr8,rdx'],
  [64, '0f 21 f8', 3, 'mov rax,dr7'],
  [64, '8e d8', 2, 'mov ds,eax'],
  [64, '66 8c d0', 3, 'mov ax,ss'],
  [64, '48 8d 05 00 01 00 00', 7, 'lea rax,[rip+0x100]'],
  [64, '8d 0c 18', 3, 'lea ecx,[rax+rbx*1]'],
  [64, '48 01 d8', 3, 'add rax,rbx'],
  [64, '05 78 56 34 12', 5, 'add eax,0x12345678'],
  [64, '04 03', 2, 'add al,0x3'],
  [64, '48 83 c4 08', 4, 'add rsp,0x8'],
  [64, '48 83 00 7f', 4, 'add QWORD PTR [rax],0x7f'],
  [64, '81 44 58 40 00 10 00 00', 8, 'add DWORD PTR [rax+rbx*2+0x40],0x1000'],
  [64, '66 2d 34 12', 4, 'sub ax,0x1234'],
  [64, '41 81 e2 ff 00 00 00', 7, 'and r10d,0xff'],
  [64, '80 0e 01', 3, 'or BYTE PTR [rsi],0x1'],
  [64, '31 c9', 2, 'xor ecx,ecx'],
  [64, '48 83 ff ff', 4, 'cmp rdi,0xffffffffffffffff'],
  [64, '80 3d 10 00 00 00 00', 7, 'cmp BYTE PTR [rip+0x10],0x0'],
  [64, '85 c0', 2, 'test eax,eax'],
  [64, 'a8 80', 2, 'test al,0x80'],
  [64, 'a9 00 00 10 00', 5, 'test eax,0x100000'],
  [64, 'f6 07 04', 3, 'test BYTE PTR [rdi],0x4'],
  [64, 'f7 47 08 78 56 34 12', 7, 'test DWORD PTR [rdi+0x8],0x12345678'],
  [64, '66 f7 07 34 12', 5, 'test WORD PTR [rdi],0x1234'],
  [64, '48 f7 07 01 00 00 00', 7, 'test QWORD PTR [rdi],0x1'],
  [64, '48 f7 d0', 3, 'not rax'],
  [64, 'f7 1b', 2, 'neg DWORD PTR [rbx]'],
  [64, '48 f7 e1', 3, 'mul rcx'],
  [64, '48 f7 74 24 08', 5, 'div QWORD PTR [rsp+0x8]'],
  [64, '6b c1 0a', 3, 'imul eax,ecx,0xa'],
  [64, '69 c1 e8 03 00 00', 6, 'imul eax,ecx,0x3e8'],
  [64, '48 0f af 02', 4, 'imul rax,QWORD PTR [rdx]'],
  [64, 'ff 00', 2, 'inc DWORD PTR [rax]'],
  [64, '49 ff c8', 3, 'dec r8'],
  [64, '48 c1 e0 04', 4, 'shl rax,0x4'],
  [64, 'd1 e8', 2, 'shr eax,1'],
  [64, '48 d3 fa', 3, 'sar rdx,cl'],
  [64, '66 c1 00 03', 4, 'rol WORD PTR [rax],0x3'],
  [64, '48 0f a4 d8 05', 5, 'shld rax,rbx,0x5'],
  [64, '0f ad d0', 3, 'shrd eax,edx,cl'],
  [64, '0f ba e0 03', 4, 'bt eax,0x3'],
  [64, '48 0f ab 08', 4, 'bts QWORD PTR [rax],rcx'],
  [64, '48 0f b3 d1', 4, 'btr rcx,rdx'],
  [64, '0f bc c1', 3, 'bsf eax,ecx'],
  [64, '48 0f bd 07', 4, 'bsr rax,QWORD PTR [rdi]'],
  [64, '0f b6 06', 3, 'movzx eax,BYTE PTR [rsi]'],
  [64, '48 0f bf 06', 4, 'movsx rax,WORD PTR [rsi]'],
  [64, '48 63 06', 3, 'movsxd rax,DWORD PTR [rsi]'],
  [64, '48 0f 44 c3', 4, 'cmove rax,rbx'],
  [64, '0f 94 c0', 3, 'sete al'],
  [64, '0f 95 07', 3, 'setne BYTE PTR [rdi]'],
  [64, '48 91', 2, 'xchg rcx,rax'],
  [64, '87 07', 2, 'xchg DWORD PTR [rdi],eax'],
  [64, 'f0 0f c1 07', 4, 'lock xadd DWORD PTR [rdi],eax'],
  [64, 'f0 0f b1 0f', 4, 'lock cmpxchg DWORD PTR [rdi],ecx'],
  [64, 'f0 48 0f c7 0f', 5, 'lock cmpxchg16b OWORD PTR [rdi]'],
  [64, '48 0f c7 4c 24 10', 6, 'cmpxchg16b OWORD PTR [rsp+0x10]'],
  [64, '0f c7 0f', 3, 'cmpxchg8b QWORD PTR [rdi]'],
  [64, 'f0 48 ff 07', 4, 'lock inc QWORD PTR [rdi]'],
  [64, 'f3 a4', 2, 'rep movs BYTE PTR es:[rdi],BYTE PTR ds:[rsi]'],
  [64, 'f3 48 ab', 3, 'rep stos QWORD PTR es:[rdi],rax'],
  [64, 'f2 ae', 2, 'repnz scas al,BYTE PTR es:[rdi]'],
  [64, 'fc', 1, 'cld'],
  [64, 'eb 00', 2, 'jmp 0x1e2'],
  [64, 'e9 fb 0f 00 00', 5, 'jmp 0x11e2'],
  [64, '74 00', 2, 'je 0x1e9'],
  [64, '0f 85 fa 03 00 00', 6, 'jne 0x5e9'],
  [64, 'e8 fb 0f 00 00', 5, 'call 0x11ef'],
  [64, 'ff d0', 2, 'call rax'],
  [64, 'ff 15 20 00 00 00', 6, 'call QWORD PTR [rip+0x20]'],
  [64, 'ff 24 c5 00 10 00 00', 7, 'jmp QWORD PTR [rax*8+0x1000]'],
  [64, '65 ff 14 25 10 00 00 00', 8, 'call QWORD PTR gs:0x10'],
  [64, 'e3 00', 2, 'jrcxz 0x20d'],
  [64, 'e2 00', 2, 'loop 0x20f'],
  [64, 'c8 10 00 00', 4, 'enter 0x10,0x0'],
  [64, 'c9', 1, 'leave'],
  [64, 'e4 60', 2, 'in al,0x60'],
  [64, 'e6 80', 2, 'out 0x80,al'],
  [64, 'ed', 1, 'in eax,dx'],
  [64, '66 ef', 2, 'out dx,ax'],
  [64, '0f 01 10', 3, 'lgdt [rax]'],
  [64, '0f 01 1d 00 01 00 00', 7, 'lidt [rip+0x100]'],
  [64, '0f 01 04 24', 4, 'sgdt [rsp]'],
  [64, '0f 00 d8', 3, 'ltr ax'],
  [64, '0f 00 17', 3, 'lldt WORD PTR [rdi]'],
  [64, '0f 01 38', 3, 'invlpg BYTE PTR [rax]'],
  [64, '0f 09', 2, 'wbinvd'],
  [64, '0f 06', 2, 'clts'],
  [64, '0f 01 d0', 3, 'xgetbv'],
  [64, '0f 01 d1', 3, 'xsetbv'],
  [64, '0f ae 27', 3, 'xsave [rdi]'],
  [64, '48 0f ae 27', 4, 'xsave64 [rdi]'],
  [64, '48 0f ae 2e', 4, 'xrstor64 [rsi]'],
  [64, '0f ae 37', 3, 'xsaveopt [rdi]'],
  [64, '0f c7 27', 3, 'xsavec [rdi]'],
  [64, '48 0f c7 2f', 4, 'xsaves64 [rdi]'],
  [64, '0f c7 1f', 3, 'xrstors [rdi]'],
  [64, '0f ae 00', 3, 'fxsave [rax]'],
  [64, '48 0f ae 08', 4, 'fxrstor64 [rax]'],
  [64, '0f ae 14 24', 4, 'ldmxcsr DWORD PTR [rsp]'],
  [64, '0f ae 5c 24 04', 5, 'stmxcsr DWORD PTR [rsp+0x4]'],
  [64, '0f ae 3f', 3, 'clflush BYTE PTR [rdi]'],
  [64, '66 0f ae 3f', 4, 'clflushopt BYTE PTR [rdi]'],
  [64, '66 0f ae 37', 4, 'clwb BYTE PTR [rdi]'],
  [64, '0f ae e8', 3, 'lfence'],
  [64, '0f ae f0', 3, 'mfence'],
  [64, '0f ae f8', 3, 'sfence'],
  [64, '48 0f c7 f0', 4, 'rdrand rax'],
  [64, '0f c7 f8', 3, 'rdseed eax'],
  [64, 'f3 0f c7 f8', 4, 'rdpid rax'],
  [64, 'f3 48 0f ae c0', 5, 'rdfsbase rax'],
  [64, 'f3 48 0f ae d9', 5, 'wrgsbase rcx'],
  [64, '0f 01 cb', 3, 'stac'],
  [64, '0f 01 ca', 3, 'clac'],
  [64, '0f 01 c8', 3, 'monitor'],
  [64, '0f 01 c9', 3, 'mwait'],
  [64, '66 0f 38 82 07', 5, 'invpcid rax,[rdi]'],
  [64, 'f3 0f b8 c1', 4, 'popcnt eax,ecx'],
  [64, 'f3 48 0f b8 07', 5, 'popcnt rax,QWORD PTR [rdi]'],
  [64, '66 f3 0f b8 46 02', 6, 'popcnt ax,WORD PTR [rsi+0x2]'],
  [64, 'f3 4d 0f b8 c1', 5, 'popcnt r8,r9'],
  [64, 'f3 48 0f b8 05 00 01 00 00', 9, 'popcnt rax,QWORD PTR [rip+0x100]'],
  [64, 'f3 48 0f bd c3', 5, 'lzcnt rax,rbx'],
  [64, 'f3 0f bc 0a', 4, 'tzcnt ecx,DWORD PTR [rdx]'],
  [64, '0f 0b', 2, 'ud2'],
  [64, '0f b9 00', 3, 'ud1 eax,DWORD PTR [rax]'],
  [64, '0f ff c1', 3, 'ud0 eax,ecx'],
  [64, '0f 02 c1', 3, 'lar eax,ecx'],
  [64, '0f 03 07', 3, 'lsl eax,WORD PTR [rdi]'],
  [64, '0f 00 28', 3, 'verw WORD PTR [rax]'],
  [64, '0f 38 f0 07', 4, 'movbe eax,DWORD PTR [rdi]'],
  [64, 'f2 0f 38 f0 07', 5, 'crc32 eax,BYTE PTR [rdi]'],
  [64, 'f2 48 0f 38 f1 07', 6, 'crc32 rax,QWORD PTR [rdi]'],
  [64, '66 48 0f 38 f6 c3', 6, 'adcx rax,rbx'],
  [64, 'c4 e2 e0 f2 c1', 5, 'andn rax,rbx,rcx'],
  [64, 'c4 e2 f8 f3 c9', 5, 'blsr rax,rcx'],
  [64, 'c4 e2 68 f7 c1', 5, 'bextr eax,ecx,edx'],
  [64, 'c4 e2 f1 f7 c3', 5, 'shlx rax,rbx,rcx'],
  [64, 'c4 e2 e3 f5 c1', 5, 'pdep rax,rbx,rcx'],
  [64, 'c4 e3 fb f0 c3 0d', 6, 'rorx rax,rbx,0xd'],
  [64, 'f3 0f 1e fa', 4, 'endbr64'],
  [64, '0f 1f 04 00', 4, 'nop DWORD PTR [rax+rax*1]'],
  [64, '2e 66 0f 1f 04 00', 6, 'cs nop WORD PTR [rax+rax*1]'],
  [64, '0f 18 0f', 3, 'prefetcht0 BYTE PTR [rdi]'],
  [64, '0f 0d 0f', 3, 'prefetchw BYTE PTR [rdi]'],
  [64, '0f 28 c1', 3, 'movaps xmm0,xmm1'],
  [64, '0f 10 07', 3, 'movups xmm0,XMMWORD PTR [rdi]'],
  [64, '66 44 0f 6f 05 10 00 00 00', 9, 'movdqa xmm8,XMMWORD PTR [rip+0x10]'],
  [64, 'f3 0f 6f 0c 0e', 5, 'movdqu xmm1,XMMWORD PTR [rsi+rcx*1]'],
  [64, '66 48 0f 6e c0', 5, 'movq xmm0,rax'],
  [64, '66 0f 7e c0', 4, 'movd eax,xmm0'],
  [64, '66 0f ef c0', 4, 'pxor xmm0,xmm0'],
  [64, '66 0f fe ca', 4, 'paddd xmm1,xmm2'],
  [64, '66 0f 70 c1 1b', 5, 'pshufd xmm0,xmm1,0x1b'],
  [64, '66 0f 73 d8 04', 5, 'psrldq xmm0,0x4'],
  [64, '66 0f c5 c0 01', 5, 'pextrw eax,xmm0,0x1'],
  [64, '66 0f c4 c0 02', 5, 'pinsrw xmm0,eax,0x2'],
  [64, '0f c6 c1 44', 4, 'shufps xmm0,xmm1,0x44'],
  [64, '0f c2 c1 01', 4, 'cmpltps xmm0,xmm1'],
  [64, 'f3 0f 58 00', 4, 'addss xmm0,DWORD PTR [rax]'],
  [64, 'f2 0f 59 0d 08 00 00 00', 8, 'mulsd xmm1,QWORD PTR [rip+0x8]'],
  [64, '66 0f 51 c1', 4, 'sqrtpd xmm0,xmm1'],
  [64, 'f2 48 0f 2a c0', 5, 'cvtsi2sd xmm0,rax'],
  [64, '66 0f 38 00 c1', 5, 'pshufb xmm0,xmm1'],
  [64, '66 0f 38 3d 07', 5, 'pmaxsd xmm0,XMMWORD PTR [rdi]'],
  [64, '66 0f 3a 0f c1 03', 6, 'palignr xmm0,xmm1,0x3'],
  [64, '66 0f 3a 63 07 1a', 6, 'pcmpistri xmm0,XMMWORD PTR [rdi],0x1a'],
  [64, '66 48 0f 3a 22 c0 01', 7, 'pinsrq xmm0,rax,0x1'],
  [64, '66 0f 38 dc c1', 5, 'aesenc xmm0,xmm1'],
  [64, '66 0f 3a 44 c1 11', 6, 'pclmulhqhqdq xmm0,xmm1'],
  [64, '0f 38 cb ca', 4, 'sha256rnds2 xmm1,xmm2,xmm0'],
  [64, '0f c3 07', 3, 'movnti DWORD PTR [rdi],eax'],
  [64, '0f 77', 2, 'emms'],
  [64, '0f 6f 07', 3, 'movq mm0,QWORD PTR [rdi]'],
  [64, '0f fc c1', 3, 'paddb mm0,mm1'],
  [64, '0f 0e', 2, 'femms'],
  [64, '0f 0f c1 9e', 4, 'pfadd mm0,mm1'],
  [64, 'dd 07', 2, 'fld QWORD PTR [rdi]'],
  [64, 'dd d9', 2, 'fstp st(1)'],
  [64, 'df e0', 2, 'fnstsw ax'],
  [64, 'db e3', 2, 'fninit'],
  [64, 'db e2', 2, 'fnclex'],
  [64, 'd9 2c 24', 3, 'fldcw WORD PTR [rsp]'],
  [64, 'c5 f8 77', 3, 'vzeroupper'],
  [64, 'c5 fc 77', 3, 'vzeroall'],
  [64, 'c5 fe 6f 06', 4, 'vmovdqu ymm0,YMMWORD PTR [rsi]'],
  [64, 'c5 7e 6f 06', 4, 'vmovdqu ymm8,YMMWORD PTR [rsi]'],
  [64, 'c5 fd 6f 0d 20 00 00 00', 8, 'vmovdqa ymm1,YMMWORD PTR [rip+0x20]'],
  [64, 'c5 f1 ef c2', 4, 'vpxor xmm0,xmm1,xmm2'],
  [64, 'c4 41 2d ef cb', 5, 'vpxor ymm9,ymm10,ymm11'],
  [64, 'c5 f4 58 44 98 10', 6, 'vaddps ymm0,ymm1,YMMWORD PTR [rax+rbx*4+0x10]'],
  [64, 'c5 fd 70 c1 1b', 5, 'vpshufd ymm0,ymm1,0x1b'],
  [64, 'c5 fd 73 d9 04', 5, 'vpsrldq ymm0,ymm1,0x4'],
  [64, 'c4 e3 fd 00 c1 4e', 6, 'vpermq ymm0,ymm1,0x4e'],
  [64, 'c4 e3 75 02 c2 f0', 6, 'vpblendd ymm0,ymm1,ymm2,0xf0'],
  [64, 'c4 e2 7d 78 c1', 5, 'vpbroadcastb ymm0,xmm1'],
  [64, 'c4 e2 75 b8 c2', 5, 'vfmadd231ps ymm0,ymm1,ymm2'],
  [64, 'c5 f4 c2 c2 01', 5, 'vcmpltps ymm0,ymm1,ymm2'],
  [64, 'c5 fd 74 0f', 4, 'vpcmpeqb ymm1,ymm0,YMMWORD PTR [rdi]'],
  [64, 'c5 fd d7 c1', 4, 'vpmovmskb eax,ymm1'],
  [64, 'c4 e3 7d 39 c8 01', 6, 'vextracti128 xmm0,ymm1,0x1'],
  [64, 'c4 e3 75 18 c2 01', 6, 'vinsertf128 ymm0,ymm1,xmm2,0x1'],
  [64, '62 f1 fe 48 6f 01', 6, 'vmovdqu64 zmm0,ZMMWORD PTR [rcx]'],
  [64, '62 f1 7f c9 6f 0f', 6, 'vmovdqu8 zmm1{k1}{z},ZMMWORD PTR [rdi]'],
  [64, '62 a1 f5 40 ef c2', 6, 'vpxorq zmm16,zmm17,zmm18'],
  [64, '62 f1 7d 48 74 4f 01', 7, 'vpcmpeqb k1,zmm0,ZMMWORD PTR [rdi+0x40]'],
  [64, '62 f3 75 48 25 c2 ff', 7, 'vpternlogd zmm0,zmm1,zmm2,0xff'],
  [64, '62 f3 7d 48 3e c9 02', 7, 'vpcmpleub k1,zmm0,zmm1'],
  [64, '62 f1 74 58 58 00', 6, 'vaddps zmm0,zmm1,DWORD BCST [rax]'],
  [64, '62 f1 7c 48 10 46 40', 7, 'vmovups zmm0,ZMMWORD PTR [rsi+0x1000]'],
  [64, 'c4 e1 fb 92 c8', 5, 'kmovq k1,rax'],
  [64, 'c4 e1 f9 98 c1', 5, 'kortestd k0,k1'],
  [64, '62 f5 74 48 58 c2', 6, 'vaddph zmm0,zmm1,zmm2'],
  [64, '0f 01 c1', 3, 'vmcall'],
  [64, '0f 01 d9', 3, 'vmmcall'],
  [64, 'f0 83 00 01', 4, 'lock add DWORD PTR [rax],0x1'],
  [64, 'f2 f0 83 00 01', 5, 'xacquire lock add DWORD PTR [rax],0x1'],
  [64, '67 48 8d 04 08', 5, 'lea rax,[eax+ecx*1]'],
  [64, '66 41 81 c0 34 12', 6, 'add r8w,0x1234'],
  [64, '0f a0', 2, 'push fs'],
  [64, '0f a9', 2, 'pop gs'],
  [64, '66 98', 2, 'cbw'],
  [64, '98', 1, 'cwde'],
  [64, '48 98', 2, 'cdqe'],
  [64, '48 99', 2, 'cqo'],
  [64, '9e', 1, 'sahf'],
  [64, '9f', 1, 'lahf'],
  [64, 'd7', 1, 'xlat BYTE PTR ds:[rbx]'],
  [64, '0f aa', 2, 'rsm'],
  [64, 'cb', 1, 'retf'],
  [64, 'ca 04 00', 3, 'retf 0x4'],
  [64, 'cf', 1, 'iret'],
  [64, 'ff 28', 2, 'jmp FWORD PTR [rax]'],
  [64, 'ff 18', 2, 'call FWORD PTR [rax]'],
  [64, '0f c8', 2, 'bswap eax'],
  [64, '49 0f c9', 3, 'bswap r9'],
  [64, 'c6 f8 01', 3, 'xabort 0x1'],
  [64, 'c7 f8 fa 00 00 00', 6, 'xbegin 0x59a'],
  [64, '0f 01 d5', 3, 'xend'],
  [64, '0f 01 d6', 3, 'xtest'],
  [64, '0f 01 ee', 3, 'rdpkru'],
  [64, '0f 01 ef', 3, 'wrpkru'],
  [64, '0f 78 d8', 3, 'vmread rax,rbx'],
  [64, '0f 79 c3', 3, 'vmwrite rax,rbx'],
  [64, '66 0f 38 80 07', 5, 'invept rax,OWORD PTR [rdi]'],
  [64, '0f 37', 2, 'getsec'],
  [64, '0f 34', 2, 'sysenter'],
  [64, '48 0f 35', 3, 'sysexitq'],
  [64, '0f 33', 2, 'rdpmc'],
  [64, '0f 08', 2, 'invd'],
  [64, '48 0f 03 c1', 4, 'lsl rax,rcx'],
  [64, '66 0f 00 c8', 4, 'str ax'],
  [64, '0f 00 c0', 3, 'sldt eax'],
  [64, '0f 01 e0', 3, 'smsw eax'],
  [64, '0f 01 f0', 3, 'lmsw ax'],
  [32, '90', 1, 'nop'],
  [32, 'cc', 1, 'int3'],
  [32, 'cd 80', 2, 'int 0x80'],
  [32, 'ce', 1, 'into'],
  [32, '50', 1, 'push eax'],
  [32, '06', 1, 'push es'],
  [32, '1f', 1, 'pop ds'],
  [32, '16', 1, 'push ss'],
  [32, '60', 1, 'pusha'],
  [32, '61', 1, 'popa'],
  [32, '27', 1, 'daa'],
  [32, 'd4 0a', 2, 'aam 0xa'],
  [32, 'd5 0a', 2, 'aad 0xa'],
  [32, '62 01', 2, 'bound eax,QWORD PTR [ecx]'],
  [32, '63 08', 2, 'arpl WORD PTR [eax],cx'],
  [32, '40', 1, 'inc eax'],
  [32, '4f', 1, 'dec edi'],
  [32, 'c4 01', 2, 'les eax,FWORD PTR [ecx]'],
  [32, 'c5 01', 2, 'lds eax,FWORD PTR [ecx]'],
  [32, 'a1 78 56 34 12', 5, 'mov eax,ds:0x12345678'],
  [32, '8b 45 00', 3, 'mov eax,DWORD PTR [ebp+0x0]'],
  [32, '8b 44 24 04', 4, 'mov eax,DWORD PTR [esp+0x4]'],
  [32, '8b 84 88 00 01 00 00', 7, 'mov eax,DWORD PTR [eax+ecx*4+0x100]'],
  [32, 'a0 00 10 00 00', 5, 'mov al,ds:0x1000'],
  [32, 'a1 78 56 34 12', 5, 'mov eax,ds:0x12345678'],
  [32, '66 a1 34 12 00 00', 6, 'mov ax,ds:0x1234'],
  [32, 'a3 78 56 34 12', 5, 'mov ds:0x12345678,eax'],
  [32, 'b8 78 56 34 12', 5, 'mov eax,0x12345678'],
  [32, '66 b8 34 12', 4, 'mov ax,0x1234'],
  [32, '67 8b 00', 3, 'mov eax,DWORD PTR [bx+si]'],
  [32, '67 8b 46 06', 4, 'mov eax,DWORD PTR [bp+0x6]'],
  [32, '67 8b 81 34 12', 5, 'mov eax,DWORD PTR [bx+di+0x1234]'],
  [32, '66 a1 34 12 00 00', 6, 'mov ax,ds:0x1234'],
  [32, '67 a0 34 12', 4, 'addr16 mov al,ds:0x1234'],
  [32, '9a 78 56 34 12 10 00', 7, 'call 0x10:0x12345678'],
  [32, 'ea 78 56 34 12 10 00', 7, 'jmp 0x10:0x12345678'],
  [32, '9a 34 12 00 00 10 00', 7, 'call 0x10:0x1234'],
  [32, 'e9 fb 0f 00 00', 5, 'jmp 0x1076'],
  [32, 'e8 fb 0f 00 00', 5, 'call 0x107b'],
  [32, '0f 84 fa 0f 00 00', 6, 'je 0x1080'],
  [32, 'eb 00', 2, 'jmp 0x88'],
  [32, '66 ff 20', 3, 'jmp WORD PTR [eax]'],
  [32, '68 78 56 34 12', 5, 'push 0x12345678'],
  [32, '66 68 34 12', 4, 'pushw 0x1234'],
  [32, '66 05 34 12', 4, 'add ax,0x1234'],
  [32, '05 78 56 34 12', 5, 'add eax,0x12345678'],
  [32, 'a9 78 56 34 12', 5, 'test eax,0x12345678'],
  [32, '66 a9 34 12', 4, 'test ax,0x1234'],
  [32, '0f 22 c0', 3, 'mov cr0,eax'],
  [32, '0f 20 e0', 3, 'mov eax,cr4'],
  [32, '0f 01 10', 3, 'lgdtd [eax]'],
  [32, '0f 01 1d 78 56 34 12', 7, 'lidtd ds:0x12345678'],
  [32, '66 0f 01 10', 4, 'lgdtw [eax]'],
  [32, 'ff 28', 2, 'jmp FWORD PTR [eax]'],
  [32, 'cf', 1, 'iret'],
  [32, '66 cf', 2, 'iretw'],
  [32, 'c8 00 01 01', 4, 'enter 0x100,0x1'],
  [32, 'c2 10 00', 3, 'ret 0x10'],
  [32, '0f c7 0f', 3, 'cmpxchg8b QWORD PTR [edi]'],
  [32, 'f3 0f b8 06', 4, 'popcnt eax,DWORD PTR [esi]'],
  [32, '66 f3 0f b8 c1', 5, 'popcnt ax,cx'],
  [32, 'c5 fe 6f 06', 4, 'vmovdqu ymm0,YMMWORD PTR [esi]'],
  [32, 'c5 f1 ef c2', 4, 'vpxor xmm0,xmm1,xmm2'],
  [32, '62 f1 7e 48 6f 01', 6, 'vmovdqu32 zmm0,ZMMWORD PTR [ecx]'],
  [32, '62 f1 75 48 fe c2', 6, 'vpaddd zmm0,zmm1,zmm2'],
  [32, '0f 28 00', 3, 'movaps xmm0,XMMWORD PTR [eax]'],
  [32, '9b', 1, 'fwait'],
  [32, 'df e0', 2, 'fnstsw ax'],
  [32, '8d 04 3e', 3, 'lea eax,[esi+edi*1]'],
  [32, 'd7', 1, 'xlat BYTE PTR ds:[ebx]'],
  [16, '90', 1, 'nop'],
  [16, 'cc', 1, 'int3'],
  [16, 'cd 10', 2, 'int 0x10'],
  [16, 'ce', 1, 'into'],
  [16, 'fa', 1, 'cli'],
  [16, 'b8 34 12', 3, 'mov ax,0x1234'],
  [16, '66 b8 78 56 34 12', 6, 'mov eax,0x12345678'],
  [16, 'b0 12', 2, 'mov al,0x12'],
  [16, '8b 00', 2, 'mov ax,WORD PTR [bx+si]'],
  [16, '8b 01', 2, 'mov ax,WORD PTR [bx+di]'],
  [16, '8b 02', 2, 'mov ax,WORD PTR [bp+si]'],
  [16, '8b 03', 2, 'mov ax,WORD PTR [bp+di]'],
  [16, '8b 04', 2, 'mov ax,WORD PTR [si]'],
  [16, '8b 05', 2, 'mov ax,WORD PTR [di]'],
  [16, 'a1 34 12', 3, 'mov ax,ds:0x1234'],
  [16, '8b 07', 2, 'mov ax,WORD PTR [bx]'],
  [16, '8b 46 00', 3, 'mov ax,WORD PTR [bp+0x0]'],
  [16, '8b 46 10', 3, 'mov ax,WORD PTR [bp+0x10]'],
  [16, '8b 80 34 12', 4, 'mov ax,WORD PTR [bx+si+0x1234]'],
  [16, '26 8b 05', 3, 'mov ax,WORD PTR es:[di]'],
  [16, 'a0 34 12', 3, 'mov al,ds:0x1234'],
  [16, '67 66 8b 00', 4, 'mov eax,DWORD PTR [eax]'],
  [16, '67 66 8b 44 24 08', 6, 'mov eax,DWORD PTR [esp+0x8]'],
  [16, '67 66 8b 84 48 78 56 34 12', 9, 'mov eax,DWORD PTR [eax+ecx*2+0x12345678]'],
  [16, '67 8b 83 00 01 00 00', 7, 'mov ax,WORD PTR [ebx+0x100]'],
  [16, 'a0 78 56', 3, 'mov al,ds:0x5678'],
  [16, '05 34 12', 3, 'add ax,0x1234'],
  [16, '66 05 78 56 34 12', 6, 'add eax,0x12345678'],
  [16, '81 07 34 12', 4, 'add WORD PTR [bx],0x1234'],
  [16, '83 07 01', 3, 'add WORD PTR [bx],0x1'],
  [16, 'a9 00 80', 3, 'test ax,0x8000'],
  [16, '66 a9 00 00 00 80', 6, 'test eax,0x80000000'],
  [16, '68 34 12', 3, 'push 0x1234'],
  [16, '6a 12', 2, 'push 0x12'],
  [16, '66 50', 2, 'push eax'],
  [16, 'e9 fd 00', 3, 'jmp 0x16f'],
  [16, 'eb 00', 2, 'jmp 0x74'],
  [16, 'e8 fd 00', 3, 'call 0x174'],
  [16, '0f 84 fc 00', 4, 'je 0x177'],
  [16, 'ea 34 12 00 10', 5, 'jmp 0x1000:0x1234'],
  [16, '9a 34 12 00 10', 5, 'call 0x1000:0x1234'],
  [16, 'ff 2f', 2, 'jmp DWORD PTR [bx]'],
  [16, '0f 01 17', 3, 'lgdtw [bx]'],
  [16, '0f 01 1e 34 12', 5, 'lidtw ds:0x1234'],
  [16, '0f 22 c0', 3, 'mov cr0,eax'],
  [16, '0f 20 c0', 3, 'mov eax,cr0'],
  [16, 'cf', 1, 'iret'],
  [16, 'cb', 1, 'retf'],
  [16, 'c2 02 00', 3, 'ret 0x2'],
  [16, 'c8 08 00 00', 4, 'enter 0x8,0x0'],
  [16, 'f3 a4', 2, 'rep movs BYTE PTR es:[di],BYTE PTR ds:[si]'],
  [16, '66 f3 a5', 3, 'rep movs DWORD PTR es:[di],DWORD PTR ds:[si]'],
  [16, 'ee', 1, 'out dx,al'],
  [16, 'e4 71', 2, 'in al,0x71'],
  [16, 'ac', 1, 'lods al,BYTE PTR ds:[si]'],
  [16, '9c', 1, 'pushf'],
  [16, '66 9d', 2, 'popfd'],
  [16, '66 0f b6 04', 4, 'movzx eax,BYTE PTR [si]'],
  [16, 'f3 0f b8 07', 4, 'popcnt ax,WORD PTR [bx]'],
  [16, '66 f3 0f b8 c1', 5, 'popcnt eax,ecx'],
  [16, '0f a2', 2, 'cpuid'],
  [16, '0f 09', 2, 'wbinvd'],
  [16, '87 db', 2, 'xchg bx,bx'],
  [16, 'f4', 1, 'hlt'],
  [16, '9b', 1, 'fwait'],
];

describe('insn-decoder', () => {
  describe('lengths of real encodings', () => {
    it(`has at least 150 encodings across the three modes (${ENCODINGS.length})`, () => {
      expect(ENCODINGS.length).to.be.at.least(150);
      for (const m of [16, 32, 64] as const) expect(ENCODINGS.filter((e) => e[0] === m).length).to.be.at.least(40);
    });
    for (const mode of [64, 32, 16] as const) {
      it(`decodes every ${mode}-bit encoding to its length`, () => {
        const wrong: string[] = [];
        for (const [m, hex, length, asm] of ENCODINGS) {
          if (m !== mode) continue;
          let got: number | string;
          try {
            got = decode(hex, m).length;
          } catch (e) {
            got = (e as Error).message;
          }
          if (got !== length) wrong.push(`${asm} (${hex}): got ${got}, want ${length}`);
        }
        expect(wrong).to.deep.equal([]);
      });
    }
    it('needs only the instruction\'s own bytes', () => {
      for (const [m, hex, length] of ENCODINGS) expect(decodeInstruction(bytes(hex), m).length).to.equal(length);
    });
  });

  describe('fields', () => {
    it('splits legacy prefixes, REX, opcode, ModRM, SIB, displacement and immediate', () => {
      // lock add qword ptr fs:[r8+r9*4+0x12345678], 0x7f
      const d = decode('64 f0 4b 83 84 88 78 56 34 12 7f');
      expect(d.length).to.equal(11);
      expect(d.prefixes).to.include({ lock: true, rep: false, repne: false, opsize: false, addrsize: false, segment: 'fs', count: 2 });
      expect(d.rex).to.deep.equal({ w: true, r: false, x: true, b: true });
      expect(d.map).to.equal('primary');
      expect(d.opcode).to.equal(0x83);
      expect(d.opcodeBytes).to.deep.equal([0x83]);
      expect(d.modrm).to.deep.equal({ mod: 2, reg: 0, rm: 4 });
      expect(d.sib).to.deep.equal({ scale: 4, index: 1, base: 0 });
      expect(d.displacement).to.deep.equal({ value: 0x12345678n, size: 4, offset: 6 });
      expect(d.immediate).to.deep.equal({ value: 0x7fn, size: 1, offset: 10 });
      expect(d.operandSize).to.equal(64);
      expect(d.addressSize).to.equal(64);
      expect(d.addressMode).to.deep.equal({ kind: 'mem', base: 8, index: 9, scale: 4, disp: 0x12345678n, addressSize: 64, segment: 'fs' });
    });

    it('sign-extends displacements and keeps immediates raw', () => {
      const d = decode('48 81 40 f0 00 ff ff ff'); // add qword ptr [rax-0x10], -0x100
      expect(d.displacement!.value).to.equal(-16n);
      expect(d.immediate!.value).to.equal(0xffffff00n);
    });

    it('decodes RIP-relative operands (and EIP-relative with 67)', () => {
      const d = decode('f3 48 0f b8 05 00 10 00 00'); // popcnt rax, [rip+0x1000]
      expect(d.addressMode).to.deep.include({ kind: 'mem', base: 'rip', index: null, disp: 0x1000n, addressSize: 64 });
      expect(d.prefixes.rep).to.equal(true);
      expect(d.prefixes.lastRep).to.equal(0xf3);
      expect(d.opcodeBytes).to.deep.equal([0x0f, 0xb8]);
      expect(decode('67 8b 05 10 00 00 00').addressMode).to.deep.include({ base: 'rip', addressSize: 32 });
      // Outside 64-bit mode the same ModRM is an absolute disp32.
      expect(decode('8b 05 10 00 00 00', 32).addressMode).to.deep.include({ base: null, disp: 0x10n });
    });

    it('handles the SIB special cases: no index, no base, R12/R13', () => {
      expect(decode('8b 04 24').addressMode).to.deep.include({ base: 4, index: null, segment: 'ss' }); // [rsp]
      expect(decode('48 8b 04 4d 00 00 00 00').addressMode).to.deep.include({ base: null, index: 1, scale: 2, disp: 0n }); // [rcx*2]
      expect(decode('41 8b 04 24').addressMode).to.deep.include({ base: 12, index: null, segment: 'ds' }); // [r12]
      expect(decode('42 8b 04 20').addressMode).to.deep.include({ base: 0, index: 12 }); // [rax+r12]: REX.X makes index 100 real
      expect(decode('41 8b 45 00').addressMode).to.deep.include({ base: 13, disp: 0n }); // [r13+0]: mod=00 rm=101 is RIP-relative, so r13 needs a disp8
      expect(decode('41 8b 45 00').length).to.equal(4);
      expect(decode('8b 45 f8').addressMode).to.deep.include({ base: 5, disp: -8n, segment: 'ss' }); // [rbp-8]
    });

    it('decodes the 16-bit ModRM forms', () => {
      const cases: Array<[string, number | null, number | null, bigint, string]> = [
        ['8b 00', 3, 6, 0n, 'ds'], // [bx+si]
        ['8b 01', 3, 7, 0n, 'ds'], // [bx+di]
        ['8b 02', 5, 6, 0n, 'ss'], // [bp+si]
        ['8b 03', 5, 7, 0n, 'ss'], // [bp+di]
        ['8b 04', 6, null, 0n, 'ds'], // [si]
        ['8b 05', 7, null, 0n, 'ds'], // [di]
        ['8b 06 34 12', null, null, 0x1234n, 'ds'], // [0x1234]
        ['8b 07', 3, null, 0n, 'ds'], // [bx]
        ['8b 46 10', 5, null, 0x10n, 'ss'], // [bp+0x10]
        ['8b 80 34 12', 3, 6, 0x1234n, 'ds'], // [bx+si+0x1234]
      ];
      for (const [hex, base, index, disp, segment] of cases) {
        const d = decode(hex, 16);
        expect(d.addressMode, hex).to.deep.equal({ kind: 'mem', base, index, scale: 1, disp, addressSize: 16, segment });
        expect(d.length, hex).to.equal(bytes(hex).length);
      }
      // 67 selects 16-bit addressing in 32-bit code, 32-bit addressing in 16-bit code.
      expect(decode('67 8b 46 10', 32).addressMode).to.deep.include({ base: 5, addressSize: 16 });
      expect(decode('67 8b 44 24 08', 16).addressMode).to.deep.include({ base: 4, addressSize: 32, disp: 8n });
    });

    it('sizes immediates by operand size, REX.W and the opcode', () => {
      expect(decode('b8 78 56 34 12').immediate).to.include({ size: 4 });
      expect(decode('66 b8 34 12').immediate).to.include({ size: 2 });
      expect(decode('48 b8 88 77 66 55 44 33 22 11').immediate).to.deep.equal({ value: 0x1122334455667788n, size: 8, offset: 2 });
      expect(decode('66 48 05 78 56 34 12').immediate).to.include({ size: 4 }); // REX.W beats 66
      expect(decode('66 05 34 12').immediate).to.include({ size: 2 });
      expect(decode('b8 34 12', 16).immediate).to.include({ size: 2 });
      expect(decode('66 b8 78 56 34 12', 16).immediate).to.include({ size: 4 });
      expect(decode('f6 07 04').immediate).to.include({ size: 1 }); // test byte ptr [rdi], 4
      expect(decode('f7 07 78 56 34 12').immediate).to.include({ size: 4 }); // test dword ptr [rdi], imm32
      expect(decode('f7 17').immediate).to.equal(null); // not dword ptr [rdi]
      expect(decode('c8 10 00 01')).to.deep.include({ length: 4, immediate: { value: 0x10n, size: 2, offset: 1 }, immediate2: { value: 1n, size: 1, offset: 3 } });
      expect(decode('c2 08 00').immediate).to.include({ size: 2 });
      expect(decode('66 c2 08 00').immediate).to.include({ size: 2 }); // ret imm16 whatever the operand size
    });

    it('decodes moffs forms as address-size memory operands', () => {
      expect(decode('48 a1 88 77 66 55 44 33 22 11')).to.deep.include({ length: 10, addressMode: { kind: 'mem', base: null, index: null, scale: 1, disp: 0x1122334455667788n, addressSize: 64, segment: 'ds' } });
      expect(decode('67 a0 78 56 34 12').length).to.equal(6);
      expect(decode('a1 78 56 34 12', 32).length).to.equal(5);
      expect(decode('67 a1 34 12', 32).length).to.equal(4);
      expect(decode('a0 34 12', 16).length).to.equal(3);
      expect(decode('64 a1 34 12', 16).addressMode).to.deep.include({ segment: 'fs', disp: 0x1234n });
    });

    it('decodes far pointers', () => {
      const d = decode('9a 78 56 34 12 10 00', 32);
      expect(d.immediate).to.deep.include({ value: 0x12345678n, size: 4 });
      expect(d.immediate2).to.deep.include({ value: 0x10n, size: 2 });
      expect(decode('ea 34 12 00 10', 16).length).to.equal(5);
      expect(decode('66 ea 78 56 34 12 10 00', 16).length).to.equal(8);
    });

    it('uses rel32 for near branches in 64-bit mode even with 66 (Intel behaviour)', () => {
      expect(decode('66 e8 00 00 00 00').length).to.equal(6);
      expect(decode('66 0f 84 00 00 00 00').length).to.equal(7);
      expect(decode('66 e9 34 12', 32).length).to.equal(4);
      expect(decode('e9 34 12', 16).length).to.equal(3);
    });

    it('ignores ModRM.mod for MOV CR/DR', () => {
      const d = decode('0f 22 18 cc cc cc cc'); // mov cr3, rax written with mod=00
      expect(d.length).to.equal(3);
      expect(d.addressMode).to.deep.equal({ kind: 'reg', reg: 0 });
      expect(decode('44 0f 20 c0').modrm).to.deep.equal({ mod: 3, reg: 0, rm: 0 }); // mov rax, cr8
      expect(decode('44 0f 20 c0').rex!.r).to.equal(true);
    });

    it('drops a REX prefix that a legacy prefix follows', () => {
      const d = decode('48 66 89 c8'); // REX.W ignored: mov ax, cx
      expect(d.rex).to.equal(null);
      expect(d.operandSize).to.equal(16);
      expect(d.length).to.equal(4);
      expect(decode('48 41 89 c8').rex).to.deep.equal({ w: false, r: false, x: false, b: true }); // only the last REX counts
    });

    it('decodes VEX prefixes', () => {
      const d = decode('c4 e2 7d 58 c1'); // vpbroadcastd ymm0, xmm1
      expect(d.vex).to.deep.equal({ kind: 'vex3', map: 2, w: false, r: false, x: false, b: false, vvvv: 0, l: 1, pp: 1 });
      expect(d.map).to.equal('0f38');
      expect(d.opcodeBytes).to.deep.equal([0x0f, 0x38, 0x58]);
      const v2 = decode('c5 b5 ef c2'); // vpxor ymm0, ymm9, ymm2
      expect(v2.vex).to.deep.include({ kind: 'vex2', map: 1, vvvv: 9, l: 1, pp: 1 });
      expect(decode('c4 43 75 02 c2 f0').immediate).to.include({ size: 1 }); // map 3: ib
      expect(decode('c5 fd 70 c1 1b').immediate).to.include({ size: 1 }); // vpshufd: ib in map 1
      expect(decode('c5 f8 77').modrm).to.equal(null); // vzeroupper
      // In 32-bit code C4/C5 are LES/LDS unless the next byte has mod=11.
      expect(decode('c4 01', 32)).to.deep.include({ length: 2, vex: null, opcode: 0xc4 });
      expect(decode('c5 f8 77', 32).vex).to.deep.include({ kind: 'vex2' });
    });

    it('decodes EVEX prefixes', () => {
      const d = decode('62 a1 f5 40 ef c2'); // vpxorq zmm16, zmm17, zmm18
      expect(d.vex).to.deep.equal({ kind: 'evex', map: 1, w: true, r: false, x: true, b: false, vvvv: 17, l: 2, pp: 1 }); // R' (not kept) names zmm16; X extends r/m to zmm18
      expect(d.addressMode).to.deep.equal({ kind: 'reg', reg: 18 });
      expect(decode('62 f3 7d 48 3f c2 00').immediate).to.include({ size: 1 });
      expect(decode('62 f1 7c 48 10 86 00 10 00 00').length).to.equal(10); // disp32 (no disp8*N scaling of the length)
      expect(decode('62 f5 74 48 58 c2').map).to.equal('map5');
      expect(decode('62 01', 32)).to.deep.include({ length: 2, vex: null }); // BOUND
    });

    it('decodes 3DNow! with its opcode suffix', () => {
      const d = decode('0f 0f c1 9e');
      expect(d).to.deep.include({ length: 4, map: '3dnow', opcode: 0x9e, opcodeBytes: [0x0f, 0x0f, 0x9e] });
    });

    it('decodes AMD SSE4a EXTRQ/INSERTQ with two immediates', () => {
      expect(decode('66 0f 78 c0 04 08')).to.deep.include({ length: 6 });
      expect(decode('f2 0f 78 c1 04 08').immediate2).to.deep.include({ value: 8n });
      expect(decode('0f 78 d8').length).to.equal(3); // vmread
    });
  });

  describe('rejection', () => {
    it('rejects instructions longer than 15 bytes', () => {
      // add qword ptr cs:[rax+rcx*8+0x11223344], 0x12345678 with three CS prefixes is exactly 15 bytes...
      expect(decode('2e 2e 2e 48 81 84 c8 44 33 22 11 78 56 34 12').length).to.equal(15);
      // ...and a fourth makes it 16.
      const e = decodeError('2e 2e 2e 2e 48 81 84 c8 44 33 22 11 78 56 34 12', 64, true);
      expect(e.reason).to.equal('too-long');
      expect(decodeError('66 66 66 66 66 66 66 66 66 66 66 66 66 66 66 90', 64, true).reason).to.equal('too-long');
    });

    it('rejects truncated instructions', () => {
      const e = decodeError('48 8b', 64, true);
      expect(e.reason).to.equal('truncated');
      expect(e.name).to.equal('InstructionDecodeError');
      expect(decodeError('e8 00 00', 64, true).reason).to.equal('truncated');
      expect(decodeError('', 64, true).reason).to.equal('truncated');
    });

    it('rejects opcodes that do not exist in 64-bit mode', () => {
      for (const hex of ['06', '07', '0e', '16', '17', '1e', '1f', '27', '2f', '37', '3f', '60', '61', 'ce', 'd4 0a', 'd5 0a', 'd6', '82 c0 01', '9a 00 00 00 00 00 00', 'ea 00 00 00 00 00 00']) {
        expect(decodeError(hex).reason, hex).to.equal('invalid');
        expect(() => decode(hex, 32), hex).not.to.throw();
      }
    });

    it('rejects undefined opcodes and group members', () => {
      for (const hex of ['0f 04', '0f 0a', '0f 0c', '0f 24 c0', '0f 36', '0f 39', '0f a6 c0', 'fe d0', 'ff f8', '8f c8 c0 a2 2a', 'c6 c8 01', 'c7 c8 00 00 00 00', '0f ba c0 01']) {
        expect(decodeError(hex).reason, hex).to.equal('invalid');
      }
    });

    it('rejects VEX/EVEX after 66, F2, F3, LOCK or REX, and reserved maps', () => {
      for (const hex of ['66 c5 f8 77', 'f3 c5 f8 77', 'f0 c5 f8 77', '48 c5 f8 77', '46 62 92 bd 91 28 f6', 'c4 e4 7d 58 c1', '62 f4 7d 48 10 c0']) {
        expect(decodeError(hex).reason, hex).to.equal('invalid');
      }
    });
  });
});

describe('disasm', () => {
  const cases: Array<[CpuMode, string, string]> = [
    [64, 'f3 48 0f b8 05 00 10 00 00', 'popcnt rax, qword ptr [rip+0x1000]'],
    [64, '66 f3 0f b8 4e 02', 'popcnt cx, word ptr [rsi+0x2]'],
    [64, 'f0 48 0f c7 0f', 'lock cmpxchg16b xmmword ptr [rdi]'],
    [64, '48 0f c7 4c 24 10', 'cmpxchg16b xmmword ptr [rsp+0x10]'],
    [64, 'cc', 'int3'],
    [64, 'cd 80', 'int 0x80'],
    [64, '0f 0b', 'ud2'],
    [64, '9b', 'fwait'],
    [64, '64 48 8b 04 25 28 00 00 00', 'mov rax, qword ptr fs:[0x28]'],
    [64, '48 8b 44 c8 10', 'mov rax, qword ptr [rax+rcx*8+0x10]'],
    [64, '4c 8d 6c 10 e0', 'lea r13, [rax+rdx-0x20]'],
    [64, '48 83 c4 08', 'add rsp, 0x8'],
    [64, '48 83 f8 ff', 'cmp rax, 0xffffffffffffffff'],
    [64, '0f 22 d8', 'mov cr3, rax'],
    [64, '0f 20 c0', 'mov rax, cr0'],
    [64, '0f 01 10', 'lgdt [rax]'],
    [64, '0f 01 f8', 'swapgs'],
    [64, '0f 01 f9', 'rdtscp'],
    [64, '0f a2', 'cpuid'],
    [64, '0f 32', 'rdmsr'],
    [64, '48 0f c7 2f', 'xsaves64 [rdi]'],
    [64, '0f ae 27', 'xsave [rdi]'],
    [64, '0f ae 00', 'fxsave [rax]'],
    [64, '0f ae 14 24', 'ldmxcsr [rsp]'],
    [64, '0f 58 c1', 'addps'],
    [64, 'c5 fc 58 c1', 'vaddps'],
    [64, 'e4 60', 'in al, 0x60'],
    [64, 'ee', 'out dx, al'],
    [64, 'f4', 'hlt'],
    [64, 'f3 48 ab', 'rep stosq'],
    [64, '0f 04', '(undecodable: undefined opcode 0f 04 in 64-bit mode)'],
    [64, '0f 38 00 c1', '(sse 0f 38 00)'],
    [32, 'ff 25 78 56 34 12', 'jmp dword ptr [0x12345678]'],
    [16, '8b 46 10', 'mov ax, word ptr [bp+0x10]'],
    [16, 'cd 10', 'int 0x10'],
  ];
  for (const [mode, hex, text] of cases) {
    it(`${hex} (${mode}-bit) -> ${text}`, () => expect(disassemble(bytes(hex), mode)).to.equal(text));
  }

  it('shows branch targets relative to the instruction, or absolute given RIP', () => {
    expect(disassemble(bytes('74 10'), 64)).to.equal('je $+0x12');
    expect(disassemble(bytes('e8 fb ff ff ff'), 64, 0x1000n)).to.equal('call 0x1000');
    expect(disassemble(bytes('0f 85 00 01 00 00'), 64, 0xffffffff81000000n)).to.equal('jne 0xffffffff81000106');
  });

  it('names every opcode of the real encodings without throwing', () => {
    for (const [m, hex] of ENCODINGS) expect(disassemble(bytes(hex), m)).to.be.a('string').and.not.match(/undefined|NaN/);
  });
});

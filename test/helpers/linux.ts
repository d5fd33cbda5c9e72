import { findTestKernel } from '../../src/images/test-kernel.js';
export { testInitramfs } from '../../src/images/initramfs.js';

/** The built test kernel, or a skip (a failure where CI sets NODEVISOR_REQUIRE_LINUX). */
export function testKernelOrSkip(ctx: Mocha.Context): string {
  const kernel = findTestKernel();
  if (kernel) return kernel;
  if (process.env.NODEVISOR_REQUIRE_LINUX) throw new Error('the test kernel is not built: run `npm run kernel` (NODEVISOR_REQUIRE_LINUX is set)');
  ctx.skip();
  throw new Error('unreachable');
}

import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Imports run one way (README, Layout): cli -> vm -> vcpu/virtio/boot ->
 * irqchip/devices -> memory/kvm/sync. A module may import its own layer
 * or any layer below it, never one above. The tools beside the VM (the API,
 * top, the gdb stub, benchmarks, image builders) sit on top with the CLI.
 */
const LAYERS: Record<string, number> = {
  'cli.ts': 6,
  'index.ts': 6,
  api: 5,
  top: 5,
  gdb: 5,
  bench: 5,
  images: 5,
  vm: 4,
  vcpu: 3,
  virtio: 3,
  boot: 3,
  guests: 3,
  irqchip: 2,
  devices: 2,
  memory: 1,
  kvm: 1,
  sync: 1,
  'version.ts': 0,
  'args.ts': 0,
};

const here = dirname(fileURLToPath(import.meta.url));
// dist/test/ -> the sources, which keep type-only imports that compiled code drops.
const src = join(here, '..', '..', 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

const layerOf = (file: string): string => relative(src, file).split('/')[0]!;

describe('the source layering', () => {
  it('gives every top-level folder and file of src/ a layer', () => {
    const unplaced = readdirSync(src).filter((n) => !(n in LAYERS));
    expect(unplaced, 'add them to LAYERS in test/layering.test.ts').to.deep.equal([]);
  });

  it('has no import from a lower layer up to a higher one', () => {
    const upward: string[] = [];
    for (const file of sources(src)) {
      const from = layerOf(file);
      for (const m of readFileSync(file, 'utf8').matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
        const target = normalize(join(dirname(file), m[1]!)).replace(/\.js$/, '.ts');
        const to = layerOf(target);
        if (LAYERS[to]! > LAYERS[from]!) upward.push(`${relative(src, file)} imports ${relative(src, target)}`);
      }
    }
    expect(upward).to.deep.equal([]);
  });
});

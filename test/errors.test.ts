import { expect } from 'chai';
import { NodevisorError, errnoCode, kvmOpenError } from '../src/kvm/errors.js';

/** An error as the native addon / Node throws it: a message and an errno name. */
const errnoError = (code: string, message = `${code}: failed`): Error => Object.assign(new Error(message), { code });

describe('KVM errors', () => {
  describe('NodevisorError', () => {
    it('is an Error with a stable code, its own name and an optional cause', () => {
      const cause = new Error('inner');
      const e = new NodevisorError('EXYZ', 'something happened', { cause });
      expect(e).to.be.instanceOf(Error);
      expect(e.name).to.equal('NodevisorError');
      expect(e.code).to.equal('EXYZ');
      expect(e.message).to.equal('something happened');
      expect(e.cause).to.equal(cause);
      expect(new NodevisorError('E', 'm').cause).to.equal(undefined);
    });
  });

  describe('errnoCode', () => {
    it('returns the errno name of an error that has one', () => {
      expect(errnoCode(errnoError('ENOENT'))).to.equal('ENOENT');
      expect(errnoCode({ code: 'EACCES' })).to.equal('EACCES');
    });

    it('returns undefined for anything without a string code', () => {
      for (const e of [undefined, null, 0, 'ENOENT', new Error('plain'), {}, { code: 2 }, { code: null }, Symbol('x')]) {
        expect(errnoCode(e), String(e)).to.equal(undefined);
      }
    });
  });

  describe('kvmOpenError', () => {
    const PATH = '/dev/kvm';

    for (const code of ['ENOENT', 'ENODEV', 'ENXIO']) {
      it(`explains ${code} as a host without KVM and says which module to load`, () => {
        const cause = errnoError(code);
        const e = kvmOpenError(PATH, cause);
        expect(e).to.be.instanceOf(NodevisorError);
        expect(e.code).to.equal('ENOKVM');
        expect(e.message).to.include(`${PATH} does not exist`);
        expect(e.message).to.include('kvm_intel');
        expect(e.message).to.include('kvm_amd');
        expect(e.message).to.match(/nested virtualisation/);
        expect(e.cause).to.equal(cause);
      });
    }

    for (const code of ['EACCES', 'EPERM']) {
      it(`explains ${code} as a permission problem and says how to join the kvm group`, () => {
        const cause = errnoError(code);
        const e = kvmOpenError(PATH, cause);
        expect(e.code).to.equal('EKVMPERM');
        expect(e.message).to.include(`no permission to open ${PATH}`);
        expect(e.message).to.include('sudo usermod -aG kvm $USER');
        expect(e.message).to.include('run as root');
        expect(e.cause).to.equal(cause);
      });
    }

    it('names the path it was given', () => {
      expect(kvmOpenError('/tmp/fake-kvm', errnoError('ENOENT')).message).to.include('/tmp/fake-kvm does not exist');
      expect(kvmOpenError('/tmp/fake-kvm', errnoError('EACCES')).message).to.include('/tmp/fake-kvm');
    });

    for (const code of ['EBUSY', 'EMFILE', 'EINVAL']) {
      it(`reports ${code} as a generic failure, quoting the original message`, () => {
        const cause = errnoError(code, `${code}: something odd`);
        const e = kvmOpenError(PATH, cause);
        expect(e.code).to.equal('EKVM');
        expect(e.message).to.equal(`cannot open ${PATH}: ${code}: something odd`);
        expect(e.cause).to.equal(cause);
      });
    }

    it('reports an error without an errno name as a generic failure', () => {
      const e = kvmOpenError(PATH, new Error('mystery'));
      expect(e.code).to.equal('EKVM');
      expect(e.message).to.equal(`cannot open ${PATH}: mystery`);
    });

    // Bug: the default branch reads `(e as Error).message` without checking
    // that `e` is an Error: a thrown string gives "...: undefined" and a
    // thrown null or undefined makes kvmOpenError itself throw a TypeError.
    // Fix: `e instanceof Error ? e.message : String(e)`.
    it('describes a failure that is not an Error object', () => {
      expect(kvmOpenError(PATH, 'weird failure').message).to.equal(`cannot open ${PATH}: weird failure`);
      expect(() => kvmOpenError(PATH, null)).to.not.throw();
      expect(kvmOpenError(PATH, undefined).code).to.equal('EKVM');
    });
  });
});

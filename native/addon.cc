// nodevisor's native layer: thin, synchronous wrappers over the KVM ioctls
// and the few system calls TypeScript cannot make. No policy lives here; the
// TypeScript side (src/kvm/) decides what to call and turns errno into
// actionable messages.
#include <sched.h>
#include <napi.h>
#include <v8.h>

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <poll.h>
#include <malloc.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <stdint.h>

#include <atomic>
#include <mutex>

#include "layout.h"
#include "napi-util.h"
#include "uring.h"

namespace {

using nv::ArgInt;
using nv::BufferBytes;
using nv::ThrowErrno;
using nv::TypeError;

// The signal that forces a vCPU thread out of KVM_RUN. Its handler does
// nothing: delivery alone makes the ioctl return EINTR, because the handler is
// installed without SA_RESTART.
int KickSignal() { return SIGRTMIN + 7; }

// The vCPU run page of the calling thread, for the signal handler. Initial-
// exec TLS is async-signal-safe; it is written on the vCPU thread itself
// before any signal can target that thread.
__thread struct kvm_run* t_run __attribute__((tls_model("initial-exec"))) = nullptr;

// Delivery alone interrupts KVM_RUN (no SA_RESTART); setting immediate_exit
// also covers a signal that lands just before the thread enters KVM_RUN.
void KickHandler(int) {
  struct kvm_run* run = t_run;
  if (run) __atomic_store_n(&run->immediate_exit, 1, __ATOMIC_SEQ_CST);
}

void InstallKickHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = KickHandler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(KickSignal(), &sa, nullptr);
  });
}

// open(path, flags) -> fd
Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) return TypeError(env, "open(path: string, write?: boolean)");
  std::string path = info[0].As<Napi::String>();
  bool write = info.Length() < 2 || info[1].ToBoolean();
  int fd = open(path.c_str(), (write ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return ThrowErrno(env, errno, ("open " + path).c_str());
  return Napi::Number::New(env, fd);
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!ArgInt(info, 0, &fd)) return TypeError(info.Env(), "close(fd)");
  close(static_cast<int>(fd));
  return info.Env().Undefined();
}

// ioctl(fd, request, arg) where arg is an integer or a buffer whose address
// is passed. Returns the ioctl's non-negative result; throws on error.
Napi::Value Ioctl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, req;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &req)) return TypeError(env, "ioctl(fd, request, arg?)");
  unsigned long arg = 0;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    int64_t n;
    if (ArgInt(info, 2, &n)) {
      arg = static_cast<unsigned long>(n);
    } else {
      void* data;
      size_t len;
      if (!BufferBytes(env, info[2], &data, &len)) return TypeError(env, "ioctl arg must be a number, bigint or buffer");
      arg = reinterpret_cast<unsigned long>(data);
    }
  }
  int r;
  do {
    r = ioctl(static_cast<int>(fd), static_cast<unsigned long>(req), arg);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return ThrowErrno(env, errno, "ioctl");
  return Napi::Number::New(env, r);
}

// memfdCreate(name, size) -> fd of an anonymous file of that size.
Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t size;
  if (info.Length() < 2 || !info[0].IsString() || !ArgInt(info, 1, &size)) return TypeError(env, "memfdCreate(name, size)");
  std::string name = info[0].As<Napi::String>();
  int fd = static_cast<int>(syscall(SYS_memfd_create, name.c_str(), MFD_CLOEXEC));
  if (fd < 0) return ThrowErrno(env, errno, "memfd_create");
  if (ftruncate(fd, size) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, err, "ftruncate");
  }
  return Napi::Number::New(env, fd);
}

void Unmap(void* data, size_t length, void*) { munmap(data, length); }

// mapShared(fd, offset, size[, copyOnWrite]) -> { buffer: SharedArrayBuffer, address: bigint }
// The mapping is MAP_SHARED, so every thread (and KVM, through the memory
// slot registered at `address`) sees the same bytes. It is unmapped when the
// last SharedArrayBuffer referring to it is collected in every isolate.
// With copyOnWrite (a restored snapshot's RAM file) it is MAP_PRIVATE: still
// one mapping for every thread of this process, but writes stay in memory
// and pages are read from the file only when first touched.
Napi::Value MapShared(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, offset, size;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &offset) || !ArgInt(info, 2, &size) || size <= 0)
    return TypeError(env, "mapShared(fd, offset, size)");
  int share = info.Length() > 3 && info[3].ToBoolean().Value() ? MAP_PRIVATE : MAP_SHARED;
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, share | MAP_NORESERVE, static_cast<int>(fd), offset);
  if (p == MAP_FAILED) return ThrowErrno(env, errno, "mmap");
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  std::shared_ptr<v8::BackingStore> store =
      v8::SharedArrayBuffer::NewBackingStore(p, static_cast<size_t>(size), Unmap, nullptr);
  v8::Local<v8::SharedArrayBuffer> sab = v8::SharedArrayBuffer::New(isolate, std::move(store));
  // N-API has no SharedArrayBuffer constructor in Node 20; a napi_value is a
  // v8::Local's slot pointer (the same conversion node's own N-API layer does).
  v8::Local<v8::Value> local = sab;
  Napi::Value buffer(env, reinterpret_cast<napi_value>(*local));
  Napi::Object out = Napi::Object::New(env);
  out.Set("buffer", buffer);
  out.Set("address", Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p))));
  return out;
}

// addressOf(view) -> bigint: host address of a buffer's bytes, for ioctl
// structs that embed pointers (dirty log bitmaps, MSR filter bitmaps).
Napi::Value AddressOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  void* data;
  size_t len;
  if (info.Length() < 1 || !BufferBytes(env, info[0], &data, &len)) return TypeError(env, "addressOf(buffer)");
  return Napi::BigInt::New(env, static_cast<uint64_t>(reinterpret_cast<uintptr_t>(data)));
}

// cmpxchg16b(view, offset, expected: BigUint64Array(2), replacement:
// BigUint64Array(2)) -> boolean. An atomic 16-byte compare-and-swap on guest
// RAM (lock cmpxchg16b on the host), for guests whose own cmpxchg16b the KVM
// emulator cannot execute. On failure `expected` receives the current value.
Napi::Value Cmpxchg16b(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  void* data;
  size_t len;
  int64_t offset;
  void *exp, *rep;
  size_t expLen, repLen;
  if (info.Length() < 4 || !BufferBytes(env, info[0], &data, &len) || !ArgInt(info, 1, &offset) ||
      !BufferBytes(env, info[2], &exp, &expLen) || !BufferBytes(env, info[3], &rep, &repLen) || expLen < 16 || repLen < 16)
    return TypeError(env, "cmpxchg16b(view, offset, expected: BigUint64Array(2), replacement: BigUint64Array(2))");
  if (offset < 0 || static_cast<size_t>(offset) + 16 > len || (reinterpret_cast<uintptr_t>(data) + offset) % 16 != 0)
    return TypeError(env, "cmpxchg16b: target must be 16 bytes, 16-byte aligned, inside the buffer");
  unsigned __int128* target = reinterpret_cast<unsigned __int128*>(static_cast<char*>(data) + offset);
  unsigned __int128 expected, desired;
  memcpy(&expected, exp, 16);
  memcpy(&desired, rep, 16);
  bool ok = __atomic_compare_exchange_n(target, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  if (!ok) memcpy(exp, &expected, 16);
  return Napi::Boolean::New(env, ok);
}

// ---------------------------------------------------------------------------
// vCPU slots: the per-thread facts that kick() and run() need, kept in a
// process-wide table so any thread can kick any vCPU by slot number.

struct VcpuSlot {
  // Orders kick() on any thread against detachVcpu() on the vCPU's own:
  // once detached, the run page is unmapped and the thread may be gone.
  std::mutex lock;
  std::atomic<bool> used{false};
  int fd = -1;
  pthread_t thread{};
  struct kvm_run* run = nullptr;
  size_t run_size = 0;
  double* stats = nullptr;  // [0] ns inside KVM_RUN, [1] KVM_RUN calls
  timer_t timer{};          // fires the kick signal at this thread
  bool has_timer = false;
};

constexpr int kMaxSlots = 8192;
VcpuSlot g_slots[kMaxSlots];
std::mutex g_slots_lock;

VcpuSlot* SlotArg(const Napi::CallbackInfo& info, size_t i) {
  int64_t s;
  if (!ArgInt(info, i, &s) || s < 0 || s >= kMaxSlots || !g_slots[s].used.load()) return nullptr;
  return &g_slots[s];
}

// attachVcpu(vcpuFd, runSize, stats: Float64Array(2)) -> { slot, run: ArrayBuffer, tid }
// Must be called on the thread that will call run(): the slot records it so
// kick() can signal that thread.
Napi::Value AttachVcpu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, size;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &size)) return TypeError(env, "attachVcpu(fd, runSize, stats)");
  void* statsData = nullptr;
  size_t statsLen = 0;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!BufferBytes(env, info[2], &statsData, &statsLen) || statsLen < 2 * sizeof(double))
      return TypeError(env, "stats must be a Float64Array of at least 2 elements");
  }
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, static_cast<int>(fd), 0);
  if (p == MAP_FAILED) return ThrowErrno(env, errno, "mmap kvm_run");
  InstallKickHandler();
  // The kick signal must be deliverable on this thread even if the runtime
  // blocked real-time signals for its workers.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, KickSignal());
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);

  std::lock_guard<std::mutex> guard(g_slots_lock);
  int slot = -1;
  for (int i = 0; i < kMaxSlots; i++) {
    if (!g_slots[i].used.load()) { slot = i; break; }
  }
  if (slot < 0) {
    munmap(p, size);
    return ThrowErrno(env, EMFILE, "attachVcpu");
  }
  VcpuSlot& s = g_slots[slot];
  std::lock_guard<std::mutex> slot_guard(s.lock);
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = KickSignal();
  sev._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
  s.has_timer = timer_create(CLOCK_MONOTONIC, &sev, &s.timer) == 0;
  s.fd = static_cast<int>(fd);
  s.thread = pthread_self();
  s.run = static_cast<struct kvm_run*>(p);
  s.run_size = static_cast<size_t>(size);
  s.stats = static_cast<double*>(statsData);
  t_run = s.run;
  s.used.store(true);
  Napi::Object out = Napi::Object::New(env);
  out.Set("slot", Napi::Number::New(env, slot));
  out.Set("run", Napi::ArrayBuffer::New(env, p, size, [](Napi::Env, void*) {}));
  out.Set("tid", Napi::Number::New(env, static_cast<double>(syscall(SYS_gettid))));
  return out;
}

// detachVcpu(slot, run?): on the slot's own thread, after its last run():
// deletes the timer, frees the slot and unmaps the kvm_run page. The page
// keeps the vCPU file (and so the whole KVM VM) alive while mapped, so it
// must go before the VM can be freed. `run`, the ArrayBuffer attachVcpu
// returned, is detached first: views over it then read as empty instead of
// touching the unmapped page.
Napi::Value DetachVcpu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VcpuSlot* s = SlotArg(info, 0);
  if (!s) return TypeError(env, "detachVcpu(slot, run?): unknown slot");
  if (info.Length() > 1 && info[1].IsArrayBuffer()) {
    Napi::ArrayBuffer run = info[1].As<Napi::ArrayBuffer>();
    if (run.Data() == s->run) run.Detach();
  }
  std::lock_guard<std::mutex> guard(g_slots_lock);
  void* page;
  size_t size;
  {
    std::lock_guard<std::mutex> slot_guard(s->lock);
    if (s->has_timer) timer_delete(s->timer);
    s->has_timer = false;
    // The kick handler runs on this thread and reads t_run: clear it before the page goes.
    t_run = nullptr;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    s->used.store(false);
    page = s->run;
    size = s->run_size;
    s->run = nullptr;
    s->run_size = 0;
    s->stats = nullptr;
    s->fd = -1;
  }
  if (page) munmap(page, size);
  return env.Undefined();
}

inline double NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// run(slot) -> 0 after a KVM exit, or -errno for EINTR (a kick) and EAGAIN.
// A kick leaves immediate_exit set; it is cleared here so the next run enters.
Napi::Value Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VcpuSlot* s = SlotArg(info, 0);
  if (!s) return TypeError(env, "run(slot): unknown slot");
  double t0 = NowNs();
  int r = ioctl(s->fd, KVM_RUN, 0);
  int err = errno;
  if (s->stats) {
    s->stats[0] += NowNs() - t0;
    s->stats[1] += 1;
  }
  if (r < 0) {
    if (err == EINTR || err == EAGAIN) {
      __atomic_store_n(&s->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
      return Napi::Number::New(env, -err);
    }
    return ThrowErrno(env, err, "ioctl KVM_RUN");
  }
  return Napi::Number::New(env, 0);
}

// kick(slot): forces the slot's thread out of KVM_RUN, or makes its next
// KVM_RUN return at once if it is not inside one yet.
Napi::Value Kick(const Napi::CallbackInfo& info) {
  VcpuSlot* s = SlotArg(info, 0);
  if (!s) return info.Env().Undefined();
  std::lock_guard<std::mutex> guard(s->lock);
  if (!s->used.load()) return info.Env().Undefined();
  __atomic_store_n(&s->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
  pthread_kill(s->thread, KickSignal());
  return info.Env().Undefined();
}

// yieldCpu(): sched_yield(2), for a thread that polls: a thread waiting for
// this CPU runs first, and with none it returns at once.
Napi::Value YieldCpu(const Napi::CallbackInfo& info) {
  sched_yield();
  return info.Env().Undefined();
}

// setTimer(slot, deadlineNs): at CLOCK_MONOTONIC time `deadlineNs` (0 =
// disarm), kick the slot's vCPU thread, so a guest running in KVM_RUN comes
// out for its LAPIC timer. Called on the vCPU's own thread.
Napi::Value SetTimer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  VcpuSlot* s = SlotArg(info, 0);
  if (!s || info.Length() < 2 || !info[1].IsNumber()) return TypeError(env, "setTimer(slot, deadlineNs)");
  if (!s->has_timer) return ThrowErrno(env, ENOSYS, "timer_create");
  double ns = info[1].As<Napi::Number>().DoubleValue();
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  if (ns > 0) {
    its.it_value.tv_sec = static_cast<time_t>(ns / 1e9);
    its.it_value.tv_nsec = static_cast<long>(ns - static_cast<double>(its.it_value.tv_sec) * 1e9);
    if (its.it_value.tv_nsec < 0) its.it_value.tv_nsec = 0;
    if (its.it_value.tv_nsec >= 1000000000L) its.it_value.tv_nsec = 999999999L;
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
  }
  if (timer_settime(s->timer, TIMER_ABSTIME, &its, nullptr) < 0) return ThrowErrno(env, errno, "timer_settime");
  return env.Undefined();
}

// eventfd(initval, flags) -> fd
Napi::Value EventFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t init, flags;
  if (!ArgInt(info, 0, &init) || !ArgInt(info, 1, &flags)) return TypeError(env, "eventfd(initval, flags)");
  int fd = eventfd(static_cast<unsigned>(init), static_cast<int>(flags));
  if (fd < 0) return ThrowErrno(env, errno, "eventfd");
  return Napi::Number::New(env, fd);
}

// eventfdRead(fd) -> the counter, reset to 0; 0 if it was 0 (non-blocking fd).
Napi::Value EventFdRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!ArgInt(info, 0, &fd)) return TypeError(env, "eventfdRead(fd)");
  eventfd_t value = 0;
  if (eventfd_read(static_cast<int>(fd), &value) < 0) {
    if (errno == EAGAIN) return Napi::Number::New(env, 0);
    return ThrowErrno(env, errno, "eventfd read");
  }
  return Napi::Number::New(env, static_cast<double>(value));
}

// eventfdWrite(fd, value): adds value to the counter.
Napi::Value EventFdWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, value;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &value)) return TypeError(env, "eventfdWrite(fd, value)");
  if (eventfd_write(static_cast<int>(fd), static_cast<eventfd_t>(value)) < 0) return ThrowErrno(env, errno, "eventfd write");
  return env.Undefined();
}

// fallocate(fd, mode, offset, length)
Napi::Value Fallocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, mode, offset, length;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &mode) || !ArgInt(info, 2, &offset) || !ArgInt(info, 3, &length)) {
    return TypeError(env, "fallocate(fd, mode, offset, length)");
  }
  if (fallocate(static_cast<int>(fd), static_cast<int>(mode), offset, length) < 0) return ThrowErrno(env, errno, "fallocate");
  return env.Undefined();
}

// seek(fd, offset, whence) -> the new offset, or -1 where SEEK_DATA/SEEK_HOLE
// find nothing (ENXIO): how a snapshot finds the pages of guest RAM that hold data.
Napi::Value Seek(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd, offset, whence;
  if (!ArgInt(info, 0, &fd) || !ArgInt(info, 1, &offset) || !ArgInt(info, 2, &whence)) return TypeError(env, "seek(fd, offset, whence)");
  off_t r = lseek(static_cast<int>(fd), offset, static_cast<int>(whence));
  if (r < 0) {
    if (errno == ENXIO) return Napi::Number::New(env, -1);
    return ThrowErrno(env, errno, "lseek");
  }
  return Napi::Number::New(env, static_cast<double>(r));
}

// pollReadable(fds, timeoutMs) -> a bit mask of the fds (at most 31) that
// are readable; 0 on timeout. Blocks the calling thread (I/O workers only;
// timeoutMs < 0 waits for ever). EINTR counts as a timeout.
Napi::Value PollReadable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t timeout;
  if (info.Length() < 2 || !info[0].IsArray() || !ArgInt(info, 1, &timeout)) return TypeError(env, "pollReadable(fds, timeoutMs)");
  Napi::Array list = info[0].As<Napi::Array>();
  uint32_t n = list.Length();
  if (n == 0 || n > 31) return TypeError(env, "pollReadable: 1 to 31 fds");
  struct pollfd pfds[31];
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value v = list.Get(i);
    if (!v.IsNumber()) return TypeError(env, "pollReadable: fds must be numbers");
    pfds[i].fd = v.As<Napi::Number>().Int32Value();
    pfds[i].events = POLLIN;
    pfds[i].revents = 0;
  }
  int r = poll(pfds, n, static_cast<int>(timeout));
  if (r < 0) {
    if (errno == EINTR) return Napi::Number::New(env, 0);
    return ThrowErrno(env, errno, "poll");
  }
  uint32_t mask = 0;
  for (uint32_t i = 0; i < n; i++) {
    if (pfds[i].revents & POLLNVAL) return ThrowErrno(env, EBADF, "poll");
    if (pfds[i].revents & (POLLIN | POLLERR | POLLHUP)) mask |= 1u << i;
  }
  return Napi::Number::New(env, mask);
}

// ---------------------------------------------------------------------------
// Packet I/O for virtio-net's back ends (tap devices, passt's stream socket).

// Fills `iov` (at most IOV_MAX entries) from an array of buffers; false on bad input.
bool IovecArg(Napi::Env env, Napi::Value v, struct iovec* iov, int* count) {
  if (!v.IsArray()) return false;
  Napi::Array list = v.As<Napi::Array>();
  uint32_t n = list.Length();
  if (n > IOV_MAX) return false;
  for (uint32_t i = 0; i < n; i++) {
    void* data;
    size_t len;
    if (!BufferBytes(env, list.Get(i), &data, &len)) return false;
    iov[i].iov_base = data;
    iov[i].iov_len = len;
  }
  *count = static_cast<int>(n);
  return true;
}

// readv(fd, buffers) / writev(fd, buffers) -> bytes, or -errno for EAGAIN
// and EINTR (nothing to read, or no room: the caller polls); other errors
// throw. A tap device returns a packet's full length even when the buffers
// held less of it, so a result above their total means "truncated".
Napi::Value VectorIo(const Napi::CallbackInfo& info, bool write) {
  Napi::Env env = info.Env();
  const char* name = write ? "writev" : "readv";
  int64_t fd;
  struct iovec iov[IOV_MAX];  // 16 KiB of stack
  int n;
  if (!ArgInt(info, 0, &fd) || info.Length() < 2 || !IovecArg(env, info[1], iov, &n)) return TypeError(env, "readv/writev(fd, buffers: ArrayBufferView[] (at most IOV_MAX))");
  ssize_t r = write ? writev(static_cast<int>(fd), iov, n) : readv(static_cast<int>(fd), iov, n);
  if (r < 0) {
    if (errno == EAGAIN || errno == EINTR) return Napi::Number::New(env, -errno);
    return ThrowErrno(env, errno, name);
  }
  return Napi::Number::New(env, static_cast<double>(r));
}

Napi::Value Readv(const Napi::CallbackInfo& info) { return VectorIo(info, false); }
Napi::Value Writev(const Napi::CallbackInfo& info) { return VectorIo(info, true); }

// socketpair() -> [fd, fd]: a connected AF_UNIX stream pair, close-on-exec.
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return ThrowErrno(env, errno, "socketpair");
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, sv[0]));
  out.Set(1u, Napi::Number::New(env, sv[1]));
  return out;
}

// setNonBlocking(fd, on): sets or clears O_NONBLOCK.
Napi::Value SetNonBlocking(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t fd;
  if (!ArgInt(info, 0, &fd) || info.Length() < 2) return TypeError(env, "setNonBlocking(fd, on)");
  int flags = fcntl(static_cast<int>(fd), F_GETFL);
  if (flags < 0) return ThrowErrno(env, errno, "fcntl F_GETFL");
  flags = info[1].ToBoolean() ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
  if (fcntl(static_cast<int>(fd), F_SETFL, flags) < 0) return ThrowErrno(env, errno, "fcntl F_SETFL");
  return env.Undefined();
}

// poll(fds: Int32Array, events: Int32Array, revents: Int32Array, timeoutMs)
// -> how many fds have events (0 on timeout or EINTR); revents receives
// each fd's events. A negative fd is skipped, as poll(2) does.
Napi::Value Poll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  void *fdsData, *evData, *revData;
  size_t fdsLen, evLen, revLen;
  int64_t timeout;
  if (info.Length() < 4 || !BufferBytes(env, info[0], &fdsData, &fdsLen) || !BufferBytes(env, info[1], &evData, &evLen) ||
      !BufferBytes(env, info[2], &revData, &revLen) || !ArgInt(info, 3, &timeout))
    return TypeError(env, "poll(fds: Int32Array, events: Int32Array, revents: Int32Array, timeoutMs)");
  size_t n = fdsLen / 4;
  if (n == 0 || n > 64 || evLen < n * 4 || revLen < n * 4) return TypeError(env, "poll: 1 to 64 fds, with as many events and revents");
  const int32_t* fds = static_cast<const int32_t*>(fdsData);
  const int32_t* events = static_cast<const int32_t*>(evData);
  int32_t* revents = static_cast<int32_t*>(revData);
  struct pollfd pfds[64];
  for (size_t i = 0; i < n; i++) {
    pfds[i].fd = fds[i];
    pfds[i].events = static_cast<short>(events[i]);
    pfds[i].revents = 0;
  }
  int r = poll(pfds, n, static_cast<int>(timeout));
  if (r < 0 && errno != EINTR) return ThrowErrno(env, errno, "poll");
  for (size_t i = 0; i < n; i++) revents[i] = r < 0 ? 0 : pfds[i].revents;
  return Napi::Number::New(env, r < 0 ? 0 : r);
}

Napi::Value GetTid(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(syscall(SYS_gettid)));
}

// mallopt(M_ARENA_MAX, n): caps glibc's per-thread malloc arenas, process-wide.
Napi::Value SetMallocArenaMax(const Napi::CallbackInfo& info) {
  int n = info[0].As<Napi::Number>().Int32Value();
  if (mallopt(M_ARENA_MAX, n) != 1) Napi::Error::New(info.Env(), "mallopt(M_ARENA_MAX) failed").ThrowAsJavaScriptException();
  return info.Env().Undefined();
}

Napi::Object ConstantsObject(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  for (size_t i = 0; i < nv_constants_count; i++) o.Set(nv_constants[i].name, Napi::Number::New(env, nv_constants[i].value));
  return o;
}

Napi::Object LayoutObject(Napi::Env env) {
  Napi::Object root = Napi::Object::New(env);
  for (size_t i = 0; i < nv_fields_count; i++) {
    const nv_field& f = nv_fields[i];
    if (!root.Has(f.type)) root.Set(f.type, Napi::Object::New(env));
    root.Get(f.type).As<Napi::Object>().Set(f.field, Napi::Number::New(env, f.value));
  }
  return root;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("open", Napi::Function::New(env, Open));
  exports.Set("close", Napi::Function::New(env, Close));
  exports.Set("ioctl", Napi::Function::New(env, Ioctl));
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate));
  exports.Set("mapShared", Napi::Function::New(env, MapShared));
  exports.Set("addressOf", Napi::Function::New(env, AddressOf));
  exports.Set("attachVcpu", Napi::Function::New(env, AttachVcpu));
  exports.Set("detachVcpu", Napi::Function::New(env, DetachVcpu));
  exports.Set("run", Napi::Function::New(env, Run));
  exports.Set("kick", Napi::Function::New(env, Kick));
  exports.Set("yieldCpu", Napi::Function::New(env, YieldCpu));
  exports.Set("gettid", Napi::Function::New(env, GetTid));
  exports.Set("setMallocArenaMax", Napi::Function::New(env, SetMallocArenaMax));
  exports.Set("setTimer", Napi::Function::New(env, SetTimer));
  exports.Set("cmpxchg16b", Napi::Function::New(env, Cmpxchg16b));
  exports.Set("eventfd", Napi::Function::New(env, EventFd));
  exports.Set("eventfdRead", Napi::Function::New(env, EventFdRead));
  exports.Set("eventfdWrite", Napi::Function::New(env, EventFdWrite));
  exports.Set("fallocate", Napi::Function::New(env, Fallocate));
  exports.Set("pollReadable", Napi::Function::New(env, PollReadable));
  exports.Set("seek", Napi::Function::New(env, Seek));
  nv::InitUring(env, exports);
  exports.Set("readv", Napi::Function::New(env, Readv));
  exports.Set("writev", Napi::Function::New(env, Writev));
  exports.Set("socketpair", Napi::Function::New(env, SocketPair));
  exports.Set("setNonBlocking", Napi::Function::New(env, SetNonBlocking));
  exports.Set("poll", Napi::Function::New(env, Poll));
  exports.Set("constants", ConstantsObject(env));
  exports.Set("layout", LayoutObject(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(nodevisor, Init)

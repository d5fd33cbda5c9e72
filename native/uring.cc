// io_uring through liburing, as thin as the rest of the addon: set a ring
// up, queue one operation per call (readv, writev, fsync, fallocate, a
// timeout), submit, reap completions into a Float64Array. Which requests
// to queue, what a short read means and how errors reach the guest are
// decided in TypeScript (src/kvm/io-uring.ts, src/virtio/blk-uring.ts).
//
// A ring belongs to the thread that created it: nothing here locks it.
// The table of rings is process-wide (handles are plain numbers that can
// be posted between threads) and only its slots' allocation is locked.
#include "uring.h"

#include <errno.h>
#include <limits.h>
#include <liburing.h>
#include <linux/time_types.h>
#include <string.h>
#include <sys/uio.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <vector>

#include "napi-util.h"

namespace nv {
namespace {

struct Ring {
  struct io_uring ring;
  // Where queued operations' iovec arrays and timeouts live until the
  // kernel has read them: at submission (IORING_FEAT_SUBMIT_STABLE, which
  // TypeScript requires). A deque never moves what it already holds.
  std::deque<std::vector<struct iovec>> iovs;
  std::deque<struct __kernel_timespec> times;
};

constexpr int kMaxRings = 1024;
std::atomic<Ring*> g_rings[kMaxRings];
std::mutex g_rings_lock;

Ring* RingArg(const Napi::CallbackInfo& info, size_t i) {
  int64_t h;
  if (!ArgInt(info, i, &h) || h < 0 || h >= kMaxRings) return nullptr;
  return g_rings[h].load(std::memory_order_acquire);
}

// uringSetup(entries) -> { handle, fd, features, sqEntries, cqEntries }.
// Throws the errno of io_uring_setup(2): ENOSYS without io_uring, EPERM
// where sysctl kernel.io_uring_disabled forbids it, ENOMEM past limits.
Napi::Value Setup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t entries;
  if (!ArgInt(info, 0, &entries) || entries < 1 || entries > 4096) return TypeError(env, "uringSetup(entries: 1-4096)");
  Ring* r = new Ring();
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  int e = io_uring_queue_init_params(static_cast<unsigned>(entries), &r->ring, &p);
  if (e < 0) {
    delete r;
    return ThrowErrno(env, -e, "io_uring_setup");
  }
  int handle = -1;
  {
    std::lock_guard<std::mutex> guard(g_rings_lock);
    for (int i = 0; i < kMaxRings && handle < 0; i++) {
      if (!g_rings[i].load()) {
        g_rings[i].store(r, std::memory_order_release);
        handle = i;
      }
    }
  }
  if (handle < 0) {
    io_uring_queue_exit(&r->ring);
    delete r;
    return ThrowErrno(env, EMFILE, "io_uring_setup");
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("handle", Napi::Number::New(env, handle));
  out.Set("fd", Napi::Number::New(env, r->ring.ring_fd));
  out.Set("features", Napi::Number::New(env, p.features));
  out.Set("sqEntries", Napi::Number::New(env, p.sq_entries));
  out.Set("cqEntries", Napi::Number::New(env, p.cq_entries));
  return out;
}

// uringClose(handle): tears the ring down. The kernel cancels what is
// still in flight; pages under I/O stay pinned until it is done with them.
Napi::Value Close(const Napi::CallbackInfo& info) {
  int64_t h;
  if (!ArgInt(info, 0, &h) || h < 0 || h >= kMaxRings) return TypeError(info.Env(), "uringClose(handle)");
  Ring* r = g_rings[h].exchange(nullptr);
  if (r) {
    io_uring_queue_exit(&r->ring);
    delete r;
  }
  return info.Env().Undefined();
}

// uringProbe(handle) -> the opcodes (IORING_OP_*) this kernel supports; []
// where it cannot say (kernels before 5.6, which lack fallocate anyway).
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ring* r = RingArg(info, 0);
  if (!r) return TypeError(env, "uringProbe(handle): unknown ring");
  Napi::Array out = Napi::Array::New(env);
  struct io_uring_probe* p = io_uring_get_probe_ring(&r->ring);
  if (!p) return out;
  uint32_t n = 0;
  for (int op = 0; op <= p->last_op; op++) {
    if (io_uring_opcode_supported(p, op)) out.Set(n++, Napi::Number::New(env, op));
  }
  io_uring_free_probe(p);
  return out;
}

// The next free submission entry, or null when the queue is full (the
// caller submits and tries again).
struct io_uring_sqe* NextSqe(Ring* r) { return io_uring_get_sqe(&r->ring); }

// Common to readv and writev: (handle, fd, views, offset, userData). One
// view goes as a plain read or write, which needs no iovec.
Napi::Value QueueRw(const Napi::CallbackInfo& info, bool write) {
  Napi::Env env = info.Env();
  const char* usage = write ? "uringWritev(handle, fd, views, offset, userData)" : "uringReadv(handle, fd, views, offset, userData)";
  Ring* r = RingArg(info, 0);
  int64_t fd, offset, data;
  if (!r || !ArgInt(info, 1, &fd) || info.Length() < 3 || !info[2].IsArray() || !ArgInt(info, 3, &offset) || !ArgInt(info, 4, &data) || offset < 0)
    return TypeError(env, usage);
  Napi::Array views = info[2].As<Napi::Array>();
  uint32_t n = views.Length();
  if (n == 0 || n > IOV_MAX) return TypeError(env, "uring readv/writev: 1 to IOV_MAX views");
  std::vector<struct iovec> iov(n);
  for (uint32_t i = 0; i < n; i++) {
    if (!BufferBytes(env, views.Get(i), &iov[i].iov_base, &iov[i].iov_len)) return TypeError(env, "uring readv/writev: views must be typed arrays");
  }
  struct io_uring_sqe* sqe = NextSqe(r);
  if (!sqe) return Napi::Boolean::New(env, false);
  int f = static_cast<int>(fd);
  uint64_t at = static_cast<uint64_t>(offset);
  if (n == 1) {
    if (write) io_uring_prep_write(sqe, f, iov[0].iov_base, static_cast<unsigned>(iov[0].iov_len), at);
    else io_uring_prep_read(sqe, f, iov[0].iov_base, static_cast<unsigned>(iov[0].iov_len), at);
  } else {
    r->iovs.push_back(std::move(iov));
    std::vector<struct iovec>& kept = r->iovs.back();
    if (write) io_uring_prep_writev(sqe, f, kept.data(), n, at);
    else io_uring_prep_readv(sqe, f, kept.data(), n, at);
  }
  io_uring_sqe_set_data64(sqe, static_cast<uint64_t>(data));
  return Napi::Boolean::New(env, true);
}

Napi::Value Readv(const Napi::CallbackInfo& info) { return QueueRw(info, false); }
Napi::Value Writev(const Napi::CallbackInfo& info) { return QueueRw(info, true); }

// uringFsync(handle, fd, datasync, userData) -> false when the queue is full.
Napi::Value Fsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ring* r = RingArg(info, 0);
  int64_t fd, data;
  if (!r || !ArgInt(info, 1, &fd) || info.Length() < 3 || !ArgInt(info, 3, &data)) return TypeError(env, "uringFsync(handle, fd, datasync, userData)");
  struct io_uring_sqe* sqe = NextSqe(r);
  if (!sqe) return Napi::Boolean::New(env, false);
  io_uring_prep_fsync(sqe, static_cast<int>(fd), info[2].ToBoolean().Value() ? IORING_FSYNC_DATASYNC : 0);
  io_uring_sqe_set_data64(sqe, static_cast<uint64_t>(data));
  return Napi::Boolean::New(env, true);
}

// uringFallocate(handle, fd, mode, offset, length, userData) -> false when the queue is full.
Napi::Value Fallocate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ring* r = RingArg(info, 0);
  int64_t fd, mode, offset, length, data;
  if (!r || !ArgInt(info, 1, &fd) || !ArgInt(info, 2, &mode) || !ArgInt(info, 3, &offset) || !ArgInt(info, 4, &length) || !ArgInt(info, 5, &data))
    return TypeError(env, "uringFallocate(handle, fd, mode, offset, length, userData)");
  struct io_uring_sqe* sqe = NextSqe(r);
  if (!sqe) return Napi::Boolean::New(env, false);
  io_uring_prep_fallocate(sqe, static_cast<int>(fd), static_cast<int>(mode), offset, length);
  io_uring_sqe_set_data64(sqe, static_cast<uint64_t>(data));
  return Napi::Boolean::New(env, true);
}

// uringTimeout(handle, ns, userData) -> false when the queue is full. It
// completes with -ETIME after `ns` nanoseconds.
Napi::Value Timeout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ring* r = RingArg(info, 0);
  int64_t ns, data;
  if (!r || !ArgInt(info, 1, &ns) || ns < 0 || !ArgInt(info, 2, &data)) return TypeError(env, "uringTimeout(handle, ns, userData)");
  struct io_uring_sqe* sqe = NextSqe(r);
  if (!sqe) return Napi::Boolean::New(env, false);
  r->times.push_back({ns / 1000000000, ns % 1000000000});
  io_uring_prep_timeout(sqe, &r->times.back(), 0, 0);
  io_uring_sqe_set_data64(sqe, static_cast<uint64_t>(data));
  return Napi::Boolean::New(env, true);
}

// uringSubmit(handle, waitFor) -> how many queued operations the kernel
// took; with waitFor > 0 it also blocks until that many completions wait.
// EINTR, EAGAIN and EBUSY (the kernel is short of room: reap first) take
// nothing and return 0.
Napi::Value Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ring* r = RingArg(info, 0);
  int64_t wait;
  if (!r || !ArgInt(info, 1, &wait) || wait < 0) return TypeError(env, "uringSubmit(handle, waitFor)");
  int n = io_uring_submit_and_wait(&r->ring, static_cast<unsigned>(wait));
  if (n < 0 && n != -EINTR && n != -EAGAIN && n != -EBUSY) return ThrowErrno(env, -n, "io_uring_enter");
  // Submitted entries' iovecs and timeouts were copied by the kernel; keep
  // them while any entry still waits in the queue.
  if (io_uring_sq_ready(&r->ring) == 0) {
    r->iovs.clear();
    r->times.clear();
  }
  return Napi::Number::New(env, n < 0 ? 0 : n);
}

// uringReap(handle, out: Float64Array) -> how many completions it took
// (at most out.length / 2), each as [userData, result] pairs.
Napi::Value Reap(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ring* r = RingArg(info, 0);
  if (!r || info.Length() < 2 || !info[1].IsTypedArray()) return TypeError(env, "uringReap(handle, out: Float64Array)");
  Napi::TypedArray ta = info[1].As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_float64_array) return TypeError(env, "uringReap: out must be a Float64Array");
  Napi::Float64Array out = ta.As<Napi::Float64Array>();
  unsigned max = static_cast<unsigned>(out.ElementLength() / 2);
  double* o = out.Data();
  unsigned n = 0;
  unsigned head;
  struct io_uring_cqe* cqe;
  io_uring_for_each_cqe(&r->ring, head, cqe) {
    if (n == max) break;
    o[2 * n] = static_cast<double>(cqe->user_data);
    o[2 * n + 1] = cqe->res;
    n++;
  }
  io_uring_cq_advance(&r->ring, n);
  return Napi::Number::New(env, n);
}

}  // namespace

void InitUring(Napi::Env env, Napi::Object exports) {
  exports.Set("uringSetup", Napi::Function::New(env, Setup));
  exports.Set("uringClose", Napi::Function::New(env, Close));
  exports.Set("uringProbe", Napi::Function::New(env, Probe));
  exports.Set("uringReadv", Napi::Function::New(env, Readv));
  exports.Set("uringWritev", Napi::Function::New(env, Writev));
  exports.Set("uringFsync", Napi::Function::New(env, Fsync));
  exports.Set("uringFallocate", Napi::Function::New(env, Fallocate));
  exports.Set("uringTimeout", Napi::Function::New(env, Timeout));
  exports.Set("uringSubmit", Napi::Function::New(env, Submit));
  exports.Set("uringReap", Napi::Function::New(env, Reap));
}

}  // namespace nv

//! Parallel loops on PyTorch's own GNU OpenMP threads, when the process has attached them.
//!
//! PyTorch's CPU ops run on an OpenMP team whose idle threads keep spinning for milliseconds after
//! each op. A second pool (rayon's) started right after an op competes with those spinners for
//! the same cores: on a 2-core machine a memory-bound kernel then runs at about two thirds of its
//! speed. Running the chunks on PyTorch's team instead (`GOMP_parallel`, the entry point compiled
//! `#pragma omp parallel` regions call) keeps one set of threads per core, and the spinning
//! threads pick the work up at once.
//!
//! [`attach`] loads the GNU OpenMP runtime the process already has (by path, so the very same
//! instance); [`set_enabled`] switches between it and rayon. A forked child does not use it:
//! libgomp's thread pool does not survive `fork()`.

use crate::error::{Error, Result};
use libloading::Library;
use std::any::Any;
use std::ffi::{c_uint, c_void};
use std::ops::Range;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

type Body = unsafe extern "C" fn(*mut c_void);
type ParallelFn = unsafe extern "C" fn(Body, *mut c_void, c_uint, c_uint);

struct Runtime {
    parallel: ParallelFn,
    pid: u32,
    // Keeps the symbol above valid.
    _lib: Library,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Attaches the GNU OpenMP runtime at `path` (one the process has loaded: torch's `libgomp`);
/// later parallel loops of this process run on its threads. Attaching twice keeps the first.
pub fn attach(path: &str) -> Result<()> {
    let fail = |e: libloading::Error| Error::Runtime(format!("cannot use OpenMP at {path}: {e}"));
    // SAFETY: libgomp's initialisers only read the environment; the path is a runtime the
    // process has loaded already, so this returns a handle to that same instance.
    let lib = unsafe { Library::new(path) }.map_err(fail)?;
    // SAFETY: `GOMP_parallel` has had this signature since GCC 4.9.
    let parallel = *unsafe { lib.get::<ParallelFn>(b"GOMP_parallel\0") }.map_err(fail)?;
    let _ = RUNTIME.set(Runtime { parallel, pid: std::process::id(), _lib: lib });
    Ok(())
}

/// Chooses the attached OpenMP threads (`true`, the default once attached) or rayon's pool.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// The runtime loops of this process run on, if any: attached, enabled and not inherited
/// through a fork.
fn runtime() -> Option<&'static Runtime> {
    let rt = RUNTIME.get()?;
    (ENABLED.load(Ordering::Relaxed) && rt.pid == std::process::id()).then_some(rt)
}

/// Whether parallel loops run on the attached OpenMP threads.
pub fn active() -> bool {
    runtime().is_some()
}

/// Calls `f` on every range `chunk(c)`, `c < count`, on up to `threads` OpenMP threads (the
/// calling thread among them), handing out chunks in order as threads free up. Returns the
/// results in chunk order, or `None` when no runtime is attached to this process.
pub fn map<R, F>(
    count: usize,
    threads: usize,
    chunk: impl Fn(usize) -> Range<usize> + Sync,
    f: F,
) -> Option<Vec<R>>
where
    R: Send,
    F: Fn(Range<usize>) -> R + Sync,
{
    let rt = runtime()?;
    if count == 0 {
        return Some(Vec::new());
    }
    let slots: Vec<Mutex<Option<R>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let panic: Mutex<Option<Box<dyn Any + Send>>> = Mutex::new(None);
    let work = || loop {
        let c = next.fetch_add(1, Ordering::Relaxed);
        if c >= count {
            break;
        }
        let r = f(chunk(c));
        *slots[c].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
    };
    let body = || {
        if let Err(p) = catch_unwind(AssertUnwindSafe(work)) {
            next.store(count, Ordering::Relaxed); // the others stop taking chunks
            panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(p);
        }
    };
    run_team(rt.parallel, threads.min(count), &body);
    if let Some(p) = panic.into_inner().unwrap_or_else(|e| e.into_inner()) {
        resume_unwind(p);
    }
    let results = slots.into_iter().map(|s| s.into_inner().unwrap_or_else(|e| e.into_inner()));
    Some(results.map(|r| r.expect("every chunk ran")).collect())
}

/// Runs `body` once on each thread of an OpenMP team of `threads`.
fn run_team<B: Fn() + Sync>(parallel: ParallelFn, threads: usize, body: &B) {
    let threads = c_uint::try_from(threads).unwrap_or(c_uint::MAX);
    // SAFETY: libgomp returns only after every thread of the team has run `trampoline::<B>` to
    // the end, so `body` outlives every use of the pointer; `body` must not unwind (see `map`).
    unsafe { parallel(trampoline::<B>, (body as *const B).cast_mut().cast(), threads, 0) };
}

unsafe extern "C" fn trampoline<B: Fn() + Sync>(data: *mut c_void) {
    // SAFETY: `data` is the `&B` that `run_team` passed, alive for the whole parallel region.
    let body = unsafe { &*data.cast::<B>() };
    body();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runtime to test with: `SNNRS_LIBGOMP` (CI passes torch's), else the system's.
    fn attach_for_test() {
        let path = std::env::var("SNNRS_LIBGOMP").unwrap_or_else(|_| "libgomp.so.1".into());
        attach(&path).unwrap_or_else(|e| panic!("{e}; set SNNRS_LIBGOMP to a libgomp"));
    }

    // One test: `set_enabled` is process-wide.
    #[test]
    fn maps_in_order_on_the_team_and_propagates_panics() {
        attach_for_test();
        assert!(active());
        let chunk = |c: usize| c * 10..c * 10 + 10;
        for count in [0, 1, 7, 100] {
            for threads in [1, 2, 3, 8] {
                let got = map(count, threads, chunk, |r| r.start).expect("attached");
                assert_eq!(got, (0..count).map(|c| c * 10).collect::<Vec<_>>());
            }
        }
        let caught = catch_unwind(|| {
            map(50, 2, chunk, |r| assert!(r.start != 170, "chunk 17 fails"));
        });
        let message = caught.expect_err("the panic reaches the caller");
        assert_eq!(message.downcast_ref::<&str>(), Some(&"chunk 17 fails"));
        assert_eq!(map(3, 2, chunk, |r| r.len()), Some(vec![10, 10, 10]), "usable after a panic");
        set_enabled(false);
        assert!(!active() && map(3, 2, chunk, |r| r.len()).is_none());
        set_enabled(true);
        assert!(active());
    }

    #[test]
    fn a_library_without_gomp_parallel_is_refused() {
        for path in ["/nonexistent/libgomp.so.1", "libm.so.6"] {
            let err = attach(path).unwrap_err().to_string();
            assert!(err.contains("cannot use OpenMP at") && err.contains(path), "{err}");
        }
    }
}

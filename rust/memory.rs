//! Page-level hints for the large output buffers torch allocates for us.
//!
//! A fresh multi-megabyte tensor is an untouched `mmap`: writing it first costs one page fault
//! per 4 KiB, which on virtual machines can take longer than the kernel itself. Asking for
//! transparent huge pages before the first write cuts that by 512x. The hint changes no data and
//! is a no-op where THP is disabled or on other systems.

/// Huge-page size on x86-64 and aarch64 Linux.
const HUGE_PAGE: usize = 2 << 20;

/// Advises the kernel to back `[ptr, ptr + bytes)` with huge pages (only the 2 MiB-aligned
/// interior, so memory outside the buffer is never touched).
pub fn advise_huge_pages(ptr: *mut u8, bytes: usize) {
    let start = (ptr as usize).next_multiple_of(HUGE_PAGE);
    let end = (ptr as usize).saturating_add(bytes) / HUGE_PAGE * HUGE_PAGE;
    if end > start {
        advise(start, end - start);
    }
}

#[cfg(target_os = "linux")]
fn advise(start: usize, len: usize) {
    // SAFETY: the range lies inside one live allocation; MADV_HUGEPAGE only sets a flag on
    // its mapping, and its failure (THP off, heap memory) is harmless, so the result is ignored.
    unsafe {
        libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_start: usize, _len: usize) {}

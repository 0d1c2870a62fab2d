//! Compiling `neuron.cu` with NVRTC, loaded at run time (cudarc's dynamic loading).
//!
//! cudarc panics when a library it needs is missing, so [`available`] checks for libnvrtc once
//! before any NVRTC call and turns its absence into an error that says what to install. Compiled
//! images are cached per target for the life of the process.

use super::plan::{compile_options, Target};
use super::SOURCE;
use crate::error::{Error, Result};
use cudarc::nvrtc::{result, sys};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, CString};
use std::sync::{Arc, Mutex, OnceLock};

/// A compiled `neuron.cu`: a cubin, or NUL-terminated PTX text.
#[derive(Debug)]
pub struct Compiled {
    pub target: Target,
    pub image: Vec<u8>,
}

impl Compiled {
    /// The PTX text (without its NUL), or None for a cubin.
    pub fn ptx(&self) -> Option<&str> {
        match self.target {
            Target::Ptx(_) => {
                std::str::from_utf8(self.image.strip_suffix(&[0]).unwrap_or(&[])).ok()
            }
            Target::Cubin(_) => None,
        }
    }
}

/// Ok when a libnvrtc can be loaded (checked once per process).
pub fn available() -> Result<()> {
    static PRESENT: OnceLock<bool> = OnceLock::new();
    // SAFETY: only tries to dlopen the candidate library names.
    if *PRESENT.get_or_init(|| unsafe { sys::is_culib_present() }) {
        Ok(())
    } else {
        Err(Error::Runtime(
            "no NVRTC library (libnvrtc.so) could be loaded, so the snnrs CUDA kernels cannot be \
             compiled: install torch's CUDA wheels (they ship nvidia/cu13/lib/libnvrtc.so.13) \
             or `pip install nvidia-cuda-nvrtc`, or put libnvrtc on LD_LIBRARY_PATH"
                .into(),
        ))
    }
}

fn nvrtc_error(what: &str, e: result::NvrtcError) -> Error {
    Error::Runtime(format!("NVRTC {what} failed: {e}"))
}

/// NVRTC's version, `(major, minor)`.
pub fn version() -> Result<(i32, i32)> {
    available()?;
    let (mut major, mut minor): (c_int, c_int) = (0, 0);
    // SAFETY: two valid out-pointers.
    unsafe { sys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| nvrtc_error("nvrtcVersion", e))?;
    Ok((major, minor))
}

/// The compute capabilities this NVRTC can compile for (e.g. 75, 80, ..., 120).
pub fn supported_archs() -> Result<Vec<u32>> {
    available()?;
    let mut count: c_int = 0;
    // SAFETY: out-pointer, then a buffer of the size NVRTC reported.
    unsafe { sys::nvrtcGetNumSupportedArchs(&mut count) }
        .result()
        .map_err(|e| nvrtc_error("nvrtcGetNumSupportedArchs", e))?;
    let mut archs = vec![0 as c_int; usize::try_from(count).unwrap_or(0)];
    unsafe { sys::nvrtcGetSupportedArchs(archs.as_mut_ptr()) }
        .result()
        .map_err(|e| nvrtc_error("nvrtcGetSupportedArchs", e))?;
    Ok(archs.into_iter().filter_map(|a| u32::try_from(a).ok()).collect())
}

/// `neuron.cu` compiled for `target`; compiled once per target and process.
pub fn compile(target: Target) -> Result<Arc<Compiled>> {
    static CACHE: OnceLock<Mutex<HashMap<Target, Arc<Compiled>>>> = OnceLock::new();
    available()?;
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().map_err(|_| Error::Runtime("NVRTC cache poisoned".into()))?;
    if let Some(done) = cache.get(&target) {
        return Ok(done.clone());
    }
    let compiled = Arc::new(Compiled { target, image: compile_uncached(target)? });
    cache.insert(target, compiled.clone());
    Ok(compiled)
}

fn compile_uncached(target: Target) -> Result<Vec<u8>> {
    let src = CString::new(SOURCE).map_err(|_| Error::Runtime("neuron.cu contains NUL".into()))?;
    let prog = result::create_program(&src, Some(c"neuron.cu"))
        .map_err(|e| nvrtc_error("nvrtcCreateProgram", e))?;
    // SAFETY: `prog` is live until destroyed below; `src` outlives it.
    let out = unsafe { compile_program(prog, target) };
    unsafe { result::destroy_program(prog) }.map_err(|e| nvrtc_error("nvrtcDestroyProgram", e))?;
    out
}

/// # Safety
/// `prog` must be a live program.
unsafe fn compile_program(prog: sys::nvrtcProgram, target: Target) -> Result<Vec<u8>> {
    if let Err(e) = result::compile_program(prog, &compile_options(target)) {
        let log = result::get_program_log(prog).map(|l| c_text(&l)).unwrap_or_default();
        return Err(Error::Runtime(format!(
            "NVRTC could not compile neuron.cu for {} ({e}):\n{log}",
            target.arch_option()
        )));
    }
    match target {
        Target::Ptx(_) => {
            let ptx = result::get_ptx(prog).map_err(|e| nvrtc_error("nvrtcGetPTX", e))?;
            Ok(ptx.into_iter().map(|c| c.to_ne_bytes()[0]).collect())
        }
        Target::Cubin(_) => {
            let mut size = 0usize;
            sys::nvrtcGetCUBINSize(prog, &mut size)
                .result()
                .map_err(|e| nvrtc_error("nvrtcGetCUBINSize", e))?;
            let mut cubin = vec![0u8; size];
            sys::nvrtcGetCUBIN(prog, cubin.as_mut_ptr().cast::<c_char>())
                .result()
                .map_err(|e| nvrtc_error("nvrtcGetCUBIN", e))?;
            Ok(cubin)
        }
    }
}

fn c_text(chars: &[c_char]) -> String {
    let bytes: Vec<u8> =
        chars.iter().take_while(|&&c| c != 0).map(|c| c.to_ne_bytes()[0]).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cuda::plan::{all_kernel_names, missing_entries, spike_kernel_names};

    /// Runs where a libnvrtc is loadable (e.g. `LD_LIBRARY_PATH=<venv>/nvidia/cu13/lib`).
    #[test]
    fn every_kernel_compiles_for_hopper_when_nvrtc_is_present() {
        if available().is_err() {
            eprintln!("skipped: no libnvrtc");
            return;
        }
        let ptx = compile(Target::Ptx(90)).unwrap();
        let names = [all_kernel_names(), spike_kernel_names()].concat();
        let missing = missing_entries(ptx.ptx().unwrap(), &names);
        assert!(missing.is_empty(), "entry points missing from the PTX: {missing:?}");
        assert!(!compile(Target::Cubin(90)).unwrap().image.is_empty());
        assert!(supported_archs().unwrap().contains(&90));
    }
}

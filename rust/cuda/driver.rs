//! The CUDA driver side: per-device kernels in torch's (primary) context, and launches.
//!
//! Nothing here allocates device memory, synchronises, or leaves a different context current:
//! each call pushes the device's primary context (the one torch's runtime uses) only when it is
//! not current already, and pops it before returning. The module holding the kernels is loaded
//! once per device on first use; that cannot happen inside CUDA graph capture, which is detected
//! and reported. Launches themselves are plain `cuLaunchKernel` on torch's stream, legal in
//! capture.

use super::nvrtc;
use super::plan::{all_kernels, all_spike_kernels, choose_target, Kernel, SpikeKernel, BLOCK};
use crate::error::{Error, Result};
use cudarc::driver::result::{self as cu, DriverError};
use cudarc::driver::sys;
use std::collections::HashMap;
use std::ffi::{c_void, CString};
use std::sync::{Arc, Mutex, OnceLock};

fn driver_error(what: &str, e: DriverError) -> Error {
    Error::Runtime(format!("CUDA driver call {what} failed: {e:?}"))
}

/// Loads libcuda and initialises the driver, once per process.
pub fn init() -> Result<()> {
    static INIT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        // SAFETY: only tries to dlopen the candidate library names.
        if !unsafe { sys::is_culib_present() } {
            return Err(
                "no CUDA driver (libcuda.so) could be loaded: CUDA tensors need an NVIDIA \
                        GPU with its driver installed; the CPU ops work without one"
                    .into(),
            );
        }
        cu::init().map_err(|e| format!("the CUDA driver did not initialise (cuInit: {e:?})"))
    })
    .clone()
    .map_err(Error::Runtime)
}

/// The kernels of one device: its primary context and every entry point of the loaded module,
/// indexed by [`Kernel::index`], then the spike kernels by [`SpikeKernel::index`].
pub struct Device {
    ctx: sys::CUcontext,
    functions: Vec<sys::CUfunction>,
    spike_functions: Vec<sys::CUfunction>,
    pub sm_count: u32,
}

// SAFETY: CUDA contexts and function handles may be used from any thread.
unsafe impl Send for Device {}
unsafe impl Sync for Device {}

/// Makes a context current for a scope, restoring the previous one (a no-op when it is current).
struct CurrentContext {
    pushed: bool,
}

impl CurrentContext {
    fn enter(ctx: sys::CUcontext) -> Result<Self> {
        let current = cu::ctx::get_current().map_err(|e| driver_error("cuCtxGetCurrent", e))?;
        if current == Some(ctx) {
            return Ok(CurrentContext { pushed: false });
        }
        // SAFETY: `ctx` is a retained primary context.
        unsafe { sys::cuCtxPushCurrent_v2(ctx) }
            .result()
            .map_err(|e| driver_error("cuCtxPushCurrent", e))?;
        Ok(CurrentContext { pushed: true })
    }
}

impl Drop for CurrentContext {
    fn drop(&mut self) {
        if self.pushed {
            let mut popped = std::ptr::null_mut();
            // SAFETY: pops exactly the context `enter` pushed on this thread.
            let _ = unsafe { sys::cuCtxPopCurrent_v2(&mut popped) };
        }
    }
}

fn attribute(dev: sys::CUdevice, attr: sys::CUdevice_attribute) -> Result<u32> {
    // SAFETY: `dev` came from cuDeviceGet.
    let v = unsafe { cu::device::get_attribute(dev, attr) }
        .map_err(|e| driver_error("cuDeviceGetAttribute", e))?;
    u32::try_from(v).map_err(|_| Error::Runtime(format!("device attribute {attr:?} = {v}")))
}

/// The kernels of device `ordinal`, loading them on first use (never during graph capture).
pub fn device(ordinal: i32, stream: u64) -> Result<Arc<Device>> {
    static DEVICES: OnceLock<Mutex<HashMap<i32, Arc<Device>>>> = OnceLock::new();
    init()?;
    let devices = DEVICES.get_or_init(Default::default);
    let mut devices =
        devices.lock().map_err(|_| Error::Runtime("CUDA device cache poisoned".into()))?;
    if let Some(d) = devices.get(&ordinal) {
        return Ok(d.clone());
    }
    let d = Arc::new(load(ordinal, stream)?);
    devices.insert(ordinal, d.clone());
    Ok(d)
}

/// Loading a module is not allowed while `stream` is being captured into a CUDA graph. The
/// legacy default stream (0) cannot be captured, and any other stream names its own context, so
/// this is asked before touching any context.
fn check_not_capturing(ordinal: i32, stream: u64) -> Result<()> {
    if stream == 0 {
        return Ok(());
    }
    // SAFETY: the stream handle comes from torch for this device.
    let status = unsafe { cu::stream::is_capturing(stream as sys::CUstream) }
        .map_err(|e| driver_error("cuStreamIsCapturing", e))?;
    if status == sys::CUstreamCaptureStatus::CU_STREAM_CAPTURE_STATUS_NONE {
        return Ok(());
    }
    Err(Error::Runtime(format!(
        "the snnrs CUDA kernels are compiled and loaded on first use on each device, which \
         cannot happen during CUDA graph capture: run any snnrs op on cuda:{ordinal} once \
         before capturing (a warm-up step, as torch.cuda.graph recommends)"
    )))
}

fn load(ordinal: i32, stream: u64) -> Result<Device> {
    check_not_capturing(ordinal, stream)?;
    let count = cu::device::get_count().map_err(|e| driver_error("cuDeviceGetCount", e))?;
    if ordinal < 0 || ordinal >= count {
        return Err(Error::InvalidArgument(format!(
            "CUDA device index {ordinal} out of range: this process sees {count} device(s)"
        )));
    }
    let dev = cu::device::get(ordinal).map_err(|e| driver_error("cuDeviceGet", e))?;
    use sys::CUdevice_attribute::*;
    let cc = 10 * attribute(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?
        + attribute(dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
    let sm_count = attribute(dev, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?;
    // SAFETY: `dev` came from cuDeviceGet. torch already holds this context active (its tensors
    // live there); the reference taken here is kept for the life of the process.
    let ctx = unsafe { cu::primary_ctx::retain(dev) }
        .map_err(|e| driver_error("cuDevicePrimaryCtxRetain", e))?;
    let _current = CurrentContext::enter(ctx)?;
    let compiled = nvrtc::compile(choose_target(cc, &nvrtc::supported_archs()?)?)?;
    // SAFETY: a complete cubin or NUL-terminated PTX image; the context is current.
    let module = unsafe { cu::module::load_data(compiled.image.as_ptr().cast::<c_void>()) }
        .map_err(|e| driver_error("cuModuleLoadData", e))?;
    let function = |name: String| {
        let cname = CString::new(name.as_str()).map_err(|_| Error::Runtime(name.clone()))?;
        // SAFETY: `module` was just loaded and is never unloaded.
        unsafe { cu::module::get_function(module, cname) }
            .map_err(|e| driver_error(&format!("cuModuleGetFunction({name})"), e))
    };
    let functions = all_kernels().into_iter().map(|k| function(k.name())).collect::<Result<_>>()?;
    let spike_functions =
        all_spike_kernels().into_iter().map(|k| function(k.name())).collect::<Result<_>>()?;
    Ok(Device { ctx, functions, spike_functions, sm_count })
}

impl Device {
    /// Launches `kernel` over `grid` blocks on `stream` with one by-value argument struct.
    ///
    /// # Safety
    /// `args` must be the struct the kernel takes, with device pointers to live buffers of the
    /// sizes it implies, on this device, usable from `stream`.
    pub unsafe fn launch<A>(
        &self,
        kernel: Kernel,
        grid: u32,
        stream: u64,
        args: &mut A,
    ) -> Result<()> {
        let f = *self
            .functions
            .get(kernel.index())
            .ok_or_else(|| Error::Runtime(format!("no CUDA kernel {kernel:?}")))?;
        self.launch_function(f, &kernel.name(), grid, stream, args)
    }

    /// Launches the spike kernel `kernel`, as [`Device::launch`].
    ///
    /// # Safety
    /// As [`Device::launch`].
    pub unsafe fn launch_spikes<A>(
        &self,
        kernel: SpikeKernel,
        grid: u32,
        stream: u64,
        args: &mut A,
    ) -> Result<()> {
        let f = *self
            .spike_functions
            .get(kernel.index())
            .ok_or_else(|| Error::Runtime(format!("no CUDA kernel {kernel:?}")))?;
        self.launch_function(f, &kernel.name(), grid, stream, args)
    }

    /// # Safety
    /// As [`Device::launch`], for the function `f` of this device.
    unsafe fn launch_function<A>(
        &self,
        f: sys::CUfunction,
        name: &str,
        grid: u32,
        stream: u64,
        args: &mut A,
    ) -> Result<()> {
        let _current = CurrentContext::enter(self.ctx)?;
        let mut params = [(args as *mut A).cast::<c_void>()];
        cu::launch_kernel(f, (grid, 1, 1), (BLOCK, 1, 1), 0, stream as sys::CUstream, &mut params)
            .map_err(|e| driver_error(&format!("cuLaunchKernel({name})"), e))
    }
}

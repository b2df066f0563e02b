//! The optional torch build (cargo feature `torch`): latents cross between
//! torch and Rust through libtorch itself (`tch`), with no numpy in between.
//! Writing borrows a CPU tensor's memory (one device-to-host copy for CUDA
//! tensors, one copy to make a non-contiguous tensor contiguous); reading
//! decodes straight into tensors libtorch allocated, bfloat16 included.
//!
//! The default build does the same through numpy views (zero-copy as well,
//! and independent of the torch version); this one ties the extension to the
//! torch it was linked against (`LINKED_TORCH`). README, "The torch build".

use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::prelude::*;
use tch::{Device, Kind, TchError, Tensor};

use raiiaf::error::Error;
use raiiaf::tensor::DType;

/// `torch.__version__` of the torch this extension is linked against.
pub const LINKED_TORCH: Option<&str> = Some(env!("RAIIAF_LINKED_TORCH"));

fn kind(dtype: DType) -> Kind {
    match dtype {
        DType::F32 => Kind::Float,
        DType::F16 => Kind::Half,
        DType::BF16 => Kind::BFloat16,
    }
}

/// Runs libtorch calls. tch's infallible methods panic when libtorch throws;
/// here every failure, panic included, becomes an [`Error`] naming `what`.
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, TchError>) -> Result<T, Error> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        // The first line is libtorch's message; a C++ backtrace follows.
        Ok(Err(e)) => {
            let message = e.to_string();
            let first = message.lines().next().unwrap_or_default();
            Err(Error::invalid(format!("{what}: libtorch: {first}")))
        }
        Err(_) => Err(Error::invalid(format!("{what}: libtorch refused the tensor"))),
    }
}

/// Address and byte length of a CPU, contiguous tensor's elements (a
/// dangling, aligned address when it has none, as empty slices need).
fn memory(t: &Tensor, dtype: DType) -> (*mut u8, usize) {
    let len = t.numel() * dtype.itemsize();
    let ptr = if len == 0 {
        std::ptr::NonNull::<u8>::dangling().as_ptr()
    } else {
        t.data_ptr().cast()
    };
    (ptr, len)
}

/// A latent's elements in host memory, borrowed from (or copied once into) a
/// CPU, C-contiguous libtorch tensor that this value keeps alive.
pub struct HostTensor {
    _tensor: Tensor,
    shape: Vec<u64>,
    ptr: *const u8,
    len: usize,
}

impl HostTensor {
    /// The tensor behind `obj`, if `obj` is a `torch.Tensor`, as `dtype`
    /// elements on the CPU; `Ok(None)` for anything else (e.g. numpy arrays).
    /// The Python layer sends only plain strided CPU/CUDA tensors this way.
    pub fn borrow(
        py: Python<'_>,
        what: &str,
        obj: &Bound<'_, PyAny>,
        dtype: DType,
    ) -> Result<Option<Self>, Error> {
        let ptr = obj.as_ptr() as *mut tch::python::CPyObject;
        // SAFETY: `obj` is a live Python object and the GIL is held.
        let Some(t) = guarded(what, || unsafe { Tensor::pyobject_unpack(ptr) })? else {
            return Ok(None);
        };
        let found = guarded(what, || t.f_kind())?;
        if found != kind(dtype) {
            return Err(Error::invalid(format!(
                "{what}: a torch {found:?} tensor, expected {dtype}"
            )));
        }
        // Copies (device to host, or to make it contiguous) run without the GIL.
        let t = py.detach(|| {
            guarded(what, || {
                let t = match t.device() {
                    Device::Cpu => t,
                    _ => t.f_to_device(Device::Cpu)?,
                };
                t.f_contiguous()
            })
        })?;
        let (shape, (ptr, len)) = guarded(what, || Ok((t.size(), memory(&t, dtype))))?;
        Ok(Some(HostTensor {
            _tensor: t,
            shape: shape.into_iter().map(|d| d as u64).collect(),
            ptr: ptr.cast_const(),
            len,
        }))
    }

    pub fn shape(&self) -> Vec<u64> {
        self.shape.clone()
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` points at `len` bytes of the contiguous CPU storage of
        // `_tensor`, which lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// A CPU tensor libtorch allocated for a latent, decoded into without the GIL.
pub struct TorchOutput {
    tensor: Tensor,
    ptr: *mut u8,
    len: usize,
}

impl TorchOutput {
    pub fn empty(dtype: DType, shape: &[usize]) -> Result<Self, Error> {
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        guarded("allocating a torch tensor", || {
            let tensor = Tensor::f_empty(dims.as_slice(), (kind(dtype), Device::Cpu))?;
            let (ptr, len) = memory(&tensor, dtype);
            Ok(TorchOutput { tensor, ptr, len })
        })
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` points at `len` bytes of the fresh, contiguous storage
        // of `tensor`, which nothing else references until `into_py`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }

    /// The `torch.Tensor` sharing this memory.
    pub fn into_py(self, py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        let ptr = guarded("wrapping a torch tensor", || self.tensor.pyobject_wrap())
            .map_err(|e| super::to_pyerr(py, e))?;
        // SAFETY: THPVariable_Wrap returns a new reference, or null with a Python error set.
        unsafe { Bound::from_owned_ptr_or_err(py, ptr as *mut pyo3::ffi::PyObject) }
    }
}

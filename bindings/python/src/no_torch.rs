//! The default build's stand-in for [`torch.rs`](torch.rs): the same API with
//! uninhabited types, so the bindings share one code path and the torch arms
//! compile away. Torch tensors reach this build as numpy views (the Python
//! layer's job), and `as_torch` is served by `torch.from_numpy` there.

use pyo3::prelude::*;

use raiiaf::error::Error;
use raiiaf::tensor::DType;

pub const LINKED_TORCH: Option<&str> = None;

pub enum HostTensor {}

impl HostTensor {
    /// Never a torch tensor here: the caller extracts a numpy array.
    pub fn borrow(_: Python<'_>, _: &str, _: &Bound<'_, PyAny>, _: DType) -> Result<Option<Self>, Error> {
        Ok(None)
    }

    pub fn shape(&self) -> Vec<u64> {
        match *self {}
    }

    pub fn bytes(&self) -> &[u8] {
        match *self {}
    }
}

pub enum TorchOutput {}

impl TorchOutput {
    pub fn empty(_: DType, _: &[usize]) -> Result<Self, Error> {
        Err(Error::Unsupported(
            "as_torch: this build does not link torch; convert with torch.from_numpy".into(),
        ))
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        match *self {}
    }

    pub fn into_py(self, _: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        match self {}
    }
}

//! Element types and tensors as the container stores them: little-endian,
//! C order, bit-exact.

use crate::error::{Error, Result};

/// Most dimensions a stored tensor may have (video latents use 5).
pub const MAX_RANK: usize = 8;

/// The element types a LATN chunk can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE 754 binary32.
    F32,
    /// IEEE 754 binary16.
    F16,
    /// bfloat16; format 1.1. Python has no native type for it, so the
    /// bindings carry it as 16-bit words with this dtype recorded.
    BF16,
}

impl DType {
    /// Every element type.
    pub const ALL: [DType; 3] = [DType::F32, DType::F16, DType::BF16];

    /// Bytes per element.
    ///
    /// ```
    /// assert_eq!(raiiaf::DType::BF16.itemsize(), 2);
    /// ```
    pub fn itemsize(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
        }
    }

    /// The name used in the manifest (`extra.dtype`) and in the APIs.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
        }
    }

    /// The element type named `name` (`float32`/`f32`, `float16`/`f16`, `bfloat16`/`bf16`).
    ///
    /// ```
    /// use raiiaf::DType;
    /// assert_eq!(DType::from_name("bf16").unwrap(), DType::BF16);
    /// assert!(DType::from_name("int8").is_err());
    /// ```
    pub fn from_name(name: &str) -> Result<DType> {
        match name {
            "float32" | "f32" => Ok(DType::F32),
            "float16" | "f16" => Ok(DType::F16),
            "bfloat16" | "bf16" => Ok(DType::BF16),
            other => Err(Error::invalid(format!(
                "unsupported dtype {other:?}: use float32, float16 or bfloat16"
            ))),
        }
    }

    /// The 4-byte flags of the LATN inner header (`F32\0`, `F16\0`, `BF16`).
    pub fn flags(self) -> [u8; 4] {
        match self {
            DType::F32 => *b"F32\0",
            DType::F16 => *b"F16\0",
            DType::BF16 => *b"BF16",
        }
    }

    /// The manifest `flags` string: the inner flags without trailing NULs.
    pub fn flags_str(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
        }
    }

    /// The element type of LATN inner flags (trailing NULs ignored), if any.
    pub fn from_flags(flags: &[u8]) -> Option<DType> {
        let end = flags.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        match &flags[..end] {
            b"F32" => Some(DType::F32),
            b"F16" => Some(DType::F16),
            b"BF16" => Some(DType::BF16),
            _ => None,
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Number of elements of `shape`, or an error naming the shape when it is
/// empty, too deep, has a zero dimension or overflows.
pub fn element_count(shape: &[u64]) -> Result<u64> {
    if shape.is_empty() || shape.len() > MAX_RANK {
        return Err(Error::invalid(format!(
            "shape {shape:?} has {} dimensions; 1 to {MAX_RANK} are supported",
            shape.len()
        )));
    }
    if shape.contains(&0) {
        return Err(Error::invalid(format!(
            "shape {shape:?} has a zero-sized dimension; a stored tensor needs at least one element"
        )));
    }
    shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::invalid(format!("shape {shape:?} overflows 64-bit arithmetic")))
}

/// Byte size of a tensor of `shape` and `dtype`, checked for overflow.
pub fn byte_size(shape: &[u64], dtype: DType) -> Result<u64> {
    element_count(shape)?
        .checked_mul(dtype.itemsize() as u64)
        .ok_or_else(|| Error::invalid(format!("shape {shape:?} overflows 64-bit arithmetic")))
}

/// A tensor borrowed from the caller, ready to be written. Its fields are
/// private and [`TensorRef::new`] checks them: the rank is 1 to 8, no axis is
/// zero, and `data` is exactly `shape x itemsize` bytes, so the writer can
/// never be handed a tensor it would store unreadably.
#[derive(Debug, Clone)]
pub struct TensorRef<'a> {
    dtype: DType,
    shape: Vec<u64>,
    /// Little-endian element bytes in C order; `len == byte_size(shape, dtype)`.
    data: &'a [u8],
}

impl<'a> TensorRef<'a> {
    /// Checks `data` against `shape` and `dtype`.
    ///
    /// ```
    /// use raiiaf::{DType, TensorRef};
    /// let data = [0u8; 2 * 3 * 4];
    /// let t = TensorRef::new(DType::F32, vec![2, 3], &data).unwrap();
    /// assert_eq!(t.shape(), &[2, 3]);
    /// assert!(TensorRef::new(DType::F32, vec![2, 4], &data).is_err());
    /// ```
    pub fn new(dtype: DType, shape: Vec<u64>, data: &'a [u8]) -> Result<Self> {
        let expected = byte_size(&shape, dtype)?;
        if data.len() as u64 != expected {
            return Err(Error::invalid(format!(
                "tensor of shape {shape:?} and dtype {dtype} needs {expected} bytes, got {}",
                data.len()
            )));
        }
        Ok(TensorRef { dtype, shape, data })
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The shape, outermost axis first.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// The element bytes (little-endian, C order).
    pub fn data(&self) -> &'a [u8] {
        self.data
    }
}

/// An owned, decoded tensor; checked like [`TensorRef`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tensor {
    dtype: DType,
    shape: Vec<u64>,
    data: Vec<u8>,
}

impl Tensor {
    /// Checks `data` against `shape` and `dtype` as [`TensorRef::new`] does.
    pub fn new(dtype: DType, shape: Vec<u64>, data: Vec<u8>) -> Result<Self> {
        TensorRef::new(dtype, shape.clone(), &data)?;
        Ok(Tensor { dtype, shape, data })
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The shape, outermost axis first.
    pub fn shape(&self) -> &[u64] {
        &self.shape
    }

    /// The element bytes (little-endian, C order).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The element bytes, giving up the tensor.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }

    /// A borrowed view, for writing.
    pub fn as_ref(&self) -> TensorRef<'_> {
        TensorRef {
            dtype: self.dtype,
            shape: self.shape.clone(),
            data: &self.data,
        }
    }
}

/// Converts float32 bytes to `target` (float16 or bfloat16), the one lossy
/// step of the crate, taken only when the caller asks for it. Fails, naming
/// the first offending element, if a finite value would overflow to ±inf.
pub fn convert_f32(data: &[u8], target: DType) -> Result<Vec<u8>> {
    let values: &[f32] = bytemuck::try_cast_slice(data)
        .map_err(|_| Error::invalid("float32 data length is not a multiple of 4"))?;
    let mut out = Vec::with_capacity(values.len() * 2);
    for (i, &v) in values.iter().enumerate() {
        let bits = match target {
            DType::F16 => half::f16::from_f32(v).to_bits(),
            DType::BF16 => half::bf16::from_f32(v).to_bits(),
            DType::F32 => return Ok(data.to_vec()),
        };
        let overflow = v.is_finite()
            && match target {
                DType::F16 => half::f16::from_bits(bits).is_infinite(),
                _ => half::bf16::from_bits(bits).is_infinite(),
            };
        if overflow {
            return Err(Error::invalid(format!(
                "converting to {target} would turn element {i} ({v}) into infinity; \
                 store it as float32 instead"
            )));
        }
        out.extend_from_slice(&bits.to_le_bytes());
    }
    Ok(out)
}

#[cfg(target_endian = "big")]
compile_error!("raiiaf-rs stores little-endian tensors and supports little-endian hosts only");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip() {
        for d in DType::ALL {
            assert_eq!(DType::from_flags(&d.flags()), Some(d));
            assert_eq!(DType::from_name(d.name()).unwrap(), d);
        }
        assert_eq!(DType::from_flags(b"F64\0"), None);
    }

    #[test]
    fn shapes_are_checked() {
        assert_eq!(element_count(&[1, 4, 8, 8]).unwrap(), 256);
        assert!(element_count(&[]).is_err());
        assert!(element_count(&[1; 9]).is_err());
        assert!(element_count(&[2, 0, 3]).is_err());
        assert!(element_count(&[u64::MAX, 2]).is_err());
        assert!(byte_size(&[u64::MAX / 2], DType::F32).is_err());
    }

    #[test]
    fn conversion_refuses_overflow() {
        let ok: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let h = convert_f32(&ok, DType::F16).unwrap();
        assert_eq!(h.len(), 4);
        let big: Vec<u8> = [1.0f32, 70000.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let err = convert_f32(&big, DType::F16).unwrap_err().to_string();
        assert!(err.contains("element 1"), "{err}");
        // bfloat16 has float32's range: no overflow here.
        assert!(convert_f32(&big, DType::BF16).is_ok());
        // Infinity in, infinity out, is not an overflow.
        let inf: Vec<u8> = f32::INFINITY.to_le_bytes().to_vec();
        assert!(convert_f32(&inf, DType::F16).is_ok());
    }
}

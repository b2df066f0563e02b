//! PyO3 bindings: the private module `raiiaf_rs._raiiaf_rs`. Thin on
//! purpose: argument conversion and error mapping only; the public,
//! documented API is the Python package `raiiaf_rs` on top of it. The GIL
//! is released around all hashing, (de)compression and file I/O.
//!
//! Latents arrive and leave as numpy arrays (bfloat16 as uint16 words); the
//! optional torch build ([`torch`]) also takes and returns torch tensors.
//!
//! Without the `python` feature the crate is empty, so `cargo test --workspace` and
//! clippy build the workspace without a Python interpreter.
#![cfg(feature = "python")]

mod catalog;
mod errors;
#[cfg(feature = "torch")]
mod torch;
// The default build: the same types, uninhabited, so torch code paths vanish.
#[cfg(not(feature = "torch"))]
#[path = "no_torch.rs"]
mod torch;

use std::path::PathBuf;

use numpy::{Element, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use serde_json::{Map, Value};

use errors::{detach_guarded, to_pyerr};
use raiiaf::error::Error;
use raiiaf_env as env;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use raiiaf::format::{self, Archive, Codec, Contents, ReadOptions, WriteOptions};
use raiiaf::image::{self, Pixels, PngLevel};
use raiiaf::tensor::{DType, TensorRef};

fn parse_json_object(py: Python<'_>, text: &str, what: &str) -> PyResult<Map<String, Value>> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(to_pyerr(py, Error::invalid(format!("{what} must be a dict")))),
        Err(e) => Err(to_pyerr(
            py,
            Error::invalid(format!("{what} is not valid JSON: {e}")),
        )),
    }
}

/// A latent's elements, borrowed from the caller: a C-contiguous numpy array
/// of one of the stored element types or, in the torch build, a torch tensor.
enum Borrowed<'py> {
    F32(PyReadonlyArrayDyn<'py, f32>),
    F16(PyReadonlyArrayDyn<'py, half::f16>),
    U16(PyReadonlyArrayDyn<'py, u16>),
    Torch(torch::HostTensor),
}

impl<'py> Borrowed<'py> {
    fn new(py: Python<'py>, name: &str, dtype: DType, obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        let what = format!("latent {name:?}");
        if let Some(t) = torch::HostTensor::borrow(py, &what, obj, dtype).map_err(|e| to_pyerr(py, e))? {
            return Ok(Borrowed::Torch(t));
        }
        match dtype {
            DType::F32 => obj.extract().map(Borrowed::F32),
            DType::F16 => obj.extract().map(Borrowed::F16),
            DType::BF16 => obj.extract().map(Borrowed::U16),
        }
        .map_err(|_| {
            to_pyerr(
                py,
                Error::invalid(format!("latent {name:?}: expected a numpy array holding {dtype}")),
            )
        })
    }

    fn shape(&self) -> Vec<u64> {
        let dims = match self {
            Borrowed::F32(a) => a.shape(),
            Borrowed::F16(a) => a.shape(),
            Borrowed::U16(a) => a.shape(),
            Borrowed::Torch(t) => return t.shape(),
        };
        dims.iter().map(|&d| d as u64).collect()
    }

    fn bytes(&self) -> PyResult<&[u8]> {
        // `as_slice` fails for non-contiguous arrays; the Python layer makes
        // them contiguous first.
        Ok(match self {
            Borrowed::F32(a) => bytemuck::cast_slice(a.as_slice()?),
            Borrowed::F16(a) => bytemuck::cast_slice(a.as_slice()?),
            Borrowed::U16(a) => bytemuck::cast_slice(a.as_slice()?),
            Borrowed::Torch(t) => t.bytes(),
        })
    }
}

/// The latents of a write, borrowed from the caller's arrays.
type LatentArgs<'py> = Vec<(String, String, Bound<'py, PyAny>)>;

/// Runs `f` on the [`Contents`] built from a write's arguments (borrowing
/// the arrays and the image, never copying them).
#[allow(clippy::too_many_arguments)]
fn with_contents<'py, T>(
    py: Python<'py>,
    latents: &LatentArgs<'py>,
    image: Option<&[u8]>,
    image_extra_json: &str,
    metadata_json: &str,
    environment_json: Option<&str>,
    f: impl FnOnce(&Contents<'_>) -> PyResult<T>,
) -> PyResult<T> {
    let mut borrowed = Vec::with_capacity(latents.len());
    for (name, dtype, array) in latents {
        let dtype = DType::from_name(dtype).map_err(|e| to_pyerr(py, e))?;
        borrowed.push((name, dtype, Borrowed::new(py, name, dtype, array)?));
    }
    let mut tensors = Vec::with_capacity(borrowed.len());
    for (name, dtype, b) in &borrowed {
        let t = TensorRef::new(*dtype, b.shape(), b.bytes()?).map_err(|e| to_pyerr(py, e))?;
        tensors.push(((*name).clone(), t));
    }
    let environment = match environment_json {
        Some(text) => Some(Value::Object(parse_json_object(py, text, "environment")?)),
        None => None,
    };
    let contents = Contents {
        latents: tensors,
        image,
        image_extra: parse_json_object(py, image_extra_json, "image_extra")?,
        metadata: parse_json_object(py, metadata_json, "metadata")?,
        environment,
    };
    f(&contents)
}

/// `_write(path, latents, image, image_extra_json, metadata_json,
/// environment_json, codec, overwrite, fsync) -> int`. `latents` is a list of
/// `(name, dtype, array)` with array float32 / float16 / uint16 (bfloat16 bits),
/// or in the torch build also a torch tensor of that dtype.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (path, latents, image, image_extra_json, metadata_json, environment_json, codec, overwrite, fsync))]
fn _write(
    py: Python<'_>,
    path: PathBuf,
    latents: LatentArgs<'_>,
    image: Option<&[u8]>,
    image_extra_json: &str,
    metadata_json: &str,
    environment_json: Option<&str>,
    codec: &str,
    overwrite: bool,
    fsync: bool,
) -> PyResult<u64> {
    let codec = Codec::from_name(codec).map_err(|e| to_pyerr(py, e))?;
    let options = WriteOptions {
        codec,
        overwrite,
        fsync,
    };
    with_contents(
        py,
        &latents,
        image,
        image_extra_json,
        metadata_json,
        environment_json,
        |contents| detach_guarded(py, || format::write_file(&path, contents, options)),
    )
}

/// `_write_bytes(latents, image, image_extra_json, metadata_json,
/// environment_json, codec) -> bytes`: the file `_write` would write, as a
/// bytes object (filled straight from the encoded pieces: one copy).
#[pyfunction]
#[pyo3(signature = (latents, image, image_extra_json, metadata_json, environment_json, codec))]
fn _write_bytes<'py>(
    py: Python<'py>,
    latents: LatentArgs<'py>,
    image: Option<&[u8]>,
    image_extra_json: &str,
    metadata_json: &str,
    environment_json: Option<&str>,
    codec: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let codec = Codec::from_name(codec).map_err(|e| to_pyerr(py, e))?;
    with_contents(
        py,
        &latents,
        image,
        image_extra_json,
        metadata_json,
        environment_json,
        |contents| {
            let file = detach_guarded(py, || format::writer::encode_file(contents, codec))?;
            let len = usize::try_from(file.len())
                .map_err(|_| to_pyerr(py, Error::Unsupported("the file does not fit in memory".into())))?;
            PyBytes::new_with(py, len, |buf| {
                py.detach(|| file.copy_to(buf));
                Ok(())
            })
        },
    )
}

/// An array allocated for a latent, decoded into without the GIL: numpy, or
/// in the torch build a torch tensor when `as_torch` is asked for.
enum Output<'py> {
    F32(Bound<'py, PyArrayDyn<f32>>),
    F16(Bound<'py, PyArrayDyn<half::f16>>),
    U16(Bound<'py, PyArrayDyn<u16>>),
    Torch(torch::TorchOutput),
}

impl<'py> Output<'py> {
    fn new(py: Python<'py>, dtype: DType, shape: &[usize], as_torch: bool) -> PyResult<Self> {
        if as_torch {
            return torch::TorchOutput::empty(dtype, shape)
                .map(Output::Torch)
                .map_err(|e| to_pyerr(py, e));
        }
        Ok(match dtype {
            DType::F32 => Output::F32(empty(py, shape)),
            DType::F16 => Output::F16(empty(py, shape)),
            DType::BF16 => Output::U16(empty(py, shape)),
        })
    }

    /// Write access while the GIL is released.
    fn writer<'a>(&'a mut self) -> OutputMut<'py, 'a> {
        match self {
            Output::F32(a) => OutputMut::F32(a.readwrite()),
            Output::F16(a) => OutputMut::F16(a.readwrite()),
            Output::U16(a) => OutputMut::U16(a.readwrite()),
            Output::Torch(t) => OutputMut::Torch(t),
        }
    }

    fn into_py(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(match self {
            Output::F32(a) => a.into_any(),
            Output::F16(a) => a.into_any(),
            Output::U16(a) => a.into_any(),
            Output::Torch(t) => t.into_py(py)?,
        })
    }
}

fn empty<'py, T: Element>(py: Python<'py>, shape: &[usize]) -> Bound<'py, PyArrayDyn<T>> {
    // SAFETY: the array is fully written by `decode_latent_into` before it
    // is handed to Python; on error it is dropped unseen.
    unsafe { PyArrayDyn::<T>::new(py, shape, false) }
}

/// `_read(path, verify, names, with_image, as_torch) -> dict` with keys
/// `latents` (list of (name, dtype, array)), `image` (bytes or None),
/// `manifest`, `environment` (JSON text or None), `metadata` (JSON text),
/// `header` (dict). `as_torch` (torch build only) decodes into torch tensors.
#[pyfunction]
#[pyo3(signature = (path, verify=true, names=None, with_image=true, as_torch=false, max_decoded_bytes=None))]
fn _read<'py>(
    py: Python<'py>,
    path: PathBuf,
    verify: bool,
    names: Option<Vec<String>>,
    with_image: bool,
    as_torch: bool,
    max_decoded_bytes: Option<u64>,
) -> PyResult<Bound<'py, PyDict>> {
    let options = read_options(py, verify, max_decoded_bytes)?;
    // Header and manifest only; each chunk is read from the file as it decodes.
    let archive = detach_guarded(py, || Archive::open(&path, options))?;
    read_impl(py, &archive, names, with_image, as_torch)
}

/// `_read_bytes(data, verify, names, with_image, as_torch, max_decoded_bytes)
/// -> dict`: [`_read`] of a file held in a bytes object (read in place).
#[pyfunction]
#[pyo3(signature = (data, verify=true, names=None, with_image=true, as_torch=false, max_decoded_bytes=None))]
fn _read_bytes<'py>(
    py: Python<'py>,
    data: &[u8],
    verify: bool,
    names: Option<Vec<String>>,
    with_image: bool,
    as_torch: bool,
    max_decoded_bytes: Option<u64>,
) -> PyResult<Bound<'py, PyDict>> {
    let options = read_options(py, verify, max_decoded_bytes)?;
    let archive = detach_guarded(py, || Archive::parse(data, options))?;
    read_impl(py, &archive, names, with_image, as_torch)
}

fn read_impl<'py>(
    py: Python<'py>,
    archive: &Archive<'_>,
    names: Option<Vec<String>>,
    with_image: bool,
    as_torch: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let records: Vec<_> = match &names {
        None => archive.latent_records().collect(),
        Some(names) => names
            .iter()
            .map(|n| {
                archive.latent_record(n).ok_or_else(|| {
                    let known: Vec<String> = archive.latent_records().map(|r| r.latent_name()).collect();
                    to_pyerr(
                        py,
                        Error::invalid(format!("no latent named {n:?}; the file has {known:?}")),
                    )
                })
            })
            .collect::<PyResult<_>>()?,
    };
    // The absolute bound, before any output is allocated.
    archive
        .check_decoded_size(records.iter().copied(), with_image, true)
        .map_err(|e| to_pyerr(py, e))?;
    let mut outputs = Vec::with_capacity(records.len());
    for rec in &records {
        let (shape, dtype) = rec.check_latent_size().map_err(|e| to_pyerr(py, e))?;
        let shape: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        outputs.push(Output::new(py, dtype, &shape, as_torch)?);
    }
    let (image, environment) = {
        let mut guards: Vec<_> = outputs.iter_mut().map(Output::writer).collect();
        let mut outs: Vec<&mut [u8]> = Vec::with_capacity(guards.len());
        for g in guards.iter_mut() {
            outs.push(g.bytes_mut()?);
        }
        // The image (typically most of the bytes to hash) is verified on a
        // second thread while the tensors are decoded on this one.
        detach_guarded(py, || {
            std::thread::scope(|scope| {
                let big_image = with_image && archive.image_size().is_some_and(|n| n > 256 * 1024);
                let image_job = big_image.then(|| scope.spawn(|| archive.image()));
                let latents = records
                    .iter()
                    .zip(outs)
                    .try_for_each(|(rec, out)| archive.decode_latent_into(rec, out));
                let image = match image_job {
                    Some(job) => job.join().unwrap_or_else(|_| {
                        Err(Error::Internal("the image decoder thread panicked".into()))
                    })?,
                    None if with_image => archive.image()?,
                    None => None,
                };
                latents?;
                Ok((image, archive.environment()?))
            })
        })?
    };

    let out = PyDict::new(py);
    let latents = PyList::empty(py);
    for (rec, output) in records.iter().zip(outputs) {
        let (_, dtype) = rec.check_latent_size().map_err(|e| to_pyerr(py, e))?;
        latents.append((rec.latent_name(), dtype.name(), output.into_py(py)?))?;
    }
    out.set_item("latents", latents)?;
    out.set_item("image", image.map(|b| PyBytes::new(py, &b)))?;
    out.set_item("manifest", archive.manifest().json().to_string())?;
    out.set_item(
        "metadata",
        Value::Object(archive.manifest().metadata()).to_string(),
    )?;
    out.set_item("environment", environment.map(|v| v.to_string()))?;
    out.set_item("header", header_dict(py, archive)?)?;
    Ok(out)
}

/// Write access to an [`Output`] while the GIL is released.
enum OutputMut<'py, 'a> {
    F32(numpy::PyReadwriteArrayDyn<'py, f32>),
    F16(numpy::PyReadwriteArrayDyn<'py, half::f16>),
    U16(numpy::PyReadwriteArrayDyn<'py, u16>),
    Torch(&'a mut torch::TorchOutput),
}

impl OutputMut<'_, '_> {
    fn bytes_mut(&mut self) -> PyResult<&mut [u8]> {
        Ok(match self {
            OutputMut::F32(a) => bytemuck::cast_slice_mut(a.as_slice_mut()?),
            OutputMut::F16(a) => bytemuck::cast_slice_mut(a.as_slice_mut()?),
            OutputMut::U16(a) => bytemuck::cast_slice_mut(a.as_slice_mut()?),
            OutputMut::Torch(t) => t.bytes_mut(),
        })
    }
}

fn header_dict<'py>(py: Python<'py>, archive: &Archive<'_>) -> PyResult<Bound<'py, PyDict>> {
    let h = &archive.header();
    let d = PyDict::new(py);
    d.set_item("magic", h.flavor.magic_str())?;
    d.set_item("version_major", h.version_major)?;
    d.set_item("version_minor", h.version_minor)?;
    d.set_item("flags", h.flags)?;
    d.set_item("chunk_table_offset", h.meta_offset)?;
    d.set_item("chunk_table_size", h.meta_size)?;
    d.set_item("chunk_count", h.chunk_count)?;
    d.set_item("file_size", h.file_size)?;
    Ok(d)
}

/// `_verify(path, max_decoded_bytes=None) -> None`: decodes everything and
/// checks every hash.
#[pyfunction]
#[pyo3(signature = (path, max_decoded_bytes=None))]
fn _verify(py: Python<'_>, path: PathBuf, max_decoded_bytes: Option<u64>) -> PyResult<()> {
    let options = read_options(py, true, max_decoded_bytes)?;
    detach_guarded(py, || Archive::open(&path, options)?.verify_all())
}

/// Read options: the caller's limit, else `$RAIIAF_MAX_DECODED_BYTES`, else 1 GiB.
pub(crate) fn read_options(
    py: Python<'_>,
    verify: bool,
    max_decoded_bytes: Option<u64>,
) -> PyResult<ReadOptions> {
    let max_decoded_bytes = match max_decoded_bytes {
        Some(n) => n,
        None => format::max_decoded_bytes_from_env().map_err(|e| to_pyerr(py, e))?,
    };
    Ok(ReadOptions {
        verify_hashes: verify,
        max_decoded_bytes,
    })
}

/// `_environment_document(components) -> str`: the ENVC JSON for
/// `(component_id, canonical_string)` pairs, digests filled in.
#[pyfunction]
fn _environment_document(components: Vec<(String, String)>) -> String {
    format::envc::document(components.iter().map(|(a, b)| (a.as_str(), b.as_str()))).to_string()
}

/// `_convert_f32(array, target) -> array`: float32 to float16 (or bfloat16
/// bits as uint16), refusing values that would overflow to infinity.
#[pyfunction]
fn _convert_f32<'py>(
    py: Python<'py>,
    array: PyReadonlyArrayDyn<'py, f32>,
    target: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let target = DType::from_name(target).map_err(|e| to_pyerr(py, e))?;
    let shape = array.shape().to_vec();
    let src: &[u8] = bytemuck::cast_slice(array.as_slice()?);
    let out = detach_guarded(py, || raiiaf::tensor::convert_f32(src, target))?;
    Ok(match target {
        DType::F16 => {
            let values: Vec<half::f16> = bytemuck::pod_collect_to_vec(&out);
            numpy::PyArray1::from_vec(py, values).reshape(shape)?.into_any()
        }
        _ => {
            let words: Vec<u16> = bytemuck::pod_collect_to_vec(&out);
            numpy::PyArray1::from_vec(py, words).reshape(shape)?.into_any()
        }
    })
}

/// `_environment(host_facts_json) -> str`: the ENVC document (JSON) for
/// this machine (collected once per process) and the host's facts.
#[pyfunction]
fn _environment(py: Python<'_>, host_facts_json: &str) -> PyResult<String> {
    let facts = parse_json_object(py, host_facts_json, "host facts")?;
    Ok(py.detach(|| env::document(env::system(), &facts)).to_string())
}

/// `_hardware_info(host_facts_json, machine_name) -> str`: the reference
/// schema's `hardware_info` object (JSON).
#[pyfunction]
#[pyo3(signature = (host_facts_json, machine_name=None))]
fn _hardware_info(py: Python<'_>, host_facts_json: &str, machine_name: Option<&str>) -> PyResult<String> {
    let facts = parse_json_object(py, host_facts_json, "host facts")?;
    Ok(py
        .detach(|| env::hardware_info(env::system(), &facts, machine_name))
        .to_string())
}

/// `_drift(stored_json, current_json) -> list[(component, kind, stored,
/// current, affects_pixels)]`.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn _drift(
    py: Python<'_>,
    stored_json: &str,
    current_json: &str,
) -> PyResult<Vec<(String, &'static str, Option<String>, Option<String>, bool)>> {
    let stored = Value::Object(parse_json_object(py, stored_json, "stored environment")?);
    let current = Value::Object(parse_json_object(py, current_json, "current environment")?);
    Ok(env::compare(&stored, &current)
        .into_iter()
        .map(|d| (d.component, d.kind.name(), d.stored, d.current, d.affects_pixels))
        .collect())
}

/// `_fingerprint(path, cache_dir) -> (sha256, size, cached)`.
#[pyfunction]
#[pyo3(signature = (path, cache_dir=None))]
fn _fingerprint(py: Python<'_>, path: PathBuf, cache_dir: Option<PathBuf>) -> PyResult<(String, u64, bool)> {
    let fp = detach_guarded(py, || env::fingerprint(&path, cache_dir.as_deref()))?;
    Ok((fp.sha256, fp.size, fp.cached))
}

/// `_encode_png(array, text_pairs, level) -> bytes`: a C-contiguous
/// (H, W, C) float32 or uint8 array as a PNG file; float32 is converted to
/// bytes as ComfyUI's SaveImage does, text pairs become tEXt/iTXt chunks.
#[pyfunction]
fn _encode_png<'py>(
    py: Python<'py>,
    array: Bound<'py, PyAny>,
    text_pairs: Vec<(String, String)>,
    level: &str,
) -> PyResult<Bound<'py, PyBytes>> {
    let level = PngLevel::from_name(level).map_err(|e| to_pyerr(py, e))?;
    let (floats, bytes);
    let (shape, pixels) = if let Ok(a) = array.extract::<PyReadonlyArrayDyn<'py, f32>>() {
        floats = a;
        (floats.shape(), Pixels::F32(floats.as_slice()?))
    } else if let Ok(a) = array.extract::<PyReadonlyArrayDyn<'py, u8>>() {
        bytes = a;
        (bytes.shape(), Pixels::U8(bytes.as_slice()?))
    } else {
        return Err(to_pyerr(
            py,
            Error::invalid("image must be a numpy array of float32 or uint8"),
        ));
    };
    let &[height, width, channels] = shape else {
        return Err(to_pyerr(
            py,
            Error::invalid(format!("image must have shape (H, W, C), not {shape:?}")),
        ));
    };
    let png = detach_guarded(py, || {
        image::encode_png(pixels, width, height, channels, &text_pairs, level)
    })?;
    Ok(PyBytes::new(py, &png))
}

/// `_cli_main(argv, host_facts_json) -> int`: the `raiiaf` command (argv
/// without the program name); the facts complete `raiiaf env` / `drift`.
#[pyfunction]
#[pyo3(signature = (argv, host_facts_json=None))]
fn _cli_main(py: Python<'_>, argv: Vec<String>, host_facts_json: Option<&str>) -> PyResult<i32> {
    let facts = match host_facts_json {
        Some(text) => parse_json_object(py, text, "host facts")?,
        None => Map::new(),
    };
    Ok(py.detach(|| raiiaf_cli::main_with(std::iter::once("raiiaf".to_owned()).chain(argv), &facts)))
}

/// `_codecs() -> list[(name, api_name, aliases, summary)]`: the registered
/// tensor codecs (src/format/codecs.rs), in order.
#[pyfunction]
fn _codecs() -> Vec<(&'static str, &'static str, Vec<&'static str>, &'static str)> {
    format::codecs::all()
        .iter()
        .map(|c| (c.name(), c.api_name(), c.aliases().to_vec(), c.summary()))
        .collect()
}

/// `_test_panic(message)`: panics inside the core, for the tests of the
/// panic-to-InternalError mapping (there is no way to make the core panic
/// otherwise, which is the point).
#[pyfunction]
fn _test_panic(py: Python<'_>, message: String) -> PyResult<()> {
    detach_guarded(py, || -> Result<(), Error> { panic!("{message}") })
}

#[pymodule]
fn _raiiaf_rs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    raiiaf_cli::keep_freed_memory();
    errors::register(m)?;
    // The torch this build is linked against (the torch build), or None.
    m.add("LINKED_TORCH", torch::LINKED_TORCH)?;
    m.add_function(wrap_pyfunction!(_write, m)?)?;
    m.add_function(wrap_pyfunction!(_read, m)?)?;
    m.add_function(wrap_pyfunction!(_read_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(_write_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(_verify, m)?)?;
    m.add_function(wrap_pyfunction!(_environment_document, m)?)?;
    m.add_function(wrap_pyfunction!(_convert_f32, m)?)?;
    m.add_function(wrap_pyfunction!(_environment, m)?)?;
    m.add_function(wrap_pyfunction!(_hardware_info, m)?)?;
    m.add_function(wrap_pyfunction!(_drift, m)?)?;
    m.add_function(wrap_pyfunction!(_fingerprint, m)?)?;
    m.add_function(wrap_pyfunction!(_cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(_encode_png, m)?)?;
    m.add_function(wrap_pyfunction!(_test_panic, m)?)?;
    m.add_function(wrap_pyfunction!(_codecs, m)?)?;
    m.add_class::<catalog::CatalogTable>()?;
    m.add_function(wrap_pyfunction!(catalog::_catalog, m)?)?;
    m.add_function(wrap_pyfunction!(catalog::_index, m)?)?;
    m.add_function(wrap_pyfunction!(catalog::_catalog_files, m)?)?;
    m.add_function(wrap_pyfunction!(catalog::_catalog_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(catalog::_find_files, m)?)?;
    m.add_function(wrap_pyfunction!(catalog::_catalog_environment, m)?)?;
    Ok(())
}

//! The exception classes of `raiiaf_rs.errors`, created here once per
//! process and held by reference: an error maps to its class by a `match`
//! on [`Error`], never by looking a name up at run time. Each instance
//! carries the error's fields as attributes (`chunk`, `expected`, `actual`,
//! `declared`, `limit`; `None` where the error has no such field).
//!
//! The classes are plain Python classes built with `type(...)`, because
//! two of them have two bases (`InvalidArgumentError` is also a
//! `ValueError`, `TargetExistsError` a `FileExistsError`), which
//! `create_exception!` cannot express.

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};

use raiiaf::error::Error;

/// The attributes every `RaiiafError` has (`None` unless the error sets them).
pub const FIELDS: [&str; 5] = ["chunk", "expected", "actual", "declared", "limit"];

pub struct Classes {
    pub base: Py<PyType>,
    pub corrupt: Py<PyType>,
    pub limit: Py<PyType>,
    pub decoded_limit: Py<PyType>,
    pub hash: Py<PyType>,
    pub unsupported: Py<PyType>,
    pub invalid: Py<PyType>,
    pub exists: Py<PyType>,
    pub internal: Py<PyType>,
}

static CLASSES: PyOnceLock<Classes> = PyOnceLock::new();

fn make(py: Python<'_>, name: &str, bases: Vec<Bound<'_, PyAny>>, doc: &str) -> PyResult<Py<PyType>> {
    let namespace = PyDict::new(py);
    namespace.set_item("__doc__", doc)?;
    namespace.set_item("__module__", "raiiaf_rs.errors")?;
    namespace.set_item("__qualname__", name)?;
    let bases = PyTuple::new(py, bases)?;
    let class = py
        .get_type::<PyType>()
        .call1((name, bases, namespace))?
        .cast_into::<PyType>()?;
    Ok(class.unbind())
}

/// The classes, created on first use.
pub fn classes(py: Python<'_>) -> PyResult<&'static Classes> {
    CLASSES.get_or_try_init(py, || {
        let exception = py.get_type::<pyo3::exceptions::PyException>().into_any();
        let base = make(
            py,
            "RaiiafError",
            vec![exception],
            "Base class of every error raised by raiiaf_rs. Attributes (None where they do not \
             apply): chunk (the chunk or file part concerned), expected, actual (digests), \
             declared (a size the file declares), limit (the limit it exceeds).",
        )?;
        // Class-level defaults of the structured fields.
        for field in FIELDS {
            base.bind(py).setattr(field, py.None())?;
        }
        let b = |c: &Py<PyType>| c.bind(py).clone().into_any();
        let corrupt = make(
            py,
            "CorruptFileError",
            vec![b(&base)],
            "The file is not a readable .raiiaf: truncated, bad magic or manifest, undecodable chunk.",
        )?;
        let limit = make(
            py,
            "LimitExceededError",
            vec![b(&corrupt)],
            "The file declares sizes its bytes cannot justify (a decompression bomb), or more \
             than max_decoded_bytes: see `declared` and `limit`.",
        )?;
        let decoded_limit = make(
            py,
            "DecodedSizeLimitError",
            vec![b(&limit)],
            "The read would decode more than the caller's max_decoded_bytes (`limit`): the file \
             declares `declared` bytes for what was asked. Unlike its base class, the sizes are \
             plausible; the file may be fine, and reading it with a higher limit may succeed.",
        )?;
        let hash = make(
            py,
            "HashMismatchError",
            vec![b(&corrupt)],
            "A chunk decoded, but its SHA-256 differs from the manifest's (`expected`, `actual`): \
             the file was altered.",
        )?;
        let unsupported = make(
            py,
            "UnsupportedError",
            vec![b(&base)],
            "A newer format version or codec, or a request this build cannot serve.",
        )?;
        let invalid = make(
            py,
            "InvalidArgumentError",
            vec![
                b(&base),
                py.get_type::<pyo3::exceptions::PyValueError>().into_any(),
            ],
            "A bad argument: unknown codec or dtype, wrong shape, lossy conversion refused, ...",
        )?;
        let exists = make(
            py,
            "TargetExistsError",
            vec![
                b(&base),
                py.get_type::<pyo3::exceptions::PyFileExistsError>().into_any(),
            ],
            "The output file exists and ``overwrite=True`` was not given.",
        )?;
        let internal = make(
            py,
            "InternalError",
            vec![b(&base)],
            "A bug in raiiaf-rs (a panic, a compressor failure), never the input's fault; \
             please report it.",
        )?;
        Ok(Classes {
            base,
            corrupt,
            limit,
            decoded_limit,
            hash,
            unsupported,
            invalid,
            exists,
            internal,
        })
    })
}

/// Adds the classes to the native module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let c = classes(py)?;
    for class in [
        &c.base,
        &c.corrupt,
        &c.limit,
        &c.decoded_limit,
        &c.hash,
        &c.unsupported,
        &c.invalid,
        &c.exists,
        &c.internal,
    ] {
        let class = class.bind(py);
        m.add(class.name()?, class)?;
    }
    Ok(())
}

/// The Python exception for a crate error, with its fields set.
pub fn to_pyerr(py: Python<'_>, err: Error) -> PyErr {
    match build(py, &err) {
        Ok(e) => e,
        Err(e) => e,
    }
}

fn build(py: Python<'_>, err: &Error) -> PyResult<PyErr> {
    let c = classes(py)?;
    let none = || py.None();
    let s = |v: &str| v.into_pyobject(py).map(|o| o.into_any().unbind());
    let n = |v: u64| v.into_pyobject(py).map(|o| o.into_any().unbind());
    // (class, chunk, expected, actual, declared, limit)
    let (class, chunk, expected, actual, declared, limit) = match err {
        Error::Io { path, source } => {
            let errno = source.raw_os_error().unwrap_or(0);
            // OSError(errno, strerror, filename) becomes FileNotFoundError,
            // PermissionError, ... according to errno.
            return Ok(PyOSError::new_err((
                errno,
                source.to_string(),
                path.display().to_string(),
            )));
        }
        Error::Truncated {
            what, end, file_len, ..
        } => (&c.corrupt, s(what)?, none(), none(), n(*end)?, n(*file_len)?),
        Error::BadMagic { .. } | Error::Manifest(_) => (&c.corrupt, none(), none(), none(), none(), none()),
        Error::CorruptChunk { chunk, .. } => (&c.corrupt, s(chunk)?, none(), none(), none(), none()),
        Error::HashMismatch {
            chunk,
            expected,
            actual,
        } => (&c.hash, s(chunk)?, s(expected)?, s(actual)?, none(), none()),
        Error::LimitExceeded {
            what,
            declared,
            limit,
        } => (&c.limit, s(what)?, none(), none(), n(*declared)?, n(*limit)?),
        Error::DecodedSizeLimit {
            what,
            declared,
            limit,
        } => (
            &c.decoded_limit,
            s(what)?,
            none(),
            none(),
            n(*declared)?,
            n(*limit)?,
        ),
        Error::UnsupportedVersion { .. } | Error::Unsupported(_) => {
            (&c.unsupported, none(), none(), none(), none(), none())
        }
        Error::InvalidArgument(_) => (&c.invalid, none(), none(), none(), none(), none()),
        Error::AlreadyExists(path) => (
            &c.exists,
            s(&path.display().to_string())?,
            none(),
            none(),
            none(),
            none(),
        ),
        Error::Internal(_) => (&c.internal, none(), none(), none(), none(), none()),
    };
    let instance = class.bind(py).call1((err.to_string(),))?;
    for (field, value) in FIELDS.into_iter().zip([chunk, expected, actual, declared, limit]) {
        if !value.is_none(py) {
            instance.setattr(field, value)?;
        }
    }
    Ok(PyErr::from_value(instance))
}

/// Runs `f` without the GIL; a panic inside becomes [`Error::Internal`]
/// (InternalError), never another error class or a `PanicException`.
pub fn detach_guarded<T: Send>(py: Python<'_>, f: impl FnOnce() -> Result<T, Error> + Send) -> PyResult<T> {
    py.detach(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(Error::Internal(format!("panic: {what}")))
        })
    })
    .map_err(|e| to_pyerr(py, e))
}

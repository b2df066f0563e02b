//! The environment that produced a file: capture (OS, CPU, RAM, GPUs, plus
//! facts the host passes in), ENVC components, drift against the current
//! environment, and model-file fingerprints.

pub mod capture;
pub mod components;
pub mod drift;
pub mod fingerprint;

pub use capture::{system, Gpu, SystemFacts};
pub use components::{components, document, hardware_info, HostFacts};
pub use drift::{compare, Drift, DriftKind};
pub use fingerprint::{fingerprint, Fingerprint};

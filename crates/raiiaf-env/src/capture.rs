//! What the machine is: OS, CPU, RAM (sysinfo) and NVIDIA GPUs (NVML).
//! Collected once per process: none of it changes while a UI runs, and a
//! save must not pay for it again.

use std::sync::OnceLock;

use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

/// One NVIDIA GPU as NVML reports it. Serial numbers and UUIDs are
/// deliberately not read: a `.raiiaf` is meant to be shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpu {
    pub name: String,
    pub driver: String,
    /// CUDA version the driver supports, e.g. `12.4`.
    pub cuda_driver: Option<String>,
    pub memory_mb: u64,
    /// e.g. `8.9`.
    pub compute_capability: Option<String>,
}

/// Facts about the machine that hold for the life of the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemFacts {
    /// `platform.system()` spelling: `Linux`, `Darwin`, `Windows`.
    pub os_family: String,
    /// Kernel release (`platform.release()` on Linux): `6.8.0-48-generic`.
    pub os_release: String,
    /// Distribution or product name and version: `Debian GNU/Linux 12`.
    pub os_name: String,
    pub cpu_model: String,
    pub physical_cores: Option<usize>,
    pub logical_cores: usize,
    pub ram_bytes: u64,
    pub gpus: Vec<Gpu>,
}

/// The machine's facts, collected on first use and cached.
pub fn system() -> &'static SystemFacts {
    static FACTS: OnceLock<SystemFacts> = OnceLock::new();
    FACTS.get_or_init(collect)
}

fn os_family() -> String {
    match std::env::consts::OS {
        "linux" => "Linux".into(),
        "macos" => "Darwin".into(),
        "windows" => "Windows".into(),
        other => other.into(),
    }
}

fn collect() -> SystemFacts {
    let refresh = RefreshKind::nothing()
        .with_cpu(CpuRefreshKind::nothing())
        .with_memory(MemoryRefreshKind::nothing().with_ram());
    let (cpu_model, logical_cores, ram_bytes) = match System::new_with_specifics(refresh) {
        Ok(sys) => (
            sys.cpus()
                .first()
                .map(|c| c.brand().trim().to_owned())
                .unwrap_or_default(),
            sys.cpus().len(),
            sys.total_memory(),
        ),
        Err(_) => (String::new(), 0, 0),
    };
    let os_name = match (System::name(), System::os_version()) {
        (Ok(n), Ok(v)) => format!("{n} {v}"),
        (Ok(n), Err(_)) => n,
        _ => String::new(),
    };
    SystemFacts {
        os_family: os_family(),
        os_release: System::kernel_version().unwrap_or_default(),
        os_name,
        cpu_model,
        physical_cores: System::physical_core_count().ok(),
        logical_cores: logical_cores.max(std::thread::available_parallelism().map_or(0, |n| n.get())),
        ram_bytes,
        gpus: nvidia_gpus(),
    }
}

/// NVIDIA GPUs via NVML. Without the NVML library (CPU-only machines, AMD,
/// macOS) loading it fails at once and the list is empty: never an error.
fn nvidia_gpus() -> Vec<Gpu> {
    use nvml_wrapper::{cuda_driver_version_major, cuda_driver_version_minor, Nvml};
    let Ok(nvml) = Nvml::init() else {
        return Vec::new();
    };
    let driver = nvml.sys_driver_version().unwrap_or_default();
    let cuda_driver = nvml.sys_cuda_driver_version().ok().map(|v| {
        format!(
            "{}.{}",
            cuda_driver_version_major(v),
            cuda_driver_version_minor(v)
        )
    });
    let count = nvml.device_count().unwrap_or(0);
    (0..count)
        .filter_map(|i| nvml.device_by_index(i).ok())
        .map(|d| Gpu {
            name: d.name().unwrap_or_default(),
            driver: driver.clone(),
            cuda_driver: cuda_driver.clone(),
            memory_mb: d.memory_info().map_or(0, |m| m.total / (1 << 20)),
            compute_capability: d
                .cuda_compute_capability()
                .ok()
                .map(|c| format!("{}.{}", c.major, c.minor)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_this_machine_and_caches_it() {
        let t = std::time::Instant::now();
        let first = system();
        let cold = t.elapsed();
        assert!(!first.os_family.is_empty());
        assert!(first.logical_cores >= 1);
        assert!(first.ram_bytes > 0);
        #[cfg(target_os = "linux")]
        assert!(!first.os_release.is_empty());
        let t = std::time::Instant::now();
        let again = system();
        assert!(std::ptr::eq(first, again));
        assert!(t.elapsed() < cold.max(std::time::Duration::from_micros(50)));
    }

    #[test]
    fn no_nvml_means_no_gpus_not_an_error() {
        // On machines without the NVIDIA driver (CI), NVML cannot load.
        if !std::path::Path::new("/proc/driver/nvidia").exists() {
            assert!(system().gpus.is_empty());
        }
    }
}

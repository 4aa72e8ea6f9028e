//! The one place where the compute device is chosen. Everything else takes a `&Device`.

use anyhow::{Result, bail};
use burn::prelude::Device;

/// Backends the trainer can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// burn's flex backend on the CPU (always available; the default).
    Flex,
    /// burn's wgpu backend: Vulkan, Metal or DirectX natively (build with `--features wgpu`).
    Wgpu,
    /// burn's CUDA backend (build with `--features cuda`, after `tools/cuda_llvm.sh` where
    /// GitHub cannot be reached: the build links LLVM 23.1, which it would download there).
    Cuda,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Flex => "flex",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        })
    }
}

/// The inference device of a backend; `.autodiff()` on it gives the training device.
pub fn select(backend: Backend) -> Result<Device> {
    match backend {
        Backend::Flex => Ok(Device::flex()),
        Backend::Wgpu => wgpu_device(),
        Backend::Cuda => cuda_device(),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Result<Device> {
    Ok(Device::wgpu(burn::prelude::DeviceKind::DefaultDevice))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device() -> Result<Device> {
    bail!("this `t2i` was built without the wgpu backend: rebuild with `--features wgpu`")
}

#[cfg(feature = "cuda")]
fn cuda_device() -> Result<Device> {
    // burn's CUDA runtime panics when the driver library is missing: look for it first.
    let found = ["libcuda.so.1", "libcuda.so"].iter().any(|name| {
        [
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib64",
            "/usr/local/nvidia/lib64",
            "/usr/lib/wsl/lib",
        ]
        .iter()
        .any(|dir| std::path::Path::new(dir).join(name).exists())
    });
    if !found {
        bail!("no NVIDIA driver (libcuda.so) found on this machine: use --backend wgpu or flex");
    }
    Ok(Device::cuda(0))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device() -> Result<Device> {
    bail!(
        "this `t2i` was built without the CUDA backend: rebuild with `--features cuda` (run tools/cuda_llvm.sh first where GitHub cannot be reached)"
    )
}

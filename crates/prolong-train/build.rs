//! With the `cuda` feature: compiles `kernels/*.cu` to PTX (loaded by `ops::cuda` at run
//! time) with nvcc from `$CUDA_ROOT/bin` or the `PATH`. Without the feature it does
//! nothing, so the CPU build needs no CUDA toolkit.
//!
//! The PTX targets `compute_$CUDA_COMPUTE_CAP` (e.g. 90 for H100/H200), or the first GPU
//! `nvidia-smi` reports; PTX is compiled on for any newer GPU by the driver.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=kernels");
    println!("cargo::rerun-if-env-changed=CUDA_COMPUTE_CAP");
    println!("cargo::rerun-if-env-changed=CUDA_ROOT");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let arch = compute_cap();
    let nvcc = nvcc();
    let mut sources: Vec<PathBuf> = std::fs::read_dir("kernels")
        .expect("kernels/ beside build.rs")
        .map(|e| e.expect("kernels/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cu"))
        .collect();
    sources.sort();
    for src in &sources {
        let ptx = out.join(src.with_extension("ptx").file_name().expect("a file"));
        compile(&nvcc, src, &ptx, &arch);
    }
}

fn compile(nvcc: &Path, src: &Path, ptx: &Path, arch: &str) {
    let status = Command::new(nvcc)
        .args(["--ptx", "-O3", "-std=c++17", "--use_fast_math"])
        .arg(format!("-arch=compute_{arch}"))
        .arg("-o")
        .arg(ptx)
        .arg(src)
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", nvcc.display()));
    assert!(status.success(), "nvcc failed on {}", src.display());
}

fn nvcc() -> PathBuf {
    match std::env::var_os("CUDA_ROOT") {
        Some(root) => Path::new(&root).join("bin/nvcc"),
        None => PathBuf::from("nvcc"),
    }
}

fn compute_cap() -> String {
    if let Ok(cap) = std::env::var("CUDA_COMPUTE_CAP") {
        return cap.replace('.', "");
    }
    let smi = Command::new("nvidia-smi")
        .args(["--query-gpu=compute_cap", "--format=csv,noheader"])
        .output();
    match smi {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .map(|l| l.trim().replace('.', ""))
            .filter(|c| !c.is_empty())
            .expect("nvidia-smi printed no compute capability"),
        _ => panic!("no GPU to ask: set CUDA_COMPUTE_CAP (e.g. 90 for H100/H200)"),
    }
}

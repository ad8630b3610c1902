//! Builds the kernel's own `scripts/kallsyms` from the installed Debian source tarball, for the
//! differential test and the benchmark. Only `scripts/kallsyms.c` and the header it includes
//! are unpacked, into a cache directory keyed by the tarball's size.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Path of the compiled tool of `version` ("6.1" or "6.12"), building it under `cache` on
/// first use; `Err` carries the notice to print when the tarball or gcc is missing.
pub fn kernel_tool(version: &str, cache: &Path) -> Result<PathBuf, String> {
    let tarball = PathBuf::from(format!("/usr/src/linux-source-{version}.tar.xz"));
    let meta =
        fs::metadata(&tarball).map_err(|_| format!("{} not found, skipping", tarball.display()))?;
    if Command::new("gcc").arg("--version").output().is_err() {
        return Err("gcc not found, skipping".into());
    }
    let dir = cache.join(format!("kallsyms-{version}-{}", meta.len()));
    let binary = dir.join("kallsyms");
    if binary.is_file() {
        return Ok(binary);
    }
    let src = dir.join("src");
    fs::create_dir_all(&src).map_err(|e| format!("{}: {e}", src.display()))?;
    let mut members = vec!["*/scripts/kallsyms.c"];
    if version == "6.12" {
        members.push("*/scripts/include/xalloc.h");
    }
    let status = Command::new("tar")
        .arg("-xJf")
        .arg(&tarball)
        .arg("-C")
        .arg(&src)
        .arg("--wildcards")
        .args(&members)
        .status()
        .map_err(|e| format!("tar: {e}"))?;
    assert!(status.success(), "tar failed on {}", tarball.display());
    let top = src.join(format!("linux-source-{version}"));
    // A private name first, so a concurrent run never sees a half-written binary.
    let tmp = dir.join(format!("kallsyms.{}", std::process::id()));
    let status = Command::new("gcc")
        .args(["-O2", "-w", "-I"])
        .arg(top.join("scripts/include"))
        .arg("-o")
        .arg(&tmp)
        .arg(top.join("scripts/kallsyms.c"))
        .status()
        .map_err(|e| format!("gcc: {e}"))?;
    assert!(status.success(), "gcc failed on {version}'s kallsyms.c");
    fs::rename(&tmp, &binary).map_err(|e| format!("{}: {e}", binary.display()))?;
    Ok(binary)
}

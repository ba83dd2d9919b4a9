//! Where things are: the workspace, the peers' scripts, built binaries.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The workspace root (the parent of the `tests/` package).
#[must_use]
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `tests/peers/`: the scripts of the peers we drive (the libwebrtc client, …).
#[must_use]
pub fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

/// `tests/fixtures/`.
#[must_use]
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Candidate directories holding the binaries of this build, best first:
/// the directory of the running test executable's profile (`…/debug` for
/// `…/debug/deps/NAME-HASH`), `$CARGO_TARGET_DIR/debug`, `<workspace>/target/debug`.
#[must_use]
pub fn binary_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            if dir.file_name().is_some_and(|n| n == "deps") {
                if let Some(profile) = dir.parent() {
                    dirs.push(profile.to_path_buf());
                }
            }
            dirs.push(dir.to_path_buf());
        }
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        dirs.push(PathBuf::from(target).join("debug"));
    }
    dirs.push(workspace_root().join("target").join("debug"));
    dirs
}

/// Locates a binary of this workspace built by cargo (e.g. `jingle-sip-gateway`).
///
/// `env!("CARGO_BIN_EXE_…")` only works inside the package that defines the binary,
/// so the test bed looks for it: `$JSG_BIN_<NAME>` (upper case, `-` → `_`) if set,
/// else the first of [`binary_dirs`] that holds it. `cargo test --workspace` builds
/// every package's binaries; with `-p jsg-tests` alone, build it first
/// (`cargo build -p jingle-sip-gateway`).
///
/// # Errors
/// [`Error::Missing`] with the places searched.
pub fn workspace_binary(name: &str) -> Result<PathBuf> {
    let var = format!("JSG_BIN_{}", name.to_uppercase().replace('-', "_"));
    if let Some(p) = std::env::var_os(&var) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        return Err(Error::Missing {
            what: format!("{name} at ${var}={}", p.display()),
            hint: "point it at a built binary".into(),
        });
    }
    let dirs = binary_dirs();
    for d in &dirs {
        let p = d.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(Error::Missing {
        what: format!("binary {name} (searched {dirs:?})"),
        hint: format!("build it: cargo build -p {name}, or set ${var}"),
    })
}

/// The gateway binary, `jingle-sip-gateway` (see [`workspace_binary`]).
///
/// # Errors
/// [`Error::Missing`] if it has not been built.
pub fn gateway_binary() -> Result<PathBuf> {
    workspace_binary("jingle-sip-gateway")
}

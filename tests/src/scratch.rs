//! Per-test scratch directories that survive a failing test.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tempfile::TempDir;

/// A temporary directory for one test's configs, data and logs.
///
/// Cheap to clone; the directory is removed when the last clone is dropped, unless the
/// thread is panicking (a failing test): then it is kept and its path printed, so the
/// peers' logs can be read.
#[derive(Debug, Clone)]
pub struct Scratch {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    dir: Mutex<Option<TempDir>>,
}

impl Scratch {
    /// Creates `$TMPDIR/jsg-NAME-XXXXXX`.
    ///
    /// # Errors
    /// [`crate::Error::Io`] if the directory cannot be created.
    pub fn new(name: &str) -> crate::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("jsg-{name}-"))
            .tempdir()
            .map_err(|e| crate::Error::io("create scratch dir", e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: dir.path().to_path_buf(),
                dir: Mutex::new(Some(dir)),
            }),
        })
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// `path()/name`.
    #[must_use]
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.inner.path.join(name)
    }

    /// Creates (if needed) and returns the subdirectory `name`.
    ///
    /// # Errors
    /// [`crate::Error::Io`] if it cannot be created.
    pub fn subdir(&self, name: &str) -> crate::Result<PathBuf> {
        let p = self.join(name);
        std::fs::create_dir_all(&p)
            .map_err(|e| crate::Error::io(format!("mkdir {}", p.display()), e))?;
        Ok(p)
    }

    /// Keeps the directory after the test (for inspection) and returns its path.
    pub fn keep(&self) -> PathBuf {
        if let Some(dir) = self
            .inner
            .dir
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = dir.keep();
        }
        self.inner.path.clone()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let keep = std::thread::panicking() || std::env::var_os("JSG_KEEP_SCRATCH").is_some();
        if keep {
            if let Some(dir) = self.dir.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = dir.keep();
                eprintln!("testbed: kept scratch dir {}", self.path.display());
            }
        }
    }
}

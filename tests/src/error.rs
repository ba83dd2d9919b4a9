//! The harness's error type.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while starting or driving a test-bed peer.
///
/// Messages carry what a developer needs to debug a failed run: the peer's name,
/// its log file and the tail of that log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on a file, socket or child process failed.
    #[error("{what}: {source}")]
    Io {
        /// What the harness was doing.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A peer did not reach the awaited state in time.
    #[error("timed out after {after:?} waiting for {what}\n{context}")]
    TimedOut {
        /// What was awaited.
        what: String,
        /// How long the harness waited.
        after: Duration,
        /// Recent events and the tail of the peer's log.
        context: String,
    },
    /// A peer process ended while the harness still needed it.
    #[error("{name} exited early ({status}); log {log}:\n{tail}")]
    Exited {
        /// The peer's name.
        name: String,
        /// Its exit status, as text.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
    /// A peer said something the harness does not understand, or reported a failure.
    #[error("{peer}: {message}")]
    Peer {
        /// The peer's name.
        peer: String,
        /// What went wrong.
        message: String,
    },
    /// A needed program or file is missing (run `scripts/install-deps`, or build first).
    #[error("missing {what}: {hint}")]
    Missing {
        /// What is missing.
        what: String,
        /// How to get it.
        hint: String,
    },
}

impl Error {
    /// Wraps an [`std::io::Error`] with a description of the operation.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}

/// The harness's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

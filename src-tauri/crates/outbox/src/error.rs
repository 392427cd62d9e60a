//! What the outbox can fail at. The engine turns each into its own error of the same name and
//! words, so an operator sees the same message whichever layer refused.

use std::path::PathBuf;

/// Anything the outbox can fail at.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// An action cannot be sent as asked.
    #[error(transparent)]
    Dispatch(#[from] cityops_core::dispatch::DispatchError),
    /// The backends file is invalid.
    #[error(transparent)]
    Backends(#[from] crate::config::BackendsError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] cityops_store::StoreError),
    /// The operator may not do this (not signed in, or another role's call).
    #[error("{0}")]
    Forbidden(String),
    /// Something asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A request was malformed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The outbox's senders have stopped.
    #[error("the engine has stopped")]
    Stopped,
}

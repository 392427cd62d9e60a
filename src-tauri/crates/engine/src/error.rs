//! Errors inside the engine, and their flattening into [`crate::dto::ApiError`] at the IPC edge.

use std::path::PathBuf;

use crate::dto::{ApiError, ApiErrorCode};

/// Anything the engine can fail at.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A scenario manifest is invalid.
    #[error("{path}: {source}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong and on which line.
        #[source]
        source: cityops_core::scenario::ManifestError,
    },
    /// An asset file is invalid.
    #[error("{path}: {source}")]
    Assets {
        /// The asset file.
        path: PathBuf,
        /// What is wrong and where.
        #[source]
        source: cityops_core::assets::AssetError,
    },
    /// A correlation rules file is invalid.
    #[error("{path}: {source}")]
    Rules {
        /// The rules file.
        path: PathBuf,
        /// What is wrong and on which line.
        #[source]
        source: cityops_core::rules::RulesError,
    },
    /// A zones file is invalid, or a zone rule names a zone it lacks.
    #[error("{path}: {message}")]
    Zones {
        /// The zones file (or the rules file, for a rule naming a missing zone).
        path: PathBuf,
        /// What is wrong and where.
        message: String,
    },
    /// A scenario's objectives are invalid (or name incident types its rules do not define).
    #[error("{path}: {source}")]
    Objectives {
        /// The manifest.
        path: PathBuf,
        /// Which objective and why.
        #[source]
        source: cityops_core::objectives::ObjectiveError,
    },
    /// An operator action was refused by the correlator (unknown incident, nothing to undo).
    #[error(transparent)]
    Manual(#[from] cityops_core::correlate::ManualError),
    /// An operator action needs a signed-in operator, or one with another role.
    #[error("{0}")]
    Forbidden(String),
    /// A feed's adapter cannot be built from its spec.
    #[error(transparent)]
    Adapter(#[from] cityops_decoders::AdapterConfigError),
    /// An action cannot be sent as asked.
    #[error(transparent)]
    Dispatch(#[from] cityops_core::dispatch::DispatchError),
    /// The backends file is invalid.
    #[error(transparent)]
    Backends(#[from] cityops_outbox::BackendsError),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] cityops_store::StoreError),
    /// A map archive could not be opened or read.
    #[error("map {name}: {reason}")]
    Map {
        /// The archive name.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// Something asked for does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A request was malformed.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The engine has shut down.
    #[error("the engine has stopped")]
    Stopped,
    /// The site refused an operator's decision when it applied it (another operator's came
    /// first); the message says why, in the operator's words.
    #[error("{0}")]
    Refused(String),
    /// A site (NATS) could not be reached or used.
    #[error(transparent)]
    Site(#[from] cityops_site::SiteError),
}

impl From<&EngineError> for ApiError {
    fn from(e: &EngineError) -> ApiError {
        let code = match e {
            EngineError::NotFound(_) => ApiErrorCode::NotFound,
            EngineError::InvalidInput(_) | EngineError::Manual(_) | EngineError::Refused(_) => {
                ApiErrorCode::InvalidInput
            }
            EngineError::Forbidden(_) | EngineError::Site(cityops_site::SiteError::Credentials { .. }) => {
                ApiErrorCode::Forbidden
            }
            EngineError::Store(cityops_store::StoreError::Refused(_)) | EngineError::Dispatch(_) => {
                ApiErrorCode::InvalidInput
            }
            _ => ApiErrorCode::Internal,
        };
        // A refusal by the store is a sentence for the operator as it stands; the "store: "
        // that marks where other store errors came from would only be noise in front of it.
        let message = match e {
            EngineError::Store(cityops_store::StoreError::Refused(m)) => m.clone(),
            _ => e.to_string(),
        };
        ApiError { code, message }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        // The full chain goes to the log before it is flattened for the UI.
        tracing::warn!(error = ?e, "request failed");
        ApiError::from(&e)
    }
}

impl From<cityops_outbox::OutboxError> for EngineError {
    /// The outbox's refusals keep their kind and their words: the operator sees the same
    /// message, with the same code, as when the engine itself refused.
    fn from(e: cityops_outbox::OutboxError) -> EngineError {
        use cityops_outbox::OutboxError as O;
        match e {
            O::Io { path, source } => EngineError::Io { path, source },
            O::Dispatch(e) => EngineError::Dispatch(e),
            O::Backends(e) => EngineError::Backends(e),
            O::Store(e) => EngineError::Store(e),
            O::Forbidden(m) => EngineError::Forbidden(m),
            O::NotFound(m) => EngineError::NotFound(m),
            O::InvalidInput(m) => EngineError::InvalidInput(m),
            O::Stopped => EngineError::Stopped,
        }
    }
}

impl From<cityops_live::LiveError> for EngineError {
    /// Live ingest's failures keep their kind and words, as the outbox's do.
    fn from(e: cityops_live::LiveError) -> EngineError {
        use cityops_live::LiveError as L;
        match e {
            L::Io { path, source } => EngineError::Io { path, source },
            L::Adapter(e) => EngineError::Adapter(e),
            L::Store(e) => EngineError::Store(e),
        }
    }
}

//! Store errors, tagged retryable (server down, timeout) or permanent.

/// Errors from any store implementation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The embedded storage engine failed.
    #[error("embedded store: {0}")]
    Storage(#[from] fjall::Error),
    /// Another process holds the embedded store's directory.
    #[error("the store directory {0} is in use by another process (is another ecomflow running on this --data-dir?)")]
    Locked(String),
    /// A file-system error. Not a `source`: the message holds it once,
    /// rather than twice in an error chain.
    #[error("store I/O: {0}")]
    Io(std::io::Error),
    /// A stored value that cannot be decoded.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
    /// A store server refused or failed a request.
    #[error("{server}: {message}")]
    Server {
        /// Which server (MongoDB, HBase).
        server: &'static str,
        /// What it said.
        message: String,
        /// Whether trying again later may succeed.
        retryable: bool,
    },
    /// A store on disk in a layout this version does not read.
    #[error("{0}")]
    Layout(String),
    /// A table or family that does not exist.
    #[error("unknown table or family {0:?}")]
    Unknown(String),
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e)
    }
}

impl StoreError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Server { retryable, .. } => *retryable,
            StoreError::Io(_) => true,
            _ => false,
        }
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(what.to_string())
    }
}

/// Result alias for store operations.
pub type Result<T> = std::result::Result<T, StoreError>;

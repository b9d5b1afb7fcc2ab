//! The crate's single error type.

/// Everything that can go wrong with did:plc operations, logs, the directory
/// store and the directory client.
///
/// The first group are reasons an operation is refused; the directory
/// answers them with 400 and the message (see [`PlcError::http_status`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlcError {
    /// The operation is malformed or breaks a limit: wrong shape, unknown
    /// field, bad did:key, too many entries, too large.
    #[error("invalid operation: {0}")]
    InvalidOperation(String),

    /// No allowed rotation key verifies the signature (this includes
    /// high-S, DER-encoded and badly base64url-encoded signatures).
    #[error("invalid signature: {0}")]
    InvalidSignature(String),

    /// A genesis operation does not hash to the DID it was submitted for.
    #[error("genesis operation hashes to {computed}, not {did}")]
    GenesisHash {
        /// The DID the operation was submitted for.
        did: String,
        /// The DID the operation actually derives.
        computed: String,
    },

    /// `prev` does not name an operation this one may follow: unknown,
    /// nullified, a tombstone, or missing on an update.
    #[error("operation out of order: {0}")]
    Misordered(String),

    /// A recovery (fork) arrived more than 72 hours after the first
    /// operation it would nullify.
    #[error(
        "recovery window has passed: the first nullified operation is {elapsed_ms} ms old \
         (at most 72 hours allowed)"
    )]
    LateRecovery {
        /// Milliseconds between the first nullified operation and this one.
        elapsed_ms: i64,
    },

    /// The DID has no operations.
    #[error("DID not registered: {0}")]
    NotRegistered(String),

    /// The DID is tombstoned (deactivated).
    #[error("DID not available: {0}")]
    NotAvailable(String),

    /// An audit log (e.g. from another directory) does not verify.
    #[error("invalid operation log: {0}")]
    InvalidLog(String),

    /// The SQLite store failed.
    #[error("database error: {0}")]
    Storage(String),

    /// The directory answered with an error status.
    #[error("PLC directory answered {status}: {message}")]
    Http {
        /// The HTTP status code.
        status: u16,
        /// The `message` of the directory's JSON error, or the body text.
        message: String,
    },

    /// The request did not complete (connection, timeout, TLS).
    #[error("PLC directory request failed: {0}")]
    Transport(String),

    /// The directory's response body was larger than the client accepts.
    #[error("PLC directory response larger than {0} bytes")]
    ResponseTooLarge(usize),

    /// The directory's response was not what the endpoint returns.
    #[error("invalid PLC directory response: {0}")]
    InvalidResponse(String),
}

impl PlcError {
    /// The HTTP status a directory answers this error with: 400 for refused
    /// operations, 404 for an unknown DID, 410 for a tombstoned one, 500 for
    /// the rest.
    pub fn http_status(&self) -> u16 {
        match self {
            PlcError::InvalidOperation(_)
            | PlcError::InvalidSignature(_)
            | PlcError::GenesisHash { .. }
            | PlcError::Misordered(_)
            | PlcError::LateRecovery { .. } => 400,
            PlcError::NotRegistered(_) => 404,
            PlcError::NotAvailable(_) => 410,
            PlcError::Http { status, .. } => *status,
            PlcError::InvalidLog(_)
            | PlcError::Storage(_)
            | PlcError::Transport(_)
            | PlcError::ResponseTooLarge(_)
            | PlcError::InvalidResponse(_) => 500,
        }
    }

    /// True for the reasons a directory refuses an operation (status 400).
    pub fn is_rejection(&self) -> bool {
        self.http_status() == 400
    }
}

impl From<rusqlite::Error> for PlcError {
    fn from(e: rusqlite::Error) -> PlcError {
        PlcError::Storage(e.to_string())
    }
}

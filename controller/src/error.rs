//! The daemon's one error type: a kind that decides the HTTP status and CLI exit, and a message
//! for people.

use std::fmt;

/// What sort of failure an [`Error`] is; `web::error` maps each to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    InvalidArgument,
    AlreadyExists,
    FailedPrecondition,
    Unavailable,
    ResourceExhausted,
    /// No or bad credentials: log in again.
    Unauthenticated,
    /// Logged in, but this role may not do that (or the CSRF token is wrong).
    PermissionDenied,
    /// Too many attempts; wait.
    RateLimited,
    /// A request body over its limit.
    PayloadTooLarge,
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::FailedPrecondition => "failed_precondition",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::ResourceExhausted => "resource_exhausted",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::Internal => "internal",
        }
    }
}

#[derive(Debug)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// Prefixes the message with what was being done, keeping the kind.
    pub fn context(self, what: impl fmt::Display) -> Error {
        Error {
            kind: self.kind,
            message: format!("{what}: {}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `err!(NotFound, "项目 {} 不存在", number)` builds an [`Error`].
#[macro_export]
macro_rules! err {
    ($kind:ident, $($arg:tt)+) => {
        $crate::error::Error::new($crate::error::ErrorKind::$kind, format!($($arg)+))
    };
}

/// `bail!(InvalidArgument, "...")` returns an [`Error`] from the current function.
#[macro_export]
macro_rules! bail {
    ($kind:ident, $($arg:tt)+) => {
        return Err($crate::err!($kind, $($arg)+))
    };
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Error {
        match &e {
            sqlx::Error::RowNotFound => {
                Error::new(ErrorKind::NotFound, "记录不存在 (row not found)")
            }
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Error::new(ErrorKind::AlreadyExists, format!("记录已存在: {db}"))
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
                Error::new(ErrorKind::Unavailable, format!("database: {e}"))
            }
            _ => Error::new(ErrorKind::Internal, format!("database: {e}")),
        }
    }
}

impl From<witness_drivers::burner::BurnError> for Error {
    fn from(e: witness_drivers::burner::BurnError) -> Error {
        use witness_drivers::burner::BurnError;
        let kind = match &e {
            BurnError::DriveUnavailable { .. } => ErrorKind::Unavailable,
            BurnError::MediumFull { .. } => ErrorKind::ResourceExhausted,
            BurnError::Unburnable { .. } => ErrorKind::FailedPrecondition,
            _ => ErrorKind::Internal,
        };
        Error::new(kind, e.to_string())
    }
}

/// Wraps an I/O error with what was being done and to which path.
pub fn io_error(what: impl fmt::Display, e: std::io::Error) -> Error {
    let kind = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorKind::NotFound,
        std::io::ErrorKind::PermissionDenied => ErrorKind::FailedPrecondition,
        std::io::ErrorKind::StorageFull => ErrorKind::ResourceExhausted,
        _ => ErrorKind::Internal,
    };
    Error::new(kind, format!("{what}: {e}"))
}

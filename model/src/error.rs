//! The kinds of error the console's HTTP API answers with, and the one place
//! that maps each kind to its HTTP status (`app::error::ApiError` carries a
//! kind and a sentence to the browser).

use serde::{Deserialize, Serialize};

/// What went wrong, from the caller's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Malformed or out-of-range input: fix the request.
    BadInput,
    /// Not logged in, or the session ended.
    LoginRequired,
    /// Logged in, but the role may not, or the request is not same-origin.
    Forbidden,
    /// No such thing (page, backup, job, user).
    NotFound,
    /// Another operation holds the lock: "busy: … by … since …".
    Busy,
    /// The cluster changed since the plan was confirmed.
    Changed,
    /// A precondition of the operation failed; the message says which.
    Precondition,
    /// The request body is larger than the console accepts.
    TooLarge,
    /// Too many attempts: wait and retry.
    TooMany,
    /// A fault inside the console; details are in its log only.
    Internal,
}

impl ErrorKind {
    /// The HTTP status of this kind of error (the only such mapping).
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadInput => 400,
            ErrorKind::LoginRequired => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Busy | ErrorKind::Changed => 409,
            ErrorKind::Precondition => 412,
            ErrorKind::TooLarge => 413,
            ErrorKind::TooMany => 429,
            ErrorKind::Internal => 500,
        }
    }

    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::BadInput,
        ErrorKind::LoginRequired,
        ErrorKind::Forbidden,
        ErrorKind::NotFound,
        ErrorKind::Busy,
        ErrorKind::Changed,
        ErrorKind::Precondition,
        ErrorKind::TooLarge,
        ErrorKind::TooMany,
        ErrorKind::Internal,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_internal_faults_are_500() {
        for k in ErrorKind::ALL {
            let s = k.status();
            assert!((400..=599).contains(&s), "{k:?}");
            assert_eq!(s == 500, k == ErrorKind::Internal, "{k:?}");
        }
    }
}

//! The error every server function returns, as the browser receives it: a
//! kind (which decides the HTTP status, `model::error::ErrorKind::status`)
//! and a sentence that says what to do next. Internal faults carry only a
//! reference; their details go to the console's log, never to the client.

use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

pub use model::error::ErrorKind;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadInput, message)
    }

    pub fn login_required() -> Self {
        Self::new(
            ErrorKind::LoginRequired,
            "login required: your session has ended or you are not logged in",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// An internal fault: `detail` goes to the log with a reference, the
    /// client gets only the reference.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        let reference = reference();
        #[cfg(feature = "ssr")]
        tracing::error!(reference = %reference, "internal error: {detail}");
        #[cfg(not(feature = "ssr"))]
        let _ = detail.to_string();
        Self::new(
            ErrorKind::Internal,
            format!("internal error (reference {reference}); the console's log has the details"),
        )
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }
}

fn reference() -> String {
    #[cfg(feature = "ssr")]
    {
        domain::users::random_token()[..8].to_string()
    }
    #[cfg(not(feature = "ssr"))]
    {
        String::from("client")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl FromServerFnError for ApiError {
    // As the answers: decoded through a Value (codec.rs).
    type Encoder = crate::codec::JsonTextEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // The request's arguments: the caller can fix these.
            ServerFnErrorErr::Args(e) => Self::bad_input(format!("malformed request: {e}")),
            ServerFnErrorErr::MissingArg(a) => Self::bad_input(format!("malformed request: {a} is missing")),
            // In the browser: the console could not be reached or answered oddly.
            ServerFnErrorErr::Request(e) => Self::new(
                ErrorKind::Internal,
                format!("cannot reach the console ({e}); check the connection and reload"),
            ),
            ServerFnErrorErr::Deserialization(e) => Self::new(
                ErrorKind::Internal,
                format!("cannot read the console's answer ({e}); reload the page"),
            ),
            other => Self::internal(other),
        }
    }
}

/// Domain errors as the browser sees them: each kind decided here, once.
#[cfg(feature = "ssr")]
mod from_domain {
    use super::{ApiError, ErrorKind};
    use domain::backup::BackupError;
    use domain::operations::OpError;
    use domain::users::{HashError, UserError};

    impl From<UserError> for ApiError {
        fn from(e: UserError) -> Self {
            let kind = match &e {
                UserError::BadName
                | UserError::Exists(_)
                | UserError::Password(_)
                | UserError::SessionPrefix(_)
                | UserError::StepUpRequired => ErrorKind::BadInput,
                UserError::NoSuchUser(_) => ErrorKind::NotFound,
                UserError::LastAdmin => ErrorKind::Precondition,
                UserError::WrongPassword => ErrorKind::Forbidden,
                UserError::Locked(_) | UserError::Hash(HashError::Busy) => ErrorKind::TooMany,
                UserError::Hash(_) | UserError::Db(_) => return ApiError::internal(e),
            };
            ApiError::new(kind, e.to_string())
        }
    }

    impl From<OpError> for ApiError {
        fn from(e: OpError) -> Self {
            let kind = match &e {
                OpError::Token(_) | OpError::WrongName { .. } | OpError::PasswordRequired => ErrorKind::BadInput,
                OpError::WrongPassword => ErrorKind::Forbidden,
                OpError::Locked(_) => ErrorKind::TooMany,
                OpError::Busy { .. } => ErrorKind::Busy,
                OpError::Changed { .. } => ErrorKind::Changed,
                OpError::Preconditions(_) | OpError::Failed(_) => ErrorKind::Precondition,
                OpError::Internal(_) => return ApiError::internal(e),
            };
            ApiError::new(kind, e.to_string())
        }
    }

    impl From<BackupError> for ApiError {
        fn from(e: BackupError) -> Self {
            let kind = match &e {
                BackupError::NotFound(_) => ErrorKind::NotFound,
                BackupError::Forbidden(_) => ErrorKind::Forbidden,
                BackupError::WrongId(_) => ErrorKind::BadInput,
                BackupError::Busy { .. } => ErrorKind::Busy,
                BackupError::Unusable(_) => ErrorKind::Precondition,
                BackupError::Failed(_) => return ApiError::internal(e),
            };
            ApiError::new(kind, e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_the_browser_reads_it() {
        let e = ApiError::new(ErrorKind::Busy, "busy: Switchover by alice since 10:00:00 UTC");
        let j = serde_json::to_string(&e).unwrap();
        assert_eq!(
            j,
            r#"{"kind":"busy","message":"busy: Switchover by alice since 10:00:00 UTC"}"#
        );
        assert_eq!(serde_json::from_str::<ApiError>(&j).unwrap(), e);
    }

    #[test]
    fn malformed_arguments_are_bad_input_not_internal() {
        let e = ApiError::from_server_fn_error(ServerFnErrorErr::Args("invalid digit".into()));
        assert_eq!(e.status(), 400);
        let e = ApiError::from_server_fn_error(ServerFnErrorErr::MissingArg("token".into()));
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn internal_errors_carry_no_detail() {
        let e = ApiError::internal("error returned from database: /var/lib/x/console.db is locked");
        assert_eq!(e.status(), 500);
        assert!(!e.message.contains("/var/lib"), "{}", e.message);
        assert!(!e.message.contains("database"), "{}", e.message);
    }
}

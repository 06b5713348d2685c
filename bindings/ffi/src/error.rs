//! The one error type the bindings throw.

/// Every failure of the SDK, one variant per stable error code of `chatico_core::ErrorCode`
/// (`not_found`, `forbidden`, ...). `message` is for humans; match on the variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum ChatError {
    #[error("{message}")]
    NotFound { message: String },
    #[error("{message}")]
    Forbidden { message: String },
    /// `field` names the offending input.
    #[error("{message}")]
    InvalidInput { field: String, message: String },
    /// Retry after `retry_after_ms`.
    #[error("{message}")]
    RateLimited { retry_after_ms: u64, message: String },
    #[error("{message}")]
    Conflict { message: String },
    /// Log in again (or the refresh failed).
    #[error("{message}")]
    Unauthorized { message: String },
    #[error("{message}")]
    TooLarge { message: String },
    /// The server is unreachable or not connected; retry later.
    #[error("{message}")]
    Unavailable { message: String },
    #[error("{message}")]
    Internal { message: String },
}

/// The stable error codes, for events that report an error without throwing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ErrorCode {
    NotFound,
    Forbidden,
    InvalidInput,
    RateLimited,
    Conflict,
    Unauthorized,
    TooLarge,
    Unavailable,
    Internal,
}

impl From<chatico_core::ErrorCode> for ErrorCode {
    fn from(c: chatico_core::ErrorCode) -> Self {
        use chatico_core::ErrorCode as C;
        match c {
            C::NotFound => ErrorCode::NotFound,
            C::Forbidden => ErrorCode::Forbidden,
            C::InvalidInput => ErrorCode::InvalidInput,
            C::RateLimited => ErrorCode::RateLimited,
            C::Conflict => ErrorCode::Conflict,
            C::Unauthorized => ErrorCode::Unauthorized,
            C::TooLarge => ErrorCode::TooLarge,
            C::Unavailable => ErrorCode::Unavailable,
            C::Internal => ErrorCode::Internal,
        }
    }
}

impl From<chatico_core::Error> for ChatError {
    fn from(e: chatico_core::Error) -> Self {
        use chatico_core::Error as E;
        let message = e.to_string();
        match e {
            E::NotFound { .. } => ChatError::NotFound { message },
            E::Forbidden { .. } => ChatError::Forbidden { message },
            E::InvalidInput { field, .. } => ChatError::InvalidInput { field, message },
            E::RateLimited { retry_after_ms } => ChatError::RateLimited {
                retry_after_ms,
                message,
            },
            E::Conflict { .. } => ChatError::Conflict { message },
            E::Unauthorized { .. } => ChatError::Unauthorized { message },
            E::TooLarge { .. } => ChatError::TooLarge { message },
            E::Unavailable { .. } => ChatError::Unavailable { message },
            E::Internal { .. } => ChatError::Internal { message },
        }
    }
}

/// Parses an id given as a string by the app.
pub(crate) fn parse_id<T: std::str::FromStr<Err = chatico_core::Error>>(field: &str, s: &str) -> Result<T, ChatError> {
    s.parse::<T>().map_err(|_| ChatError::InvalidInput {
        field: field.to_owned(),
        message: format!("{field} is not a UUID"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_core_error_keeps_its_code() {
        let cases = [
            (chatico_core::Error::not_found("user"), ErrorCode::NotFound),
            (chatico_core::Error::forbidden("x"), ErrorCode::Forbidden),
            (chatico_core::Error::invalid("phone", "bad"), ErrorCode::InvalidInput),
            (
                chatico_core::Error::RateLimited { retry_after_ms: 5 },
                ErrorCode::RateLimited,
            ),
            (chatico_core::Error::conflict("x"), ErrorCode::Conflict),
            (chatico_core::Error::unauthorized("x"), ErrorCode::Unauthorized),
            (chatico_core::Error::too_large("x", 1), ErrorCode::TooLarge),
            (chatico_core::Error::unavailable("x"), ErrorCode::Unavailable),
            (chatico_core::Error::internal("x"), ErrorCode::Internal),
        ];
        for (e, code) in cases {
            assert_eq!(ErrorCode::from(e.code()), code);
            let f = ChatError::from(e);
            let same = matches!(
                (&f, code),
                (ChatError::NotFound { .. }, ErrorCode::NotFound)
                    | (ChatError::Forbidden { .. }, ErrorCode::Forbidden)
                    | (ChatError::InvalidInput { .. }, ErrorCode::InvalidInput)
                    | (ChatError::RateLimited { .. }, ErrorCode::RateLimited)
                    | (ChatError::Conflict { .. }, ErrorCode::Conflict)
                    | (ChatError::Unauthorized { .. }, ErrorCode::Unauthorized)
                    | (ChatError::TooLarge { .. }, ErrorCode::TooLarge)
                    | (ChatError::Unavailable { .. }, ErrorCode::Unavailable)
                    | (ChatError::Internal { .. }, ErrorCode::Internal)
            );
            assert!(same, "{f:?} vs {code:?}");
        }
        let f = ChatError::from(chatico_core::Error::invalid("phone", "bad"));
        assert_eq!(
            f,
            ChatError::InvalidInput {
                field: "phone".into(),
                message: "invalid phone: bad".into()
            }
        );
    }
}

//! The error a connector or task returns: a message, and whether retrying may help.

use std::fmt;

/// An error from a connector or task (Kafka Connect's `ConnectException`, or
/// `RetriableException` when [`ConnectError::is_retriable`]).
///
/// Any `std::error::Error` converts into a non-retriable one with `?`, keeping its chain of
/// sources in the message.
pub struct ConnectError {
    retriable: bool,
    message: String,
}

/// The result of a connector or task call.
pub type Result<T, E = ConnectError> = std::result::Result<T, E>;

impl ConnectError {
    /// An error that retrying will not fix: the task fails.
    pub fn new(message: impl Into<String>) -> ConnectError {
        ConnectError {
            retriable: false,
            message: message.into(),
        }
    }

    /// An error that retrying may fix (a timeout, a remote system briefly unavailable): the
    /// worker may call again with the same input.
    pub fn retriable(message: impl Into<String>) -> ConnectError {
        ConnectError {
            retriable: true,
            message: message.into(),
        }
    }

    pub fn is_retriable(&self) -> bool {
        self.retriable
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl<E: std::error::Error> From<E> for ConnectError {
    fn from(e: E) -> ConnectError {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        ConnectError::new(message)
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectError")
            .field("retriable", &self.retriable)
            .field("message", &self.message)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_errors_convert_with_their_sources() {
        fn open() -> Result<()> {
            std::fs::read("/definitely/not/here")?;
            Ok(())
        }
        let e = open().unwrap_err();
        assert!(!e.is_retriable());
        assert!(e.message().contains("No such file"), "{e}");
        assert!(ConnectError::retriable("later").is_retriable());
    }
}

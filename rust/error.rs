//! The crate's one error type. The Python binding maps each variant to a Python exception.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A parameter outside its valid range or an unknown name (ValueError).
    InvalidArgument(String),
    /// Buffer lengths that do not match the stated shape (ValueError).
    Shape(String),
    /// An element type the kernels do not support (TypeError).
    Dtype(String),
    /// A failure while computing (RuntimeError).
    Runtime(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidArgument(m) | Error::Shape(m) | Error::Dtype(m) | Error::Runtime(m) => {
                f.write_str(m)
            }
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

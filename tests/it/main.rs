//! Integration tests: the real binary and the real files.

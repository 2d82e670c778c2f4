//! Helpers for the tests that need kernel SCTP (work in progress).

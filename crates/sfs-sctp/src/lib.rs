//! The SFS kernel-SCTP transport (work in progress).

//! The SFS protocol core: sans-IO (work in progress).

pub mod codec;
pub mod control;
pub mod record;

//! The SFS protocol core: sans-IO (work in progress).

pub mod codec;
pub mod control;
pub mod record;
pub mod session;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod transfer;

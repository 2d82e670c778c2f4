//! Tests that need kernel SCTP, and the helpers they share.
//!
//! The host kernels of the developers' and CI machines have no SCTP, so these tests
//! are kept out of a plain `cargo test` (this crate is not a default workspace
//! member). `scripts/test` builds them on the host and runs them where SCTP exists:
//! natively if the host has it, otherwise inside the project's QEMU VM
//! (`scripts/vm/`). They run as root, one test at a time, and never skip.
//!
//! Each file under `tests/` is one group: `environment.rs` checks the VM itself,
//! `transport_*.rs` the SCTP transport crate, and so on. A test that needs two real
//! network paths builds them with [`netns::Topology`]:
//!
//! ```no_run
//! use std::time::Duration;
//! use sfs_kernel_tests::netns::{Path, Topology};
//!
//! let topo = Topology::two_paths().rtt(Duration::from_millis(20)).loss(Path::A, 1.0).build()?;
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod netns;

use std::path::PathBuf;

/// The path of one of the workspace's binaries (`sfs-server`, `sfs`, `sfs-admin`),
/// built by `scripts/test` before the kernel tests run.
///
/// Found next to the running test binary (`target/<profile>/deps/..`), so it works
/// at the same path on the host and in the VM.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binaries live in target/<profile>/deps");
    profile_dir.join(name)
}

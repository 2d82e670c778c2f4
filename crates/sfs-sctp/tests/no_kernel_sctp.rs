//! On a kernel without SCTP (these developers' and CI machines), the very first
//! call must give one clear error that says how to fix it.

use std::time::Duration;

use sfs_sctp::{Error, SctpAssociation, SctpConfig, SctpListener};

/// Whether this kernel can create an SCTP socket at all, asked directly.
fn kernel_has_sctp() -> bool {
    // SAFETY: socket() takes no pointers; a valid descriptor is closed at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 132) };
    if fd >= 0 {
        // SAFETY: `fd` is a descriptor this function just opened.
        unsafe { libc::close(fd) };
    }
    fd >= 0
}

#[tokio::test]
async fn first_call_says_to_load_the_module() {
    let config = SctpConfig::default();
    let addr = ["127.0.0.1:0".parse().unwrap()];
    let bind = SctpListener::bind(&addr, &config);
    let connect = SctpAssociation::connect(&addr, None, &config, Duration::from_secs(1)).await;
    if kernel_has_sctp() {
        // Native SCTP: binding works, and connecting to port 0 fails some other way.
        assert!(bind.is_ok(), "{bind:?}");
        assert!(!matches!(connect, Err(Error::SctpUnavailable)));
        return;
    }
    let err = bind.expect_err("no SCTP in this kernel");
    assert!(matches!(err, Error::SctpUnavailable), "{err:?}");
    assert_eq!(
        err.to_string(),
        "kernel SCTP is not available: load it with `sudo modprobe sctp`"
    );
    assert!(
        matches!(connect, Err(Error::SctpUnavailable)),
        "{connect:?}"
    );
}

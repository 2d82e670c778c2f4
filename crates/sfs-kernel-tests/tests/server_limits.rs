//! Connection limits of the real `sfs-server` over kernel SCTP: a client turned
//! away by a limit learns the limit as the reason (not "transport closed"), and
//! the clients already in are served on.

mod server_util;

use std::net::{IpAddr, SocketAddr};

use server_util::*;
use sfs_kernel_tests::workspace_binary;
use sfs_proto::control::{Command, ErrorCode, Reply};

fn loopbacks() -> Vec<IpAddr> {
    vec!["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()]
}

fn addrs(port: u16) -> Vec<SocketAddr> {
    loopbacks()
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect()
}

#[tokio::test]
async fn a_client_over_the_per_source_limit_is_told_the_limit() {
    let dir = ServerDir::new("limits", &loopbacks(), &[("alice", "user")]);
    let port = 17406;
    let mut command = std::process::Command::new(workspace_binary("sfs-server"));
    command.args(["--max-per-source", "1"]);
    let server = ServerProcess::start(dir.server_command(command, &loopbacks(), port));

    let mut first = connect(&addrs(port), None, &dir).await;
    assert!(matches!(
        first.login("alice", PASSWORD).await,
        Reply::Limits { .. }
    ));
    // Same host, so the same source: over the limit of 1.
    let mut second = connect(&addrs(port), None, &dir).await;
    let reason = second
        .until_closed()
        .await
        .expect("a Close with the reason");
    assert_eq!(reason.code, ErrorCode::BUSY, "{reason:?}");
    assert_eq!(
        reason.reason,
        "too many connections from your address; the limit is 1"
    );
    assert!(
        dir.log().contains("event=refuse result=denied"),
        "{}",
        dir.log()
    );
    // The first client is served on.
    assert_eq!(
        first.request(Command::Pwd).await,
        Reply::Path { path: "/".into() }
    );
    drop(first);
    assert!(server.terminate().success());
}

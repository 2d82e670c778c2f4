//! The real `sfs-server` binary over kernel SCTP, multi-homed on 127.0.0.1 and
//! 127.0.0.2, driven by a scripted client: the seed flow, sharing, parallel
//! transfers, startup errors and a graceful shutdown on SIGTERM.
//!
//! Files are kept small: the VM emulates the CPU and the binaries are debug
//! builds, so hashing and sealing run at a few hundred KB/s there.

mod server_util;

use std::net::{IpAddr, SocketAddr};

use server_util::*;
use sfs_kernel_tests::workspace_binary;
use sfs_proto::control::{Command, ErrorCode, Reply, Rights};

fn loopbacks() -> Vec<IpAddr> {
    vec!["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()]
}

fn addrs(port: u16) -> Vec<SocketAddr> {
    loopbacks()
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect()
}

fn start(dir: &ServerDir, port: u16) -> ServerProcess {
    let command = std::process::Command::new(workspace_binary("sfs-server"));
    ServerProcess::start(dir.server_command(command, &loopbacks(), port))
}

#[tokio::test]
async fn server_seed_flow_sharing_and_sigterm() {
    let dir = ServerDir::new(
        "seed",
        &loopbacks(),
        &[("alice", "user"), ("root", "admin")],
    );
    let port = 17401;
    let server = start(&dir, port);

    // register, log in, MKD, CWD, STOR, LIST, RETR, DELE, RMD.
    let mut bob = connect(&addrs(port), None, &dir).await;
    assert!(bob.session.is_connected() || !bob.session.is_closed());
    let reply = bob
        .request(Command::Register {
            user: "bob".into(),
            password: PASSWORD.into(),
        })
        .await;
    assert!(matches!(reply, Reply::Limits { .. }), "{reply:?}");
    assert_eq!(
        bob.request(Command::Mkd {
            path: "work".into()
        })
        .await,
        Reply::Ok
    );
    assert_eq!(
        bob.request(Command::Cwd {
            path: "work".into()
        })
        .await,
        Reply::Path {
            path: "/work".into()
        }
    );
    let file = pattern(400_000, 9);
    assert_eq!(bob.upload("data.bin", &file).await, Reply::Ok);
    let id = bob.send(Command::List {
        path: String::new(),
    });
    let listing = bob.replies(id).await;
    assert!(
        matches!(&listing[..], [Reply::Listing { entries, more: false }] if entries.len() == 1 && entries[0].name == "data.bin" && entries[0].size == file.len() as u64),
        "{listing:?}"
    );
    assert_eq!(bob.download("data.bin").await.unwrap(), file);
    assert_eq!(
        std::fs::read(dir.home("bob").join("work/data.bin")).unwrap(),
        file
    );

    // Share read-only with alice: she can RETR but not STOR, DELE or create.
    let share = Command::Shar {
        path: "/work".into(),
        user: "alice".into(),
        rights: Rights::READ,
    };
    assert_eq!(bob.request(share).await, Reply::Ok);
    let mut alice = connect(&addrs(port), None, &dir).await;
    assert!(matches!(
        alice.login("alice", PASSWORD).await,
        Reply::Limits { .. }
    ));
    assert_eq!(
        alice.download("/shared/bob/work/data.bin").await.unwrap(),
        file
    );
    assert_eq!(
        code(&alice.upload("/shared/bob/work/data.bin", b"x").await),
        ErrorCode::PERMISSION_DENIED
    );
    assert_eq!(
        code(&alice.upload("/shared/bob/work/new.bin", b"x").await),
        ErrorCode::PERMISSION_DENIED
    );
    assert_eq!(
        code(
            &alice
                .request(Command::Dele {
                    path: "/shared/bob/work/data.bin".into()
                })
                .await
        ),
        ErrorCode::PERMISSION_DENIED
    );
    // The admin may delete in bob's area.
    let mut root = connect(&addrs(port), None, &dir).await;
    assert!(matches!(
        root.login("root", PASSWORD).await,
        Reply::Limits { .. }
    ));
    assert_eq!(
        root.request(Command::Dele {
            path: "/shared/bob/work/data.bin".into()
        })
        .await,
        Reply::Ok
    );
    assert_eq!(
        bob.request(Command::Cdup).await,
        Reply::Path { path: "/".into() }
    );
    assert_eq!(
        bob.request(Command::Rmd {
            path: "work".into()
        })
        .await,
        Reply::Ok
    );

    // Wrong password: refused, with the same words as an unknown user.
    let mut guesser = connect(&addrs(port), None, &dir).await;
    let wrong = guesser
        .request(Command::Login {
            user: "alice".into(),
            password: "guess".into(),
        })
        .await;
    let unknown = guesser
        .request(Command::Login {
            user: "nobody".into(),
            password: "guess".into(),
        })
        .await;
    assert_eq!(wrong, unknown);

    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    let reason = bob.until_closed().await;
    assert!(
        reason.is_none()
            || reason
                .as_ref()
                .is_some_and(|r| r.code == ErrorCode::SHUTTING_DOWN),
        "{reason:?}"
    );
    let log = dir.log();
    for needle in [
        "event=start",
        "event=connect result=info peers=127.0.0.",
        "event=register result=ok user=bob",
        "event=store result=ok user=bob",
        "event=share result=ok user=bob",
        "event=retrieve result=ok user=alice",
        "event=delete result=ok user=root",
        "event=login result=denied user=alice",
        "event=disconnect",
        "event=stop",
    ] {
        assert!(
            log.contains(needle),
            "{needle} missing from server.log:\n{log}"
        );
    }
    assert!(!log.contains(PASSWORD) && !log.contains("guess"), "{log}");
}

#[tokio::test]
async fn server_parallel_transfers_over_several_streams() {
    let dir = ServerDir::new("parallel", &loopbacks(), &[("alice", "user")]);
    let port = 17402;
    let _server = start(&dir, port);
    let mut c = connect(&addrs(port), None, &dir).await;
    assert!(matches!(
        c.login("alice", PASSWORD).await,
        Reply::Limits { .. }
    ));
    let files: Vec<Vec<u8>> = (0..5)
        .map(|i| pattern(700_000 + i * 999, i as u8))
        .collect();
    let ids: Vec<_> = files
        .iter()
        .enumerate()
        .map(|(i, data)| c.send_stor(&format!("p{i}.bin"), data.clone()))
        .collect();
    for id in ids {
        assert_eq!(c.reply(id).await, Reply::Ok);
    }
    assert!(
        c.streams_used.len() > 1,
        "uploads used streams {:?}",
        c.streams_used
    );
    let ids: Vec<_> = (0..5)
        .map(|i| c.send_retr(&format!("p{i}.bin"), 0))
        .collect();
    for (id, data) in ids.into_iter().zip(&files) {
        assert_eq!(&c.download_result(id).await.unwrap(), data);
    }
    for (i, data) in files.iter().enumerate() {
        assert_eq!(
            &std::fs::read(dir.home("alice").join(format!("p{i}.bin"))).unwrap(),
            data
        );
    }
    assert!(leftover_uploads(&dir.path.join("server_files")).is_empty());
}

#[tokio::test]
async fn server_port_in_use_is_a_clear_error() {
    let dir = ServerDir::new("inuse", &loopbacks(), &[("alice", "user")]);
    let port = 17403;
    let _first = start(&dir, port);
    let command = std::process::Command::new(workspace_binary("sfs-server"));
    let output = dir
        .server_command(command, &loopbacks(), port)
        .output()
        .expect("run a second server");
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains(&format!("port {port} is already in use")),
        "{text}"
    );
}

#[tokio::test]
async fn server_client_killed_mid_stor_leaves_the_old_file() {
    let dir = ServerDir::new("killed", &loopbacks(), &[("alice", "user")]);
    let port = 17405;
    let server = start(&dir, port);
    let mut c = connect(&addrs(port), None, &dir).await;
    assert!(matches!(
        c.login("alice", PASSWORD).await,
        Reply::Limits { .. }
    ));
    let old = pattern(50_000, 1);
    assert_eq!(c.upload("keep.bin", &old).await, Reply::Ok);
    let id = c.send_stor("keep.bin", pattern(600_000, 2));
    c.limit_upload(id, 200_000);
    eprintln!("phase: waiting for the upload to stall");
    c.until_upload_stalls(id).await;
    eprintln!("phase: upload stalled; dropping the client");
    // The client process dies: its socket is closed under the transfer.
    drop(c);

    // The server notices, drops the upload, and serves on.
    let mut again = connect(&addrs(port), None, &dir).await;
    eprintln!("phase: connected again");
    assert!(matches!(
        again.login("alice", PASSWORD).await,
        Reply::Limits { .. }
    ));
    eprintln!("phase: logged in again");
    let mut leftovers = leftover_uploads(&dir.path.join("server_files"));
    for _ in 0..100 {
        if leftovers.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        leftovers = leftover_uploads(&dir.path.join("server_files"));
    }
    assert!(
        leftovers.is_empty(),
        "{leftovers:?}\n{}\n{}",
        dir.log(),
        server.stderr()
    );
    eprintln!("phase: no leftovers");
    assert_eq!(again.download("keep.bin").await.unwrap(), old);
    assert_eq!(
        std::fs::read(dir.home("alice").join("keep.bin")).unwrap(),
        old
    );
    let log = dir.log();
    assert!(log.contains("event=store result=failed"), "{log}");
    drop(server);
}

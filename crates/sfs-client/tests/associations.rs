//! Extra data associations against the real server over memory pairs: files
//! are spread over every association and round-trip intact, a lost extra
//! association costs only a resume, and `status` lists them.

mod real_server;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use real_server::{Server, STREAMS};
use sfs_client::command::parse_line;
use sfs_client::connection::{Associations, ClientOptions, TransferSpec};
use sfs_client::shell::Shell;
use sfs_net::memory::MemoryConnector;
use sfs_server::connection;
use sfs_server::context::SessionSettings;
use sha2::{Digest, Sha256};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn content(i: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| (j % 251) as u8 ^ (i as u8).wrapping_mul(29) ^ (j >> 12) as u8)
        .collect()
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn fixed(count: u8) -> ClientOptions {
    ClientOptions {
        associations: Associations::Fixed(count),
        ..ClientOptions::default()
    }
}

#[tokio::test]
async fn eight_files_spread_over_four_associations_round_trip() {
    const FILES: usize = 8;
    const LEN: usize = 700 * 1024;
    let server = Server::new(SessionSettings::default());
    std::fs::create_dir_all(server.home().join("back")).unwrap();
    for i in 0..FILES {
        std::fs::write(server.home().join(format!("f{i}")), content(i, LEN)).unwrap();
    }
    let (remote, cwd, connector) = server.connect_tapped(fixed(4), None, 0).await;
    let local = tempfile::tempdir().unwrap();
    let out = Captured::default();
    let mut shell = Shell::new(
        remote,
        cwd,
        local.path().into(),
        Box::new(out.clone()),
        true,
    );
    let names: Vec<String> = (0..FILES).map(|i| format!("f{i}")).collect();
    shell
        .execute(
            parse_line(&format!("mget {}", names.join(" ")))
                .unwrap()
                .unwrap(),
        )
        .await
        .expect("mget");
    assert_eq!(connector.count(), 4, "three extra associations opened");
    for i in 0..FILES {
        let got = std::fs::read(local.path().join(format!("f{i}"))).unwrap();
        assert_eq!(digest(&got), digest(&content(i, LEN)), "f{i}");
    }
    let received: Vec<u64> = (0..4)
        .map(|k| connector.tap(k).data_received.load(Ordering::Relaxed))
        .collect();
    assert!(
        received.iter().all(|count| *count > 0),
        "every association carried chunks: {received:?}"
    );

    shell
        .execute(parse_line("cd back").unwrap().unwrap())
        .await
        .expect("cd");
    shell
        .execute(
            parse_line(&format!("mput {}", names.join(" ")))
                .unwrap()
                .unwrap(),
        )
        .await
        .expect("mput");
    for i in 0..FILES {
        let got = std::fs::read(server.home().join("back").join(format!("f{i}"))).unwrap();
        assert_eq!(digest(&got), digest(&content(i, LEN)), "back/f{i}");
    }
    let sent: Vec<u64> = (0..4)
        .map(|k| connector.tap(k).data_sent.load(Ordering::Relaxed))
        .collect();
    assert!(
        sent.iter().all(|count| *count > 0),
        "every association carried upload chunks: {sent:?}"
    );

    shell
        .execute(parse_line("status").unwrap().unwrap())
        .await
        .expect("status");
    let status = out.text();
    assert!(status.contains("associations: 4 open"), "{status}");
    for k in 0..4 {
        assert!(status.contains(&format!("  #{k} ")), "{status}");
    }
    shell.quit().await;
}

/// A download of a large file whose extra association is cut mid-way: it
/// resumes by itself over the others, once, and completes intact.
#[tokio::test]
async fn a_lost_extra_association_costs_only_a_resume() {
    const LEN: usize = 6 << 20;
    let server = Server::new(SessionSettings::default());
    std::fs::create_dir_all(server.home()).unwrap();
    std::fs::write(server.home().join("big"), content(7, LEN)).unwrap();
    // Association 2 dies after carrying a few chunks of the download (it gets
    // a third of them: 6 MiB is about a hundred chunks).
    let (mut remote, _cwd, connector) = server.connect_tapped(fixed(4), Some((2, 8)), 0).await;
    let local = tempfile::tempdir().unwrap();
    let spec = TransferSpec::Download {
        remote: "big".into(),
        dest: local.path().join("big"),
        resume: false,
    };
    let results = remote.transfer_all(std::slice::from_ref(&spec)).await;
    let done = results
        .into_iter()
        .next()
        .unwrap()
        .expect("the download completes");
    assert_eq!(done.sha256, digest(&content(7, LEN)));
    let got = std::fs::read(local.path().join("big")).unwrap();
    assert_eq!(digest(&got), digest(&content(7, LEN)));
    assert!(connector.tap(2).is_dead(), "the association was cut");
    let notices = remote.reporter().notices();
    let resumes: Vec<&String> = notices.iter().filter(|n| n.contains("resuming")).collect();
    assert_eq!(resumes.len(), 1, "one line for the resume: {notices:?}");
    assert!(!local.path().join("big.part").exists());
    // The session goes on with the three that remain.
    assert_eq!(remote.associations().len(), 3);
    remote.quit().await;
}

/// The same for an upload: the server keeps what arrived in order, the client
/// continues from there.
#[tokio::test]
async fn an_upload_survives_a_lost_extra_association() {
    const LEN: usize = 6 << 20;
    let server = Server::new(SessionSettings::default());
    let local = tempfile::tempdir().unwrap();
    std::fs::write(local.path().join("big"), content(9, LEN)).unwrap();
    let (mut remote, _cwd, connector) = server.connect_tapped(fixed(3), Some((1, 8)), 0).await;
    let spec = TransferSpec::Upload {
        local: local.path().join("big"),
        remote: "big".into(),
        resume: false,
    };
    let results = remote.transfer_all(std::slice::from_ref(&spec)).await;
    let done = results
        .into_iter()
        .next()
        .unwrap()
        .expect("the upload completes");
    assert_eq!(done.sha256, digest(&content(9, LEN)));
    let got = std::fs::read(server.home().join("big")).unwrap();
    assert_eq!(digest(&got), digest(&content(9, LEN)));
    assert!(connector.tap(1).is_dead(), "the association was cut");
    let notices = remote.reporter().notices();
    let resumes = notices.iter().filter(|n| n.contains("resuming")).count();
    assert_eq!(resumes, 1, "one line for the resume: {notices:?}");
    assert!(
        !notices.iter().any(|n| n.contains("from the beginning")),
        "the server kept what arrived in order: {notices:?}"
    );
    remote.quit().await;
}

/// A server that allows no extras: the session keeps its one association and
/// works as before.
#[tokio::test]
async fn a_server_without_extras_keeps_one_association() {
    let server = Server::new(SessionSettings {
        max_associations: 1,
        ..SessionSettings::default()
    });
    std::fs::create_dir_all(server.home()).unwrap();
    std::fs::write(server.home().join("a"), content(1, 200_000)).unwrap();
    let (mut remote, _cwd, connector) = server.connect_tapped(fixed(4), None, 0).await;
    let local = tempfile::tempdir().unwrap();
    let results = remote
        .transfer_all(&[TransferSpec::Download {
            remote: "a".into(),
            dest: local.path().join("a"),
            resume: false,
        }])
        .await;
    assert!(results[0].is_ok(), "{results:?}");
    assert_eq!(connector.count(), 1);
    assert_eq!(remote.associations().len(), 1);
    assert!(remote.reporter().notices().is_empty());
    remote.quit().await;
}

/// The `auto` setting over `MemoryConnector`: whatever it decides, files
/// round-trip and the count stays within the server's limit.
#[tokio::test]
async fn auto_grows_within_the_limit_and_files_round_trip() {
    const FILES: usize = 12;
    const LEN: usize = 400 * 1024;
    let server = Server::new(SessionSettings {
        max_associations: 3,
        max_transfers: 2,
        ..SessionSettings::default()
    });
    std::fs::create_dir_all(server.home()).unwrap();
    for i in 0..FILES {
        std::fs::write(server.home().join(format!("f{i}")), content(i, LEN)).unwrap();
    }
    let (mut remote, _cwd, _task) = server
        .connect_with(ClientOptions {
            associations: Associations::Auto,
            ..ClientOptions::default()
        })
        .await;
    let ctx = server.ctx.clone();
    let shutdown = server.shutdown.clone();
    remote.set_connector(MemoryConnector::new(STREAMS, move |far_end| {
        tokio::spawn(connection::serve(
            ctx.clone(),
            far_end,
            shutdown.subscribe(),
        ));
    }));
    let local = tempfile::tempdir().unwrap();
    let specs: Vec<TransferSpec> = (0..FILES)
        .map(|i| TransferSpec::Download {
            remote: format!("f{i}"),
            dest: local.path().join(format!("f{i}")),
            resume: false,
        })
        .collect();
    for result in remote.transfer_all(&specs).await {
        result.expect("a download");
    }
    for i in 0..FILES {
        let got = std::fs::read(local.path().join(format!("f{i}"))).unwrap();
        assert_eq!(digest(&got), digest(&content(i, LEN)), "f{i}");
    }
    assert!(remote.associations().len() <= 3);
    remote.quit().await;
}

/// `auto` on a path where each association has a bottleneck of its own (as
/// under loss, where each has its own congestion window): every association
/// added raises throughput, so it grows to the server's limit.
#[tokio::test]
async fn auto_grows_while_each_association_adds_throughput() {
    const FILES: usize = 40;
    const LEN: usize = 160 * 1024;
    let server = Server::new(SessionSettings {
        max_associations: 3,
        max_transfers: 4,
        ..SessionSettings::default()
    });
    std::fs::create_dir_all(server.home()).unwrap();
    for i in 0..FILES {
        std::fs::write(server.home().join(format!("f{i}")), content(i, LEN)).unwrap();
    }
    let options = ClientOptions {
        associations: Associations::Auto,
        ..ClientOptions::default()
    };
    // 1 MB/s per association, far below what the memory pair carries even on
    // a busy machine: 6.4 MB take 6.4 s with one.
    let (mut remote, _cwd, connector) = server.connect_tapped(options, None, 1_000_000).await;
    let local = tempfile::tempdir().unwrap();
    let specs: Vec<TransferSpec> = (0..FILES)
        .map(|i| TransferSpec::Download {
            remote: format!("f{i}"),
            dest: local.path().join(format!("f{i}")),
            resume: false,
        })
        .collect();
    for result in remote.transfer_all(&specs).await {
        result.expect("a download");
    }
    for i in 0..FILES {
        let got = std::fs::read(local.path().join(format!("f{i}"))).unwrap();
        assert_eq!(digest(&got), digest(&content(i, LEN)), "f{i}");
    }
    assert_eq!(connector.count(), 3, "grew to the limit");
    assert_eq!(remote.associations().len(), 3);
    let received: Vec<u64> = (0..3)
        .map(|k| connector.tap(k).data_received.load(Ordering::Relaxed))
        .collect();
    assert!(received.iter().all(|count| *count > 0), "{received:?}");
    remote.quit().await;
}

/// `auto` on a path with one bottleneck for all associations (a clean link's
/// capacity): the extra association adds nothing, so it is retired (DETACH)
/// and the session goes on with one, no transfer failing on the way.
#[tokio::test]
async fn auto_retires_an_association_that_did_not_help() {
    const FILES: usize = 40;
    const LEN: usize = 160 * 1024;
    let server = Server::new(SessionSettings {
        max_associations: 3,
        max_transfers: 4,
        ..SessionSettings::default()
    });
    std::fs::create_dir_all(server.home()).unwrap();
    for i in 0..FILES {
        std::fs::write(server.home().join(format!("f{i}")), content(i, LEN)).unwrap();
    }
    let options = ClientOptions {
        associations: Associations::Auto,
        ..ClientOptions::default()
    };
    let (mut remote, _cwd, connector) = server
        .connect_tapped_with(options, None, 1_000_000, true)
        .await;
    let local = tempfile::tempdir().unwrap();
    let specs: Vec<TransferSpec> = (0..FILES)
        .map(|i| TransferSpec::Download {
            remote: format!("f{i}"),
            dest: local.path().join(format!("f{i}")),
            resume: false,
        })
        .collect();
    for result in remote.transfer_all(&specs).await {
        result.expect("a download");
    }
    for i in 0..FILES {
        let got = std::fs::read(local.path().join(format!("f{i}"))).unwrap();
        assert_eq!(digest(&got), digest(&content(i, LEN)), "f{i}");
    }
    assert_eq!(connector.count(), 2, "tried one extra association");
    assert_eq!(remote.associations().len(), 1, "and retired it");
    assert!(remote.reporter().notices().is_empty());
    remote.quit().await;
}

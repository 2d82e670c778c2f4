//! An association without data streams: RETR and STOR are refused with the real
//! reason (not BUSY "cannot start the transfer", which invites a useless retry),
//! nothing is left behind, and the session serves on.

mod support;

use sfs_net::memory::memory_pair;
use sfs_proto::control::{Command, ErrorCode, Reply};
use sfs_server::connection;
use support::{code, detached, pattern, Fixture, PASSWORD};

#[tokio::test]
async fn transfers_on_an_association_without_data_streams_say_so() {
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.home("alice")).unwrap();
    std::fs::write(fx.home("alice").join("there.txt"), pattern(4, 1)).unwrap();
    // Stream 0 only: control, no data.
    let (client_end, server_end) = memory_pair(1);
    let server = tokio::spawn(connection::serve(
        fx.ctx.clone(),
        server_end,
        fx.shutdown.subscribe(),
    ));
    let mut c = detached(client_end, &fx.pki);
    c.server = Some(server);
    assert!(matches!(
        c.login("alice", PASSWORD).await,
        Reply::Limits { .. }
    ));

    for command in [
        Command::Retr {
            path: "there.txt".into(),
            offset: 0,
        },
        Command::Stor {
            path: "new.txt".into(),
            size: 4,
        },
    ] {
        let name = command.name();
        let reply = c.request(command).await;
        assert_eq!(code(&reply), ErrorCode::BAD_REQUEST, "{name}: {reply:?}");
        let Reply::Error { message, .. } = &reply else {
            unreachable!()
        };
        assert!(
            message.contains("the association has no data streams"),
            "{name}: {message}"
        );
    }
    assert!(fx.leftover_uploads().is_empty());
    assert!(!fx.home("alice").join("new.txt").exists());
    assert_eq!(
        c.request(Command::Size {
            path: "there.txt".into()
        })
        .await,
        Reply::Size { size: 4 }
    );
}

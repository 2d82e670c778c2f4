//! The connection handler driven by a real client session over the in-memory
//! transport: the seed flows, sharing, logins, and hostile paths.

mod support;

use std::time::{Duration, Instant};

use sfs_proto::control::{Command, EntryKind, ErrorCode, Reply, Rights};
use support::{code, pattern, Fixture, PASSWORD};

fn names(replies: &[Reply]) -> Vec<String> {
    replies
        .iter()
        .flat_map(|reply| match reply {
            Reply::Listing { entries, .. } => {
                entries.iter().map(|e| e.name.clone()).collect::<Vec<_>>()
            }
            other => panic!("not a listing: {other:?}"),
        })
        .collect()
}

fn path_reply(path: &str) -> Reply {
    Reply::Path { path: path.into() }
}

#[tokio::test]
async fn seed_flow_register_mkd_cwd_stor_list_retr_dele_rmd() {
    let fx = Fixture::new();
    let mut c = fx.connect().await;
    let reply = c
        .request(Command::Register {
            user: "carol".into(),
            password: "carol's secret".into(),
        })
        .await;
    assert!(matches!(reply, Reply::Limits { .. }), "{reply:?}");
    assert!(fx.home("carol").is_dir(), "registration creates the home");

    assert_eq!(
        c.request(Command::Mkd {
            path: "docs".into()
        })
        .await,
        Reply::Ok
    );
    assert_eq!(
        c.request(Command::Cwd {
            path: "docs".into()
        })
        .await,
        path_reply("/docs")
    );
    assert_eq!(c.request(Command::Pwd).await, path_reply("/docs"));
    let file = pattern(300_000, 7);
    assert_eq!(c.upload("report.bin", &file).await, Reply::Ok);
    assert_eq!(
        std::fs::read(fx.home("carol").join("docs/report.bin")).unwrap(),
        file
    );

    let id = c.send(Command::List {
        path: String::new(),
    });
    let listing = c.replies(id).await;
    assert_eq!(names(&listing), ["report.bin"]);
    let Reply::Listing { entries, .. } = &listing[0] else {
        unreachable!()
    };
    assert_eq!(entries[0].kind, EntryKind::File);
    assert_eq!(entries[0].size, file.len() as u64);
    assert_eq!(entries[0].mode, 0o600);

    assert_eq!(c.download("report.bin").await.unwrap(), file);
    assert_eq!(
        c.request(Command::Size {
            path: "/docs/report.bin".into()
        })
        .await,
        Reply::Size {
            size: file.len() as u64
        }
    );
    let digest: [u8; 32] = {
        use sha2::Digest as _;
        sha2::Sha256::digest(&file).into()
    };
    assert_eq!(
        c.request(Command::Digest {
            path: "report.bin".into()
        })
        .await,
        Reply::Digest {
            size: file.len() as u64,
            sha256: digest
        }
    );
    // Resume from an offset.
    let id = c.send_retr("report.bin", 100_000);
    assert_eq!(c.download_result(id).await.unwrap(), file[100_000..]);
    assert_eq!(
        c.request(Command::Rename {
            from: "report.bin".into(),
            to: "final.bin".into()
        })
        .await,
        Reply::Ok
    );
    assert_eq!(
        c.request(Command::Dele {
            path: "final.bin".into()
        })
        .await,
        Reply::Ok
    );
    assert_eq!(c.request(Command::Cdup).await, path_reply("/"));
    assert_eq!(
        c.request(Command::Rmd {
            path: "docs".into()
        })
        .await,
        Reply::Ok
    );
    assert!(!fx.home("carol").join("docs").exists());

    let id = c.send(Command::List { path: "/".into() });
    assert_eq!(
        names(&c.replies(id).await),
        ["shared"],
        "only the virtual folder is left"
    );
    let Reply::ServerStatus { user, admin, .. } = c.request(Command::Status).await else {
        panic!("no status")
    };
    assert_eq!(
        (user.as_str(), admin),
        ("carol", false),
        "registration never grants admin"
    );
    let summary = c.quit().await;
    assert_eq!(summary.user.as_deref(), Some("carol"));

    let log = fx.log();
    for needle in [
        "event=connect",
        "event=register result=ok user=carol",
        "event=mkdir result=ok user=carol",
        "event=store result=ok user=carol",
        "path=/docs/report.bin bytes=300000",
        "event=retrieve result=ok",
        "event=delete result=ok user=carol",
        "event=rmdir result=ok",
        "event=disconnect",
    ] {
        assert!(log.contains(needle), "{needle} missing from\n{log}");
    }
    assert!(
        !log.contains("secret"),
        "a password reached the log:\n{log}"
    );
    assert!(fx.leftover_uploads().is_empty());
}

#[tokio::test]
async fn read_only_share_lets_the_grantee_read_and_nothing_else() {
    let fx = Fixture::new();
    let mut alice = fx.login("alice").await;
    alice
        .request(Command::Mkd {
            path: "docs".into(),
        })
        .await;
    let file = pattern(50_000, 1);
    assert_eq!(alice.upload("/docs/a.txt", &file).await, Reply::Ok);
    let share = Command::Shar {
        path: "docs".into(),
        user: "bob".into(),
        rights: Rights::READ,
    };
    assert_eq!(alice.request(share).await, Reply::Ok);
    let missing_user = Command::Shar {
        path: "docs".into(),
        user: "nobody".into(),
        rights: Rights::READ,
    };
    assert_eq!(
        code(&alice.request(missing_user).await),
        ErrorCode::NOT_FOUND
    );

    let mut bob = fx.login("bob").await;
    let id = bob.send(Command::List {
        path: "/shared".into(),
    });
    assert_eq!(names(&bob.replies(id).await), ["alice"]);
    let id = bob.send(Command::List {
        path: "/shared/alice".into(),
    });
    assert_eq!(names(&bob.replies(id).await), ["docs"]);
    let id = bob.send(Command::List {
        path: "/shared/alice/docs".into(),
    });
    assert_eq!(names(&bob.replies(id).await), ["a.txt"]);
    assert_eq!(
        bob.download("/shared/alice/docs/a.txt").await.unwrap(),
        file
    );
    assert_eq!(
        bob.request(Command::Cwd {
            path: "/shared/alice/docs".into()
        })
        .await,
        path_reply("/shared/alice/docs")
    );
    assert_eq!(
        bob.download("a.txt").await.unwrap(),
        file,
        "relative to a shared cwd"
    );

    // Read-only: no overwrite, no delete, no create.
    assert_eq!(
        code(&bob.upload("a.txt", b"evil").await),
        ErrorCode::PERMISSION_DENIED
    );
    assert_eq!(
        code(&bob.upload("new.txt", b"evil").await),
        ErrorCode::PERMISSION_DENIED
    );
    assert_eq!(
        code(
            &bob.request(Command::Dele {
                path: "a.txt".into()
            })
            .await
        ),
        ErrorCode::PERMISSION_DENIED
    );
    assert_eq!(
        code(&bob.request(Command::Mkd { path: "sub".into() }).await),
        ErrorCode::PERMISSION_DENIED
    );
    assert_eq!(
        code(
            &bob.request(Command::Rename {
                from: "a.txt".into(),
                to: "b.txt".into()
            })
            .await
        ),
        ErrorCode::PERMISSION_DENIED
    );
    assert_eq!(
        std::fs::read(fx.home("alice").join("docs/a.txt")).unwrap(),
        file
    );
    assert!(!fx.home("alice").join("docs/new.txt").exists());

    // SHWM for bob, "shared by me" for alice.
    let id = bob.send(Command::Shwm);
    let Reply::Shares {
        entries,
        more: false,
    } = bob.reply(id).await
    else {
        panic!("no shares")
    };
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (
            entries[0].owner.as_str(),
            entries[0].path.as_str(),
            entries[0].rights
        ),
        ("alice", "/docs", Rights::READ)
    );
    let id = alice.send(Command::SharedByMe);
    let Reply::Shares { entries, .. } = alice.reply(id).await else {
        panic!("no shares")
    };
    assert_eq!(entries[0].grantee, "bob");

    // Unshared: gone, and it reads like a missing file.
    let unshare = Command::Unsh {
        path: "/docs".into(),
        user: "bob".into(),
    };
    assert_eq!(alice.request(unshare).await, Reply::Ok);
    assert_eq!(
        code(&bob.download("/shared/alice/docs/a.txt").await.unwrap_err()),
        ErrorCode::NOT_FOUND
    );
    let id = bob.send(Command::Shwm);
    assert_eq!(
        bob.reply(id).await,
        Reply::Shares {
            entries: vec![],
            more: false
        }
    );

    // A non-admin cannot delete in another's home; an admin can.
    assert_eq!(
        code(
            &bob.request(Command::Dele {
                path: "/shared/alice/docs/a.txt".into()
            })
            .await
        ),
        ErrorCode::NOT_FOUND
    );
    let mut root = fx.login("root").await;
    assert_eq!(
        root.request(Command::Dele {
            path: "/shared/alice/docs/a.txt".into()
        })
        .await,
        Reply::Ok
    );
    assert!(!fx.home("alice").join("docs/a.txt").exists());
    let log = fx.log();
    assert!(log.contains("event=share result=ok user=alice"), "{log}");
    assert!(log.contains("grantee=bob rights=r"), "{log}");
    assert!(log.contains("event=delete result=ok user=root"), "{log}");
    assert!(log.contains("owner=alice"), "{log}");
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_alike_and_are_delayed() {
    let fx = Fixture::new();
    let mut c = fx.connect().await;
    // Commands before login are refused.
    assert_eq!(
        code(&c.request(Command::Pwd).await),
        ErrorCode::NOT_LOGGED_IN
    );
    assert_eq!(
        code(&c.request(Command::List { path: "/".into() }).await),
        ErrorCode::NOT_LOGGED_IN
    );

    let started = Instant::now();
    let wrong = c.login("alice", "wrong").await;
    let first_delay = started.elapsed();
    let started = Instant::now();
    let unknown = c.login("mallory", PASSWORD).await;
    let second_delay = started.elapsed();
    assert_eq!(wrong, unknown, "the replies must not tell the cases apart");
    assert_eq!(code(&wrong), ErrorCode::AUTH_FAILED);
    // quick_policy: 100 ms, then 200 ms, then the connection is closed.
    assert!(first_delay.as_millis() >= 100, "{first_delay:?}");
    assert!(second_delay.as_millis() >= 200, "{second_delay:?}");
    let third = c.login("alice", "still wrong").await;
    assert_eq!(code(&third), ErrorCode::AUTH_FAILED);
    let reason = c.until_closed().await.expect("closed by the server");
    assert_eq!(reason.code, ErrorCode::AUTH_FAILED);

    let log = fx.log();
    assert!(
        log.contains("event=login result=denied user=alice"),
        "{log}"
    );
    assert!(
        log.contains("event=login result=denied user=mallory"),
        "{log}"
    );
    assert!(!log.contains("wrong"), "{log}");
}

#[tokio::test]
async fn registration_rules() {
    let fx = Fixture::new();
    let mut c = fx.connect().await;
    let long = "x".repeat(73);
    let reply = c
        .request(Command::Register {
            user: "dave".into(),
            password: long,
        })
        .await;
    assert_eq!(
        reply,
        Reply::error(
            ErrorCode::INVALID_PASSWORD,
            "passwords are 8 characters to 72 bytes long"
        )
    );
    // The policy's floor (8 characters by default, as NIST SP 800-63B suggests).
    let reply = c
        .request(Command::Register {
            user: "dave".into(),
            password: "1234567".into(),
        })
        .await;
    assert_eq!(
        reply,
        Reply::error(
            ErrorCode::INVALID_PASSWORD,
            "passwords are 8 characters to 72 bytes long"
        )
    );
    let reply = c
        .request(Command::Register {
            user: "Dave!".into(),
            password: "long enough".into(),
        })
        .await;
    assert_eq!(code(&reply), ErrorCode::INVALID_USER);
    let reply = c
        .request(Command::Register {
            user: "alice".into(),
            password: "long enough".into(),
        })
        .await;
    assert_eq!(code(&reply), ErrorCode::INVALID_USER, "taken");
    let reply = c
        .request(Command::Register {
            user: "dave".into(),
            password: "x".repeat(72),
        })
        .await;
    assert!(
        matches!(reply, Reply::Limits { .. }),
        "72 bytes is the longest password, and allowed"
    );
    let mut again = fx.connect().await;
    assert!(matches!(
        again.login("dave", &"x".repeat(72)).await,
        Reply::Limits { .. }
    ));
    let mut again = fx.connect().await;
    let reply = again.login("dave", &format!("{}y", "x".repeat(71))).await;
    assert_eq!(
        code(&reply),
        ErrorCode::AUTH_FAILED,
        "every one of the 72 bytes counts"
    );

    let closed = Fixture::with(sfs_server::context::SessionSettings::default());
    let mut c = closed.connect().await;
    let reply = c
        .request(Command::Register {
            user: "erin".into(),
            password: "long enough".into(),
        })
        .await;
    assert_eq!(code(&reply), ErrorCode::REGISTRATION_CLOSED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_registrations_of_one_name_have_one_winner() {
    let fx = Fixture::new();
    let mut tasks = Vec::new();
    for i in 0..50 {
        let mut c = fx.connect().await;
        tasks.push(tokio::spawn(async move {
            let reply = c
                .request(Command::Register {
                    user: "zed".into(),
                    password: format!("password {i}"),
                })
                .await;
            (i, reply)
        }));
    }
    let mut winners = 0;
    for task in tasks {
        let (_, reply) = task.await.unwrap();
        match reply {
            Reply::Limits { .. } => winners += 1,
            other => assert_eq!(code(&other), ErrorCode::INVALID_USER),
        }
    }
    assert_eq!(winners, 1);
}

#[tokio::test]
async fn hostile_paths_are_refused_and_change_nothing() {
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;
    let secret_dir = fx.dir.path().join("outside");
    std::fs::create_dir(&secret_dir).unwrap();
    std::fs::create_dir_all(fx.home("alice")).unwrap();
    std::fs::write(secret_dir.join("secret.txt"), b"TOP SECRET").unwrap();
    std::os::unix::fs::symlink(&secret_dir, fx.home("alice").join("link")).unwrap();
    let real_root = fx.dir.path().to_string_lossy().into_owned();

    let cases: &[(&str, ErrorCode)] = &[
        ("../../etc/passwd", ErrorCode::INVALID_PATH),
        ("a/../../x", ErrorCode::INVALID_PATH),
        ("/etc/passwd", ErrorCode::NOT_FOUND),
        ("%2e%2e/%2e%2e/etc/passwd", ErrorCode::NOT_FOUND),
        ("bad\0name", ErrorCode::INVALID_PATH),
        ("bad\nname", ErrorCode::INVALID_PATH),
        ("link/secret.txt", ErrorCode::PERMISSION_DENIED),
        (".sfs-upload-123", ErrorCode::INVALID_PATH),
    ];
    let long_name = "n".repeat(300);
    let deep = "d/".repeat(2000);
    let mut all: Vec<(String, ErrorCode)> =
        cases.iter().map(|(p, c)| (p.to_string(), *c)).collect();
    all.push((long_name, ErrorCode::INVALID_PATH));
    all.push((deep, ErrorCode::INVALID_PATH));
    for (path, expected) in &all {
        for command in [
            Command::Retr {
                path: path.clone(),
                offset: 0,
            },
            Command::Stor {
                path: path.clone(),
                size: 4,
            },
            Command::List { path: path.clone() },
            Command::Dele { path: path.clone() },
            Command::Mkd { path: path.clone() },
        ] {
            let is_stor = matches!(command, Command::Stor { .. });
            let id = if is_stor {
                c.send_stor(path, b"evil".to_vec())
            } else {
                c.send(command.clone())
            };
            let reply = c.reply(id).await;
            let Reply::Error { code: got, message } = &reply else {
                panic!("{command:?} was not refused: {reply:?}");
            };
            let writes = matches!(command, Command::Stor { .. } | Command::Mkd { .. });
            // Writing where nothing exists gets the same class of refusal.
            if !(writes && *expected == ErrorCode::NOT_FOUND) {
                assert_eq!(got, expected, "{command:?}: {message}");
            }
            assert!(!message.contains(&real_root), "{message} leaks a real path");
        }
    }
    assert_eq!(
        std::fs::read(secret_dir.join("secret.txt")).unwrap(),
        b"TOP SECRET"
    );
    assert_eq!(std::fs::read_dir(&secret_dir).unwrap().count(), 1);
    // Only what was there: the link. (/etc/passwd and %2e%2e names are plain
    // names inside the home and might have been created by MKD; they are not.)
    let mut left: Vec<String> = std::fs::read_dir(fx.home("alice"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert!(
        left.iter()
            .all(|n| n == "link" || n == "etc" || n.starts_with("%2e")),
        "{left:?}"
    );
    assert!(fx.leftover_uploads().is_empty());
}

#[tokio::test]
async fn a_source_with_many_failures_waits_even_with_the_right_password() {
    // Memory transports have no peer address, so every test connection counts as
    // one source: exactly the case of one host guessing over many connections.
    let policy = sfs_server::throttle::LoginPolicy {
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
        source_threshold: 3,
        source_penalty: Duration::from_millis(400),
        ..support::quick_policy()
    };
    let fx = Fixture::with_policy(sfs_server::context::SessionSettings::default(), policy);
    let mut c = fx.connect().await;
    let started = Instant::now();
    assert!(matches!(
        c.login("alice", PASSWORD).await,
        Reply::Limits { .. }
    ));
    let unpenalized = started.elapsed();
    for _ in 0..3 {
        let mut guesser = fx.connect().await;
        assert_eq!(
            code(&guesser.login("alice", "guess").await),
            ErrorCode::AUTH_FAILED
        );
    }
    let mut c = fx.connect().await;
    let started = Instant::now();
    assert!(matches!(
        c.login("alice", PASSWORD).await,
        Reply::Limits { .. }
    ));
    let penalized = started.elapsed();
    assert!(penalized >= Duration::from_millis(400), "{penalized:?}");
    assert!(unpenalized < Duration::from_millis(400), "{unpenalized:?}");
}

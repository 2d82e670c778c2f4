//! Sessions over the in-memory pair: login rules, commands, transfers, and the
//! attacks the record layer and transfer bookkeeping must catch.

use std::time::Duration;

use sha2::{Digest, Sha256};

use sfs_proto::control::{Command, Entry, EntryKind, ErrorCode, Reply, RequestId, TransferId};
use sfs_proto::session::{Event, Initiator};
use sfs_proto::testing::{End, Fault, Pair, TestPki};

fn pki() -> TestPki {
    TestPki::new(&["localhost"])
}

fn connected_pair(streams: u16) -> Pair {
    let mut pair = Pair::new(&pki(), "localhost", streams);
    pair.drive();
    pair
}

fn responses(events: &[Event]) -> Vec<(RequestId, Reply)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Response { id, reply } => Some((*id, reply.clone())),
            _ => None,
        })
        .collect()
}

fn reply_to(pair: &Pair, id: RequestId) -> Reply {
    responses(&pair.client_events)
        .into_iter()
        .find(|(r, _)| *r == id)
        .map(|(_, reply)| reply)
        .unwrap_or_else(|| panic!("no reply to {id:?}: {:?}", pair.client_events))
}

fn close_reason(events: &[Event]) -> Option<sfs_proto::session::CloseReason> {
    events.iter().find_map(|e| match e {
        Event::Closed(reason) => Some(reason.clone()),
        _ => None,
    })
}

fn test_data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn every_command_before_login_is_refused() {
    let mut pair = connected_pair(2);
    let commands = vec![
        Command::List { path: "".into() },
        Command::Retr {
            path: "a".into(),
            offset: 0,
        },
        Command::Stor {
            path: "a".into(),
            size: 1,
        },
        Command::Pwd,
        Command::Cwd { path: "/".into() },
        Command::Cdup,
        Command::Mkd { path: "d".into() },
        Command::Rmd { path: "d".into() },
        Command::Dele { path: "a".into() },
        Command::Rename {
            from: "a".into(),
            to: "b".into(),
        },
        Command::Size { path: "a".into() },
        Command::Stat { path: "a".into() },
        Command::Digest { path: "a".into() },
        Command::Shar {
            path: "a".into(),
            user: "bob".into(),
            rights: sfs_proto::control::Rights::READ,
        },
        Command::Unsh {
            path: "a".into(),
            user: "bob".into(),
        },
        Command::Shwm,
        Command::SharedByMe,
        Command::Status,
    ];
    let ids: Vec<_> = commands
        .into_iter()
        .map(|c| pair.client.send_command(c).unwrap())
        .collect();
    pair.drive();
    assert!(
        pair.server_requests().is_empty(),
        "server app saw a command"
    );
    for id in ids {
        assert!(
            matches!(
                reply_to(&pair, id),
                Reply::Error {
                    code: ErrorCode::NOT_LOGGED_IN,
                    ..
                }
            ),
            "{id:?}"
        );
    }
    assert!(
        pair.server.is_connected(),
        "refusals do not close the session"
    );
}

#[test]
fn commands_pipelined_behind_login_wait_for_its_outcome() {
    let mut pair = connected_pair(2);
    let login = pair
        .client
        .send_command(Command::Login {
            user: "alice".into(),
            password: "secret".into(),
        })
        .unwrap();
    let pwd = pair.client.send_command(Command::Pwd).unwrap();
    pair.drive();
    assert!(
        pair.server_requests().is_empty(),
        "PWD must wait for the login"
    );
    let requested = pair.server_events.iter().find_map(|e| match e {
        Event::LoginRequested {
            id,
            user,
            password,
            register,
        } => Some((*id, user.clone(), password.clone(), *register)),
        _ => None,
    });
    assert_eq!(
        requested,
        Some((login, "alice".into(), "secret".into(), false))
    );

    // A second login while one is pending is refused.
    let again = pair
        .client
        .send_command(Command::Login {
            user: "alice".into(),
            password: "guess".into(),
        })
        .unwrap();
    pair.drive();
    assert!(matches!(
        reply_to(&pair, again),
        Reply::Error {
            code: ErrorCode::BAD_REQUEST,
            ..
        }
    ));

    pair.server
        .reject_login(login, ErrorCode::AUTH_FAILED, "wrong user or password")
        .unwrap();
    pair.drive();
    assert!(matches!(
        reply_to(&pair, login),
        Reply::Error {
            code: ErrorCode::AUTH_FAILED,
            ..
        }
    ));
    assert!(matches!(
        reply_to(&pair, pwd),
        Reply::Error {
            code: ErrorCode::NOT_LOGGED_IN,
            ..
        }
    ));

    // Second try, with registration, succeeds and releases held commands.
    let register = pair
        .client
        .send_command(Command::Register {
            user: "carol".into(),
            password: "pw".into(),
        })
        .unwrap();
    let pwd = pair.client.send_command(Command::Pwd).unwrap();
    pair.drive();
    assert!(pair
        .server_events
        .iter()
        .any(|e| matches!(e, Event::LoginRequested { id, register: true, .. } if *id == register)));
    pair.server.accept_login(register).unwrap();
    pair.drive();
    assert!(matches!(
        reply_to(&pair, register),
        Reply::Limits {
            max_transfers: 16,
            max_requests: 64,
            ..
        }
    ));
    assert_eq!(pair.server_requests(), vec![(pwd, Command::Pwd)]);
    pair.server
        .respond(pwd, Reply::Path { path: "/".into() })
        .unwrap();
    pair.drive();
    assert_eq!(reply_to(&pair, pwd), Reply::Path { path: "/".into() });
    assert!(pair.server.is_logged_in());
}

#[test]
fn pipelined_requests_answered_out_of_order_with_multi_part_listing() {
    let mut pair = connected_pair(2);
    pair.login("alice");
    let list = pair
        .client
        .send_command(Command::List { path: "".into() })
        .unwrap();
    let size = pair
        .client
        .send_command(Command::Size { path: "f".into() })
        .unwrap();
    pair.drive();
    pair.server.respond(size, Reply::Size { size: 42 }).unwrap();
    let entry = |name: &str| Entry {
        name: name.into(),
        kind: EntryKind::File,
        size: 1,
        mtime: 0,
        mode: 0o644,
    };
    pair.server
        .respond(
            list,
            Reply::Listing {
                entries: vec![entry("a")],
                more: true,
            },
        )
        .unwrap();
    pair.server
        .respond(
            list,
            Reply::Listing {
                entries: vec![entry("b")],
                more: false,
            },
        )
        .unwrap();
    // The request is finished: another answer is a misuse.
    assert!(pair.server.respond(list, Reply::Ok).is_err());
    pair.drive();
    let got = responses(&pair.client_events);
    // The login's Ok, then the answers in the order the server gave them.
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[1], (size, Reply::Size { size: 42 }));
    assert_eq!(got[3].0, list);
    assert_eq!(pair.client.pending_requests(), 0);
}

#[test]
fn quit_closes_cleanly_even_before_login() {
    let mut pair = connected_pair(2);
    let quit = pair.client.send_command(Command::Quit).unwrap();
    pair.drive();
    assert_eq!(reply_to(&pair, quit), Reply::Ok);
    let client = close_reason(&pair.client_events).expect("client closed");
    assert_eq!(
        (client.by, client.code),
        (Initiator::Remote, ErrorCode::NO_ERROR)
    );
    let server = close_reason(&pair.server_events).expect("server closed");
    assert_eq!(
        (server.by, server.code),
        (Initiator::Remote, ErrorCode::NO_ERROR)
    );
    assert!(pair.client.send_command(Command::Pwd).is_err());
}

/// Starts a RETR of `data` and returns the transfer id.
fn start_download(pair: &mut Pair, data: &[u8], streams: u16) -> TransferId {
    pair.login("alice");
    let retr = pair
        .client
        .send_command(Command::Retr {
            path: "file".into(),
            offset: 0,
        })
        .unwrap();
    pair.drive();
    let transfer = pair
        .server
        .open_transfer(retr, 0, data.len() as u64, streams)
        .unwrap();
    pair.drive();
    assert!(matches!(reply_to(pair, retr), Reply::TransferOpen(open) if open.transfer == transfer));
    transfer
}

fn assemble(chunks: &[(TransferId, u64, Vec<u8>)], len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    for (_, offset, data) in chunks {
        out[*offset as usize..*offset as usize + data.len()].copy_from_slice(data);
    }
    out
}

#[test]
fn download_over_several_streams_with_interleaving() {
    let mut pair = connected_pair(5);
    pair.link.shuffle_streams = true;
    pair.link.seed(7);
    let data = test_data(3 * 1024 * 1024 + 12345);
    let transfer = start_download(&mut pair, &data, 4);
    pair.send_file(End::Server, transfer, &data, usize::MAX);
    let finished = pair.client_events.iter().find_map(|e| match e {
        Event::TransferFinished {
            transfer: t,
            length,
            sha256,
        } if *t == transfer => Some((*length, *sha256)),
        _ => None,
    });
    let digest: [u8; 32] = Sha256::digest(&data).into();
    assert_eq!(finished, Some((data.len() as u64, digest)));
    assert_eq!(assemble(&pair.client_chunks, data.len()), data);
    assert!(pair
        .server_events
        .iter()
        .any(|e| matches!(e, Event::TransferSent { transfer: t, .. } if *t == transfer)));
    assert_eq!(pair.client.open_transfers(), 0);
    assert_eq!(pair.server.open_transfers(), 0);
}

#[test]
fn resumed_download_starts_at_the_offset() {
    let mut pair = connected_pair(3);
    pair.login("alice");
    let data = test_data(200_000);
    let retr = pair
        .client
        .send_command(Command::Retr {
            path: "file".into(),
            offset: 150_000,
        })
        .unwrap();
    pair.drive();
    // An offset other than the requested one is a misuse the client catches, so
    // the server must use the client's offset.
    let transfer = pair.server.open_transfer(retr, 150_000, 50_000, 2).unwrap();
    pair.drive();
    pair.send_file(End::Server, transfer, &data, 20_000);
    let digest: [u8; 32] = Sha256::digest(&data[150_000..]).into();
    assert!(pair.client_events.iter().any(
        |e| matches!(e, Event::TransferFinished { length: 50_000, sha256, .. } if *sha256 == digest)
    ));
    assert!(pair
        .client_chunks
        .iter()
        .all(|(_, offset, _)| *offset >= 150_000));
}

#[test]
fn upload_and_final_ok() {
    let mut pair = connected_pair(3);
    pair.login("alice");
    let data = test_data(700_000);
    let stor = pair
        .client
        .send_command(Command::Stor {
            path: "up".into(),
            size: data.len() as u64,
        })
        .unwrap();
    pair.drive();
    // The server app may not open a transfer of another size than announced.
    assert!(pair.server.open_transfer(stor, 0, 5, 2).is_err());
    let transfer = pair
        .server
        .open_transfer(stor, 0, data.len() as u64, 8)
        .unwrap();
    pair.drive();
    let Reply::TransferOpen(open) = reply_to(&pair, stor) else {
        panic!("no transfer open");
    };
    assert_eq!(open.streams, 2, "clamped to the negotiated data streams");
    assert!(pair
        .client_events
        .iter()
        .any(|e| matches!(e, Event::CreditAvailable { transfer: t } if *t == transfer)));
    pair.send_file(End::Client, transfer, &data, 30_000);
    let digest: [u8; 32] = Sha256::digest(&data).into();
    assert!(pair.server_events.iter().any(
        |e| matches!(e, Event::TransferFinished { transfer: t, sha256, .. } if *t == transfer && *sha256 == digest)
    ));
    assert_eq!(assemble(&pair.server_chunks, data.len()), data);
    // The STOR request is still open until the server says the file is durable.
    assert_eq!(pair.client.pending_requests(), 1);
    pair.server.respond(stor, Reply::Ok).unwrap();
    pair.drive();
    assert_eq!(pair.client.pending_requests(), 0);
}

#[test]
fn empty_transfer_completes() {
    let mut pair = connected_pair(3);
    let transfer = start_download(&mut pair, &[], 2);
    pair.drive();
    let empty: [u8; 32] = Sha256::digest(b"").into();
    assert!(pair.client_events.iter().any(|e| matches!(
        e,
        Event::TransferFinished { transfer: t, length: 0, sha256 } if *t == transfer && *sha256 == empty
    )));
}

#[test]
fn receiver_buffer_stays_within_its_window() {
    let mut pair = connected_pair(3);
    let data = test_data(6 * 1024 * 1024);
    let transfer = start_download(&mut pair, &data, 2);
    // Without any delivery to the client, the server can send only up to the
    // window the client granted.
    let mut sent = 0;
    while pair.server.chunk_allowance(transfer) > 0 {
        let n = pair.server.chunk_allowance(transfer);
        let offset = pair.server.next_chunk_offset(transfer).unwrap() as usize;
        let mut buf = sfs_proto::record::chunk_buffer(n);
        buf.extend_from_slice(&data[offset..offset + n]);
        pair.server.send_chunk(transfer, buf).unwrap();
        sent += n;
    }
    assert!(sent < data.len());
    assert_eq!(
        sent as u64,
        sfs_proto::transfer::DEFAULT_WINDOW.min(data.len() as u64)
    );
}

#[test]
fn abort_reaches_the_other_side() {
    let mut pair = connected_pair(3);
    let data = test_data(300_000);
    let transfer = start_download(&mut pair, &data, 2);
    pair.client
        .abort_transfer(transfer, ErrorCode::ABORTED, "user pressed ^C")
        .unwrap();
    pair.drive();
    assert!(pair.server_events.iter().any(|e| matches!(
        e,
        Event::TransferFailed { transfer: t, by: Initiator::Remote, code: ErrorCode::ABORTED, .. } if *t == transfer
    )));
    assert_eq!(pair.server.chunk_allowance(transfer), 0);
    assert!(pair.server.is_connected());
}

/// Sends a download of `data` while `fault` hits the server's data stream 1, and
/// returns the client's close reason and the bytes delivered before it.
fn download_with_fault(
    fault: Fault,
    data_len: usize,
) -> (Option<sfs_proto::session::CloseReason>, Pair) {
    let mut pair = connected_pair(3);
    let data = test_data(data_len);
    let transfer = start_download(&mut pair, &data, 2);
    pair.link.inject(fault);
    pair.send_file(End::Server, transfer, &data, 10_000);
    (close_reason(&pair.client_events), pair)
}

fn assert_record_failure(fault: Fault, data_len: usize) {
    let (reason, pair) = download_with_fault(fault.clone(), data_len);
    let reason = reason.unwrap_or_else(|| panic!("{fault:?} not detected"));
    assert_eq!(
        reason.code,
        ErrorCode::RECORD_FAILURE,
        "{fault:?}: {reason:?}"
    );
    assert!(
        !pair
            .client_events
            .iter()
            .any(|e| matches!(e, Event::TransferFinished { .. })),
        "{fault:?}: transfer finished anyway"
    );
    // The server was told why.
    let server = close_reason(&pair.server_events).expect("server closed");
    assert_eq!(
        (server.by, server.code),
        (Initiator::Remote, ErrorCode::RECORD_FAILURE)
    );
}

#[test]
fn dropped_record_detected() {
    assert_record_failure(
        Fault::Drop {
            from: End::Server,
            stream: 1,
        },
        100_000,
    );
}

#[test]
fn dropped_last_record_of_a_stream_detected_by_its_end() {
    // 10 chunks of 10 000 bytes round-robin over 2 streams: the 5th record on
    // stream 1 is its last chunk, and only its End record follows it.
    let mut pair = connected_pair(3);
    let data = test_data(100_000);
    let transfer = start_download(&mut pair, &data, 2);
    pair.link.inject_after(
        Fault::Drop {
            from: End::Server,
            stream: 1,
        },
        4,
    );
    pair.send_file(End::Server, transfer, &data, 10_000);
    let reason = close_reason(&pair.client_events).expect("drop not detected");
    assert_eq!(reason.code, ErrorCode::RECORD_FAILURE);
    assert!(
        reason.reason.contains("sequence 5, expected 4"),
        "{}",
        reason.reason
    );
    assert!(!pair
        .client_events
        .iter()
        .any(|e| matches!(e, Event::TransferFinished { .. })));
}

#[test]
fn replayed_record_detected() {
    assert_record_failure(
        Fault::Duplicate {
            from: End::Server,
            stream: 1,
        },
        100_000,
    );
}

#[test]
fn reordered_records_in_a_stream_detected() {
    assert_record_failure(
        Fault::SwapWithNext {
            from: End::Server,
            stream: 2,
        },
        100_000,
    );
}

#[test]
fn corrupted_record_detected_and_no_plaintext_delivered() {
    for bit in [0, 7, 8, 80, 95, 200, 4000, 10_000 * 8 + 1] {
        let (reason, pair) = download_with_fault(
            Fault::Corrupt {
                from: End::Server,
                stream: 2,
                bit,
            },
            30_000,
        );
        let reason = reason.unwrap_or_else(|| panic!("bit {bit} not detected"));
        assert_eq!(reason.code, ErrorCode::RECORD_FAILURE, "bit {bit}");
        // Records go out in offset order: only the chunk before the corrupt one
        // (offset 10 000, on stream 2) was delivered, nothing from or after it.
        let offsets: Vec<u64> = pair.client_chunks.iter().map(|c| c.1).collect();
        assert_eq!(offsets, vec![0], "bit {bit}");
    }
}

#[test]
fn data_before_login_is_a_violation() {
    let mut pair = connected_pair(2);
    let mut bogus = vec![1u8; 64];
    assert!(pair
        .server
        .handle_message(1, &mut bogus, pair.now)
        .is_none());
    pair.drive();
    let reason = close_reason(&pair.server_events).expect("closed");
    assert_eq!(reason.code, ErrorCode::PROTOCOL_VIOLATION);
    let client = close_reason(&pair.client_events).expect("client told");
    assert_eq!(
        (client.by, client.code),
        (Initiator::Remote, ErrorCode::PROTOCOL_VIOLATION)
    );
}

#[test]
fn message_on_unnegotiated_stream_is_a_violation() {
    let mut pair = connected_pair(2);
    pair.login("alice");
    let mut bogus = vec![1u8; 64];
    pair.client.handle_message(5, &mut bogus, pair.now);
    let Some(Event::Closed(reason)) = pair.client.poll_event() else {
        panic!("not closed");
    };
    assert_eq!(reason.code, ErrorCode::PROTOCOL_VIOLATION);
}

#[test]
fn garbage_on_stream_zero_closes_with_tls_failure() {
    let mut pair = connected_pair(2);
    let mut garbage = b"GET / HTTP/1.1\r\n\r\n".to_vec();
    pair.server.handle_message(0, &mut garbage, pair.now);
    pair.drive();
    let reason = close_reason(&pair.server_events).expect("closed");
    assert_eq!(reason.code, ErrorCode::TLS_FAILURE);
    // Sticky: later input is ignored, nothing more happens.
    let mut more = vec![0u8; 10];
    pair.server.handle_message(0, &mut more, pair.now);
    assert!(pair.server.poll_event().is_none());
}

#[test]
fn login_grace_and_idle_timeouts() {
    let mut pair = connected_pair(2);
    pair.advance(Duration::from_secs(31));
    let reason = close_reason(&pair.server_events).expect("closed without login");
    assert_eq!(reason.code, ErrorCode::TIMED_OUT);
    let client = close_reason(&pair.client_events).expect("client told");
    assert_eq!(client.code, ErrorCode::TIMED_OUT);

    let mut pair = connected_pair(2);
    pair.login("alice");
    pair.advance(Duration::from_secs(300));
    assert!(pair.server.is_connected(), "logged in: no pre-auth timer");
    let pwd = pair.client.send_command(Command::Pwd).unwrap();
    pair.drive();
    // A request in flight stops the idle timer.
    pair.advance(Duration::from_secs(3000));
    assert!(pair.server.is_connected());
    pair.server
        .respond(pwd, Reply::Path { path: "/".into() })
        .unwrap();
    pair.drive();
    pair.advance(Duration::from_secs(601));
    assert_eq!(
        close_reason(&pair.server_events).map(|r| r.code),
        Some(ErrorCode::TIMED_OUT)
    );
}

#[test]
fn transport_loss_closes_without_finishing_transfers() {
    let mut pair = connected_pair(3);
    let data = test_data(200_000);
    let transfer = start_download(&mut pair, &data, 2);
    pair.client.handle_transport_closed();
    pair.drive();
    let reason = close_reason(&pair.client_events).expect("closed");
    assert_eq!(reason.code, ErrorCode::TRANSPORT_CLOSED);
    assert_eq!(pair.client.open_transfers(), 0);
    let _ = transfer;
}

#[test]
fn many_large_replies_can_be_queued_before_draining() {
    let mut pair = connected_pair(2);
    pair.login("alice");
    let list = pair
        .client
        .send_command(Command::List { path: "".into() })
        .unwrap();
    pair.drive();
    let entries: Vec<Entry> = (0..200)
        .map(|i| Entry {
            name: format!("{i:0>250}"),
            kind: EntryKind::File,
            size: i,
            mtime: 0,
            mode: 0o600,
        })
        .collect();
    for part in 0..8 {
        pair.server
            .respond(
                list,
                Reply::Listing {
                    entries: entries.clone(),
                    more: part < 7,
                },
            )
            .unwrap();
    }
    pair.drive();
    let parts = responses(&pair.client_events)
        .into_iter()
        .filter(|(id, _)| *id == list)
        .count();
    assert_eq!(parts, 8);
    assert_eq!(pair.client.pending_requests(), 0);
}

#[test]
fn records_spliced_from_another_session_or_stream_are_refused() {
    let data = test_data(100_000);
    let seal_first_two = |pair: &mut Pair, transfer: TransferId| {
        let mut out = Vec::new();
        for _ in 0..2 {
            let offset = pair.server.next_chunk_offset(transfer).unwrap() as usize;
            let mut buf = sfs_proto::record::chunk_buffer(1000);
            buf.extend_from_slice(&data[offset..offset + 1000]);
            out.push(pair.server.send_chunk(transfer, buf).unwrap());
        }
        out
    };

    // Same transfer id, same stream, same sequence number, other session.
    let mut a = connected_pair(3);
    let ta = start_download(&mut a, &data, 2);
    let mut b = connected_pair(3);
    let tb = start_download(&mut b, &data, 2);
    assert_eq!(ta, tb);
    let from_a = seal_first_two(&mut a, ta);
    let _ = seal_first_two(&mut b, tb);
    let mut spliced = from_a[0].bytes.clone();
    assert_eq!(from_a[0].stream, 1);
    assert!(b.client.handle_message(1, &mut spliced, b.now).is_none());
    b.drive();
    assert_eq!(
        close_reason(&b.client_events).map(|r| r.code),
        Some(ErrorCode::RECORD_FAILURE)
    );

    // Same session, the stream-2 record delivered on stream 1.
    let mut c = connected_pair(3);
    let tc = start_download(&mut c, &data, 2);
    let records = seal_first_two(&mut c, tc);
    assert_eq!(records[1].stream, 2);
    let mut moved = records[1].bytes.clone();
    // Give it the sequence number stream 1 expects, so only the key and AAD differ.
    moved[2..10].copy_from_slice(&0u64.to_be_bytes());
    assert!(c.client.handle_message(1, &mut moved, c.now).is_none());
    c.drive();
    assert_eq!(
        close_reason(&c.client_events).map(|r| r.code),
        Some(ErrorCode::RECORD_FAILURE)
    );
    assert!(c.client_chunks.is_empty());
}

/// The application sends the chunk `send_chunk` returns at once, but drains the
/// End records with `poll_transmit` later. A chunk of another transfer sealed in
/// between on the same stream must not overtake them in sequence order.
#[test]
fn a_chunk_sealed_before_the_previous_transfers_end_is_drained_stays_in_order() {
    let mut pair = connected_pair(2);
    let small = test_data(1000);
    let large = test_data(5000);
    pair.login("alice");
    let mut retr = || {
        pair.client
            .send_command(Command::Retr {
                path: "file".into(),
                offset: 0,
            })
            .unwrap()
    };
    let (first, second) = (retr(), retr());
    pair.drive();
    let a = pair
        .server
        .open_transfer(first, 0, small.len() as u64, 1)
        .unwrap();
    let b = pair
        .server
        .open_transfer(second, 0, large.len() as u64, 1)
        .unwrap();
    pair.drive(); // the client's credit arrives

    let seal = |pair: &mut Pair, transfer: TransferId, data: &[u8], len: usize| {
        let offset = pair.server.next_chunk_offset(transfer).unwrap() as usize;
        let mut buf = sfs_proto::record::chunk_buffer(len);
        buf.extend_from_slice(&data[offset..offset + len]);
        pair.server.send_chunk(transfer, buf).unwrap()
    };
    let last_of_a = seal(&mut pair, a, &small, small.len());
    let first_of_b = seal(&mut pair, b, &large, 1000);
    assert_eq!((last_of_a.stream, first_of_b.stream), (1, 1));
    pair.link.send(End::Server, 1, last_of_a.bytes).unwrap();
    pair.link.send(End::Server, 1, first_of_b.bytes).unwrap();
    pair.drive(); // now A's End record goes out, after B's chunk
    pair.send_file(End::Server, b, &large, usize::MAX);

    assert_eq!(close_reason(&pair.client_events), None);
    let finished: Vec<TransferId> = pair
        .client_events
        .iter()
        .filter_map(|e| match e {
            Event::TransferFinished { transfer, .. } => Some(*transfer),
            _ => None,
        })
        .collect();
    assert_eq!(finished, vec![a, b]);
}

/// A sender whose End records carry a digest that does not match the data it sent
/// (every record authenticates): the receiver fails the transfer, never finishes it.
#[test]
fn a_transfer_whose_digest_does_not_match_fails() {
    let mut pair = connected_pair(3);
    let data = test_data(200_000);
    let transfer = start_download(&mut pair, &data, 2);
    assert!(pair.server.falsify_outgoing_digest(transfer));
    pair.send_file(End::Server, transfer, &data, usize::MAX);

    assert!(!pair
        .client_events
        .iter()
        .any(|e| matches!(e, Event::TransferFinished { .. })));
    let failed = pair.client_events.iter().find_map(|e| match e {
        Event::TransferFailed {
            transfer: t, code, ..
        } if *t == transfer => Some(*code),
        _ => None,
    });
    assert_eq!(failed, Some(ErrorCode::TRANSFER_FAILED));
    // One bad transfer does not end the session.
    assert_eq!(close_reason(&pair.client_events), None);
    assert_eq!(pair.client.open_transfers(), 0);
}

/// The data records follow the TLS suite: a client that lists ChaCha20 first
/// (one without AES instructions does) gets ChaCha20-Poly1305 records, one that
/// lists AES first gets AES-256-GCM, and a download round-trips under each.
#[test]
fn records_use_the_aead_of_the_negotiated_suite() {
    use sfs_proto::record::RecordAead;
    use sfs_proto::session::{SessionConfig, StreamCounts};
    let pki = pki();
    for (aead, suite) in [
        (
            RecordAead::ChaCha20Poly1305,
            "TLS13_CHACHA20_POLY1305_SHA256",
        ),
        (RecordAead::Aes256Gcm, "TLS13_AES_256_GCM_SHA384"),
    ] {
        let client = sfs_proto::tls::client_config_preferring(pki.ca_pem.as_bytes(), aead).unwrap();
        let mut pair = Pair::with_configs(
            client,
            pki.server_config(),
            "localhost",
            SessionConfig::new(StreamCounts {
                outbound: 3,
                inbound: 3,
            }),
        );
        pair.drive();
        for side in [pair.client.tls_negotiated(), pair.server.tls_negotiated()] {
            assert_eq!(side.map(|(_, s)| s).as_deref(), Some(suite), "{aead:?}");
        }
        let data = test_data(300_000);
        let transfer = start_download(&mut pair, &data, 2);
        pair.send_file(End::Server, transfer, &data, usize::MAX);
        assert_eq!(assemble(&pair.client_chunks, data.len()), data, "{aead:?}");
        assert!(
            pair.client_events.iter().any(
                |e| matches!(e, Event::TransferFinished { transfer: t, .. } if *t == transfer)
            ),
            "{aead:?}"
        );
    }
}

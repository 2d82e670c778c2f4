//! Control-message codec: a round trip of every message, exact bytes of a few,
//! and property tests that no input makes a decoder panic.

use proptest::prelude::*;

use sfs_proto::codec::DecodeError;
use sfs_proto::control::{
    check_frame, Command, Entry, EntryKind, ErrorCode, FrameDecoder, Message, Reply, RequestId,
    Rights, ShareEntry, TransferAbort, TransferCredit, TransferId, TransferOpen,
    MAX_CONTROL_MESSAGE, MAX_PATH_LEN,
};
use sfs_proto::record::{Direction, RecordSecret};

fn all_commands() -> Vec<Command> {
    let p = || "dir/ü file".to_string();
    vec![
        Command::Login {
            user: "alice".into(),
            password: "pässword".into(),
        },
        Command::Register {
            user: "bob".into(),
            password: "x".repeat(256),
        },
        Command::List {
            path: String::new(),
        },
        Command::Retr {
            path: p(),
            offset: 12,
        },
        Command::Stor {
            path: p(),
            size: u64::MAX,
        },
        Command::Pwd,
        Command::Cwd { path: p() },
        Command::Cdup,
        Command::Mkd { path: p() },
        Command::Rmd { path: p() },
        Command::Dele { path: p() },
        Command::Rename {
            from: p(),
            to: "x".repeat(MAX_PATH_LEN),
        },
        Command::Size { path: p() },
        Command::Stat { path: p() },
        Command::Digest { path: p() },
        Command::Shar {
            path: p(),
            user: "carol".into(),
            rights: Rights::READ | Rights::DELETE,
        },
        Command::Unsh {
            path: p(),
            user: "carol".into(),
        },
        Command::Shwm,
        Command::SharedByMe,
        Command::Quit,
        Command::Status,
        Command::Noop,
        Command::Quot,
        Command::Assoc,
        Command::Detach { index: 2 },
        Command::Mfmt {
            path: p(),
            mtime: -1_700_000_000,
        },
    ]
}

fn entry(name: &str) -> Entry {
    Entry {
        name: name.into(),
        kind: EntryKind::Dir,
        size: 4096,
        mtime: -5,
        mode: 0o755,
    }
}

fn all_replies() -> Vec<Reply> {
    vec![
        Reply::Ok,
        Reply::Listing {
            entries: vec![entry("a"), entry("b")],
            more: true,
        },
        Reply::Listing {
            entries: vec![],
            more: false,
        },
        Reply::Path { path: "/x".into() },
        Reply::Size { size: 9 },
        Reply::Stat { entry: entry("s") },
        Reply::Digest {
            size: 3,
            sha256: [0xab; 32],
        },
        Reply::Shares {
            entries: vec![ShareEntry {
                owner: "alice".into(),
                path: "/docs".into(),
                grantee: "bob".into(),
                rights: Rights::ALL,
            }],
            more: false,
        },
        Reply::TransferOpen(TransferOpen {
            transfer: TransferId(3),
            offset: 10,
            length: 20,
            streams: 4,
            associations: 0b101,
        }),
        Reply::ServerStatus {
            user: "alice".into(),
            cwd: "/".into(),
            admin: true,
            transfers: 2,
        },
        Reply::Quota {
            used_bytes: 5 << 30,
            limit_bytes: 10 << 30,
            used_files: 12,
            limit_files: 0,
            reserved_bytes: 1 << 20,
            max_file_size: u64::MAX,
        },
        Reply::Limits {
            max_transfers: 32,
            max_requests: 64,
            transfer_window: 2 << 20,
            connection_window: u64::MAX,
            max_associations: 8,
        },
        Reply::AssocTicket {
            index: 3,
            ticket: [0xa5; 16],
        },
        Reply::error(ErrorCode::NOT_FOUND, "no such file"),
        Reply::error(ErrorCode::QUOTA_EXCEEDED, "over quota"),
        Reply::error(ErrorCode(0x7777), "a code from a newer version"),
    ]
}

fn all_messages() -> Vec<Message> {
    let mut out: Vec<Message> = all_commands()
        .into_iter()
        .enumerate()
        .map(|(i, command)| Message::Request {
            id: RequestId(i as u32),
            command,
        })
        .collect();
    out.extend(all_replies().into_iter().map(|reply| Message::Response {
        id: RequestId(u32::MAX),
        reply,
    }));
    out.push(Message::TransferCredit(TransferCredit {
        transfer: TransferId(1),
        limit: 1 << 40,
    }));
    out.push(Message::TransferAbort(TransferAbort {
        transfer: TransferId(1),
        code: ErrorCode::ABORTED,
        reason: "cancelled".into(),
    }));
    out.push(Message::Close {
        code: ErrorCode::PROTOCOL_VIOLATION,
        reason: String::new(),
    });
    out
}

#[test]
fn every_message_round_trips_through_the_frame_decoder() {
    let messages = all_messages();
    let mut stream = Vec::new();
    for m in &messages {
        m.encode(&mut stream).unwrap();
    }
    // Feed in awkward pieces: incomplete frames are a normal state.
    let mut decoder = FrameDecoder::new();
    let mut decoded = Vec::new();
    for piece in stream.chunks(7) {
        decoder.push(piece);
        while let Some(m) = decoder.next_message().unwrap() {
            decoded.push(m);
        }
    }
    assert_eq!(decoded, messages);
    assert_eq!(decoder.buffered(), 0);
}

#[test]
fn exact_bytes_of_a_request() {
    let frame = Message::Request {
        id: RequestId(0x0102_0304),
        command: Command::Cwd { path: "ab".into() },
    }
    .to_frame()
    .unwrap();
    assert_eq!(
        frame,
        [0, 0, 0, 10, 1, 0x07, 1, 2, 3, 4, 0, 2, b'a', b'b'],
        "length, version, type CWD, request id, path"
    );
}

#[test]
fn exact_bytes_of_the_association_messages() {
    let body = |message: Message| message.to_frame().unwrap()[4..].to_vec();
    assert_eq!(
        body(Message::Request {
            id: RequestId(1),
            command: Command::Assoc
        }),
        [1, 0x1c, 0, 0, 0, 1]
    );
    assert_eq!(
        body(Message::Request {
            id: RequestId(1),
            command: Command::Detach { index: 3 }
        }),
        [1, 0x1d, 0, 0, 0, 1, 3]
    );
    let ticket = body(Message::Response {
        id: RequestId(1),
        reply: Reply::AssocTicket {
            index: 2,
            ticket: [9; 16],
        },
    });
    assert_eq!(ticket[..7], [1, 0x4b, 0, 0, 0, 1, 2]);
    assert_eq!(ticket[7..], [9; 16]);
    assert_eq!(
        ErrorCode::ASSOCIATION_LIMIT.name(),
        Some("ASSOCIATION_LIMIT")
    );
    assert_eq!(ErrorCode::ASSOCIATION_LOST, ErrorCode(0x0017));
}

#[test]
fn limits_without_max_associations_read_as_one() {
    let limits = Reply::Limits {
        max_transfers: 4,
        max_requests: 8,
        transfer_window: 1,
        connection_window: 2,
        max_associations: 5,
    };
    let full = Message::Response {
        id: RequestId(1),
        reply: limits,
    }
    .to_frame()
    .unwrap();
    assert_eq!(*full.last().unwrap(), 5, "the field goes last");
    let older = &full[4..full.len() - 1];
    match Message::decode(older).unwrap() {
        Message::Response {
            reply: Reply::Limits {
                max_associations, ..
            },
            ..
        } => assert_eq!(max_associations, 1),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_transfer_open_without_association_0_is_refused() {
    let open = TransferOpen {
        transfer: TransferId(1),
        offset: 0,
        length: 1,
        streams: 1,
        associations: 0b110,
    };
    let frame = Message::Response {
        id: RequestId(1),
        reply: Reply::TransferOpen(open),
    }
    .to_frame()
    .unwrap();
    assert_eq!(
        Message::decode(&frame[4..]),
        Err(DecodeError::InvalidValue("transfer associations"))
    );
}

#[test]
fn limits_are_enforced_on_both_sides() {
    let long_path = Command::Cwd {
        path: "x".repeat(MAX_PATH_LEN + 1),
    };
    let err = Message::Request {
        id: RequestId(1),
        command: long_path,
    }
    .to_frame()
    .unwrap_err();
    assert_eq!(err.to_string(), "path is longer than its limit");

    // A frame announcing more than the limit is refused before its body arrives.
    let header = ((MAX_CONTROL_MESSAGE + 1) as u32).to_be_bytes();
    assert_eq!(
        check_frame(&header),
        Err(DecodeError::TooLong("control message"))
    );
    assert_eq!(check_frame(&header[..3]), Ok(None));

    // A listing too big for one message is an encode error, not a huge frame.
    let entries = (0..2000).map(|i| entry(&format!("{i:0>200}"))).collect();
    let big = Message::Response {
        id: RequestId(1),
        reply: Reply::Listing {
            entries,
            more: false,
        },
    };
    assert!(big.to_frame().is_err());
    let mut out = vec![9];
    assert!(big.encode(&mut out).is_err());
    assert_eq!(out, vec![9], "a failed encode leaves the buffer as it was");
}

#[test]
fn malformed_bodies_give_clean_errors() {
    let body = |bytes: &[u8]| Message::decode(bytes);
    assert_eq!(body(&[]), Err(DecodeError::Truncated));
    assert_eq!(
        body(&[2, 0x06, 0, 0, 0, 1]),
        Err(DecodeError::UnsupportedVersion(2))
    );
    assert_eq!(
        body(&[1, 0x3f, 0, 0, 0, 1]),
        Err(DecodeError::UnknownType(0x3f))
    );
    assert_eq!(body(&[1, 0xff]), Err(DecodeError::UnknownType(0xff)));
    assert_eq!(
        body(&[1, 0x06, 0, 0, 0, 1, 0]),
        Err(DecodeError::TrailingBytes(1))
    );
    assert_eq!(
        body(&[1, 0x07, 0, 0, 0, 1, 0, 2, 0xff, 0xfe]),
        Err(DecodeError::InvalidUtf8("path"))
    );
    assert_eq!(
        body(&[1, 0x10, 0, 0, 0, 1, 0, 0, 0, 0, 0x10]),
        Err(DecodeError::InvalidValue("rights"))
    );
    // A listing claiming 65535 entries with none present does not allocate them.
    assert_eq!(
        body(&[1, 0x41, 0, 0, 0, 1, 0, 0xff, 0xff]),
        Err(DecodeError::Truncated)
    );
    // A transfer whose end overflows u64.
    let mut open = vec![1, 0x47, 0, 0, 0, 1, 0, 0, 0, 1];
    open.extend_from_slice(&u64::MAX.to_be_bytes());
    open.extend_from_slice(&1u64.to_be_bytes());
    open.extend_from_slice(&[0, 1, 0, 1]);
    assert_eq!(
        body(&open),
        Err(DecodeError::InvalidValue("transfer length"))
    );
}

#[test]
fn passwords_never_appear_in_debug_output() {
    let login = Command::Login {
        user: "alice".into(),
        password: "hunter2".into(),
    };
    assert!(!format!("{login:?}").contains("hunter2"));
    assert!(format!("{login:?}").contains("alice"));
}

#[test]
fn error_codes_and_rights_display() {
    assert_eq!(ErrorCode::NOT_FOUND.to_string(), "not found (0x0007)");
    assert_eq!(format!("{:?}", ErrorCode::NOT_FOUND), "NOT_FOUND");
    assert_eq!(format!("{:?}", ErrorCode(0x4242)), "ErrorCode(0x4242)");
    assert!(ErrorCode::RECORD_FAILURE.is_session_fault());
    assert!(!ErrorCode::AUTH_FAILED.is_session_fault());
    assert_eq!((Rights::READ | Rights::CREATE).to_string(), "r-c-");
    assert_eq!(Rights::from_bits(0x10), None);
}

proptest! {
    #[test]
    fn random_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Message::decode(&bytes);
    }

    #[test]
    fn random_bodies_with_valid_header_never_panic(
        ty in any::<u8>(),
        rest in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut bytes = vec![1, ty];
        bytes.extend(rest);
        // Whatever decodes must re-encode to the same bytes: one encoding per message.
        if let Ok(m) = Message::decode(&bytes) {
            let frame = m.to_frame().unwrap();
            prop_assert_eq!(&frame[4..], &bytes[..]);
        }
    }

    #[test]
    fn random_streams_never_panic_the_frame_decoder(
        pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16),
    ) {
        let mut decoder = FrameDecoder::new();
        'outer: for piece in pieces {
            decoder.push(&piece);
            loop {
                match decoder.next_message() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => break 'outer,
                }
            }
        }
    }

    #[test]
    fn mutated_valid_messages_never_panic(index in 0usize..40, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let messages = all_messages();
        let mut frame = messages[index % messages.len()].to_frame().unwrap();
        for (at, value) in flips {
            let at = at % frame.len();
            frame[at] = value;
        }
        let mut decoder = FrameDecoder::new();
        decoder.push(&frame);
        let _ = decoder.next_message();
    }

    #[test]
    fn random_records_never_open(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let secret = RecordSecret::from_exporter(&[7; 32]);
        let mut opener = secret.opener(Direction::ServerToClient, 0, 1);
        let mut buf = bytes;
        prop_assert!(opener.open(&mut buf).is_err());
    }
}

#[test]
fn debug_output_reads_like_a_derived_debug() {
    use sfs_proto::control::{TransferId, TransferOpen};
    assert_eq!(format!("{:?}", Command::Pwd), "Pwd");
    assert_eq!(
        format!(
            "{:?}",
            Command::Retr {
                path: "a".into(),
                offset: 3
            }
        ),
        r#"Retr { path: "a", offset: 3 }"#
    );
    assert_eq!(
        format!(
            "{:?}",
            Command::Login {
                user: "alice".into(),
                password: "hunter2".into()
            }
        ),
        r#"Login { user: "alice", .. }"#
    );
    assert_eq!(format!("{:?}", Reply::Ok), "Ok");
    let open = TransferOpen {
        transfer: TransferId(7),
        offset: 0,
        length: 9,
        streams: 2,
        associations: 1,
    };
    assert_eq!(
        format!("{:?}", Reply::TransferOpen(open)),
        "TransferOpen(TransferOpen { transfer: T7, offset: 0, length: 9, streams: 2, associations: 1 })"
    );
}

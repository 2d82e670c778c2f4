//! Scripted mock peers (as in h2's tests): raw TLS plus hand-made frames, to send
//! what a well-behaved session never would.

use std::time::Instant;

use rustls::pki_types::ServerName;

use sfs_proto::control::{
    Command, ErrorCode, FrameDecoder, Message, Reply, RequestId, TransferCredit, TransferId,
    TransferOpen,
};
use sfs_proto::session::{
    ClientSession, Event, Initiator, ServerSession, SessionConfig, StreamCounts,
};
use sfs_proto::testing::TestPki;
use sfs_proto::tls::TlsDriver;

fn config() -> SessionConfig {
    SessionConfig::new(StreamCounts {
        outbound: 3,
        inbound: 3,
    })
}

/// One side of TLS driven by hand.
struct Mock {
    tls: TlsDriver,
    plaintext: Vec<u8>,
    frames: FrameDecoder,
}

impl Mock {
    fn received(&mut self) -> Vec<Message> {
        self.frames.push(&self.plaintext);
        self.plaintext.clear();
        let mut out = Vec::new();
        while let Ok(Some(m)) = self.frames.next_message() {
            out.push(m);
        }
        out
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.tls.write_plaintext(bytes).unwrap();
    }

    fn send(&mut self, message: &Message) {
        self.send_raw(&message.to_frame().unwrap());
    }
}

/// Pumps stream-0 bytes both ways between a mock and a server session.
fn pump_server(mock: &mut Mock, server: &mut ServerSession, now: Instant) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        let mut progress = false;
        while let Some(msg) = mock.tls.poll_message() {
            let mut msg = msg;
            server.handle_message(0, &mut msg, now);
            progress = true;
        }
        while let Some(t) = server.poll_transmit() {
            if t.stream == 0 {
                let _ = mock.tls.handle_message(&t.bytes, &mut mock.plaintext);
            }
            progress = true;
        }
        while let Some(e) = server.poll_event() {
            events.push(e);
        }
        if !progress {
            return events;
        }
    }
}

fn mock_client_and_server() -> (Mock, ServerSession, Instant) {
    let pki = TestPki::new(&["localhost"]);
    let now = Instant::now();
    let server = ServerSession::new(pki.server_config(), config(), now).unwrap();
    let tls = TlsDriver::client(
        pki.client_config(),
        ServerName::try_from("localhost").unwrap(),
    )
    .unwrap();
    let mut mock = Mock {
        tls,
        plaintext: Vec::new(),
        frames: FrameDecoder::new(),
    };
    let mut server = server;
    let events = pump_server(&mut mock, &mut server, now);
    assert_eq!(events, vec![Event::Connected]);
    (mock, server, now)
}

fn login(mock: &mut Mock, server: &mut ServerSession, now: Instant) {
    mock.send(&Message::Request {
        id: RequestId(1),
        command: Command::Login {
            user: "alice".into(),
            password: "pw".into(),
        },
    });
    let events = pump_server(mock, server, now);
    assert!(matches!(events[..], [Event::LoginRequested { .. }]));
    server.accept_login(RequestId(1)).unwrap();
    pump_server(mock, server, now);
    let config = config();
    assert_eq!(
        mock.received(),
        vec![Message::Response {
            id: RequestId(1),
            reply: Reply::Limits {
                max_transfers: config.max_transfers as u32,
                max_requests: config.max_pending_requests as u32,
                transfer_window: config.transfer_window,
                connection_window: config.connection_window,
                max_associations: 1,
            }
        }]
    );
}

/// Sends `bytes` as plaintext and expects the server to close with `code`, and
/// to tell the mock so.
fn expect_server_close(bytes: &[u8], code: ErrorCode, logged_in: bool) {
    let (mut mock, mut server, now) = mock_client_and_server();
    if logged_in {
        login(&mut mock, &mut server, now);
    }
    mock.send_raw(bytes);
    let events = pump_server(&mut mock, &mut server, now);
    let closed = events.iter().find_map(|e| match e {
        Event::Closed(reason) => Some(reason.clone()),
        _ => None,
    });
    let closed = closed.unwrap_or_else(|| panic!("server did not close: {events:?}"));
    assert_eq!(
        (closed.by, closed.code),
        (Initiator::Local, code),
        "{closed:?}"
    );
    let told = mock
        .received()
        .into_iter()
        .any(|m| matches!(m, Message::Close { code: c, .. } if c == code));
    assert!(told, "the mock was not told {code:?}");
    assert!(
        mock.tls.peer_has_closed(),
        "no close_notify after the Close"
    );
}

#[test]
fn a_response_from_the_client_is_a_violation() {
    let frame = Message::Response {
        id: RequestId(1),
        reply: Reply::Ok,
    }
    .to_frame()
    .unwrap();
    expect_server_close(&frame, ErrorCode::PROTOCOL_VIOLATION, false);
}

#[test]
fn an_unknown_version_is_refused() {
    let mut frame = Message::Request {
        id: RequestId(1),
        command: Command::Pwd,
    }
    .to_frame()
    .unwrap();
    frame[4] = 9;
    expect_server_close(&frame, ErrorCode::UNSUPPORTED_VERSION, false);
}

#[test]
fn an_oversized_frame_is_refused_before_its_body() {
    expect_server_close(&[0, 0x10, 0, 1], ErrorCode::PROTOCOL_VIOLATION, false);
}

#[test]
fn garbage_frames_are_refused() {
    expect_server_close(
        &[0, 0, 0, 3, 1, 0xee, 0],
        ErrorCode::PROTOCOL_VIOLATION,
        false,
    );
    expect_server_close(&[0, 0, 0, 2, 1, 0x07], ErrorCode::PROTOCOL_VIOLATION, true);
}

#[test]
fn a_request_id_reused_in_flight_is_a_violation() {
    let mut frames = Vec::new();
    for _ in 0..2 {
        Message::Request {
            id: RequestId(7),
            command: Command::Pwd,
        }
        .encode(&mut frames)
        .unwrap();
    }
    expect_server_close(&frames, ErrorCode::PROTOCOL_VIOLATION, true);
}

#[test]
fn credit_for_a_transfer_that_never_existed_is_a_violation() {
    let frame = Message::TransferCredit(TransferCredit {
        transfer: TransferId(99),
        limit: 5,
    })
    .to_frame()
    .unwrap();
    expect_server_close(&frame, ErrorCode::PROTOCOL_VIOLATION, true);
}

#[test]
fn too_many_requests_in_flight_get_busy() {
    let (mut mock, mut server, now) = mock_client_and_server();
    login(&mut mock, &mut server, now);
    for i in 0..70 {
        mock.send(&Message::Request {
            id: RequestId(100 + i),
            command: Command::Pwd,
        });
    }
    let events = pump_server(&mut mock, &mut server, now);
    assert_eq!(events.len(), 64, "only the limit reaches the application");
    let busy = mock
        .received()
        .into_iter()
        .filter(|m| {
            matches!(
                m,
                Message::Response {
                    reply: Reply::Error {
                        code: ErrorCode::BUSY,
                        ..
                    },
                    ..
                }
            )
        })
        .count();
    assert_eq!(busy, 6);
}

// The other direction: a mock server against a real client.

fn pump_client(mock: &mut Mock, client: &mut ClientSession, now: Instant) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        let mut progress = false;
        while let Some(mut msg) = mock.tls.poll_message() {
            client.handle_message(0, &mut msg, now);
            progress = true;
        }
        while let Some(t) = client.poll_transmit() {
            if t.stream == 0 {
                let _ = mock.tls.handle_message(&t.bytes, &mut mock.plaintext);
            }
            progress = true;
        }
        while let Some(e) = client.poll_event() {
            events.push(e);
        }
        if !progress {
            return events;
        }
    }
}

fn mock_server_and_client() -> (Mock, ClientSession, Instant) {
    let pki = TestPki::new(&["localhost"]);
    let now = Instant::now();
    let client = ClientSession::new(
        pki.client_config(),
        ServerName::try_from("localhost").unwrap(),
        config(),
        now,
    )
    .unwrap();
    let mock = Mock {
        tls: TlsDriver::server(pki.server_config()).unwrap(),
        plaintext: Vec::new(),
        frames: FrameDecoder::new(),
    };
    let mut mock = mock;
    let mut client = client;
    let events = pump_client(&mut mock, &mut client, now);
    assert_eq!(events, vec![Event::Connected]);
    (mock, client, now)
}

fn expect_client_close(script: impl FnOnce(&mut Mock, RequestId)) {
    let (mut mock, mut client, now) = mock_server_and_client();
    let id = client.send_command(Command::Pwd).unwrap();
    pump_client(&mut mock, &mut client, now);
    script(&mut mock, id);
    let events = pump_client(&mut mock, &mut client, now);
    let closed = events.iter().find_map(|e| match e {
        Event::Closed(reason) => Some(reason.code),
        _ => None,
    });
    assert_eq!(closed, Some(ErrorCode::PROTOCOL_VIOLATION), "{events:?}");
    assert!(!events.iter().any(|e| matches!(e, Event::Response { .. })));
}

#[test]
fn a_reply_to_an_unknown_request_is_a_violation() {
    expect_client_close(|mock, id| {
        mock.send(&Message::Response {
            id: RequestId(id.0 + 1),
            reply: Reply::Ok,
        });
    });
}

#[test]
fn a_transfer_open_for_a_command_without_data_is_a_violation() {
    expect_client_close(|mock, id| {
        mock.send(&Message::Response {
            id,
            reply: Reply::TransferOpen(TransferOpen {
                transfer: TransferId(1),
                offset: 0,
                length: 10,
                streams: 1,
                associations: 1,
            }),
        });
    });
}

#[test]
fn a_request_from_the_server_is_a_violation() {
    expect_client_close(|mock, _| {
        mock.send(&Message::Request {
            id: RequestId(1),
            command: Command::Quit,
        });
    });
}

//! A client and a server session with two associations each over memory pairs:
//! ASSOC, BIND and BIND_ACK, a download spread over both associations (records of
//! association 1 reach the session as association 1, or they would fail to open),
//! and the loss of the extra association reported as `AssociationLost` while
//! association 0 goes on.

use std::sync::Arc;

use sfs_net::memory::{memory_pair, MemoryConnector, MemoryTransport};
use sfs_net::{now, Connector, Driver, Input, Transport, TransportEvent};
use sfs_proto::bind::{BindAck, BindRequest};
use sfs_proto::control::{Command, ErrorCode, Reply};
use sfs_proto::record::{chunk_buffer, Direction};
use sfs_proto::session::{ClientSession, Event, ServerSession, SessionConfig};
use sfs_proto::testing::TestPki;
use sfs_proto::transfer::Lane;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

fn test_file(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 253) as u8 ^ (i / 253) as u8)
        .collect()
}

/// Reads the BIND of a new association, checks it with the session and answers.
async fn accept_bind(
    transport: MemoryTransport,
    session: &mut ServerSession,
    driver: &mut Driver<MemoryTransport>,
) {
    let Ok(TransportEvent::Message { stream: 0, data }) = transport.recv().await else {
        panic!("no BIND");
    };
    let bind = BindRequest::decode(&data).unwrap();
    let status = match session.verify_bind(&bind, transport.streams(), now()) {
        Ok(_) => ErrorCode::NO_ERROR,
        Err(error) => error.code(),
    };
    transport
        .send(0, &BindAck { status }.encode())
        .await
        .unwrap();
    assert_eq!(status, ErrorCode::NO_ERROR);
    driver.add_association(bind.index, Arc::new(transport));
}

/// A tiny server: accepts any login, grants ASSOC, serves `file` for RETR, and
/// drops association 1 when asked to make the folder "drop".
async fn serve(
    transport: MemoryTransport,
    mut extra: mpsc::UnboundedReceiver<MemoryTransport>,
    pki: TestPki,
    file: Vec<u8>,
) {
    let mut config = SessionConfig::new(transport.streams());
    config.max_associations = 2;
    let mut driver = Driver::new(Arc::new(transport));
    let mut session = ServerSession::new(pki.server_config(), config, now()).unwrap();
    let mut sending = None;
    loop {
        if driver.flush(&mut session).await.is_err() {
            return;
        }
        while let Some(event) = session.poll_event() {
            match event {
                Event::LoginRequested { id, .. } => session.accept_login(id).unwrap(),
                Event::Request {
                    id,
                    command: Command::Assoc,
                } => {
                    session.grant_association(id, [0x5a; 16], now()).unwrap();
                }
                Event::Request {
                    id,
                    command: Command::Retr { .. },
                } => {
                    sending = Some(session.open_transfer(id, 0, file.len() as u64, 2).unwrap());
                }
                Event::Request {
                    id,
                    command: Command::Mkd { .. },
                } => {
                    let gone = driver.remove_association(&mut session, 1).unwrap();
                    gone.shutdown();
                    session.respond(id, Reply::Ok).unwrap();
                }
                Event::Request { id, .. } => {
                    session
                        .respond(id, Reply::Path { path: "/".into() })
                        .unwrap();
                }
                Event::Closed(_) => return,
                _ => {}
            }
        }
        if let Some(transfer) = sending {
            loop {
                let allowance = session.chunk_allowance(transfer).min(8 * 1024);
                if allowance == 0 {
                    break;
                }
                let offset = session.next_chunk_offset(transfer).unwrap() as usize;
                let mut buf = chunk_buffer(allowance);
                buf.extend_from_slice(&file[offset..offset + allowance]);
                driver.queue(session.send_chunk(transfer, buf).unwrap());
            }
        }
        // What the events queued (replies, the chunks' End records) goes out
        // while waiting.
        driver.queue_from(&mut session);
        tokio::select! {
            input = driver.next_input(&mut session) => {
                if let Input::TransportClosed(_) = input {
                    return;
                }
            }
            Some(transport) = extra.recv() => accept_bind(transport, &mut session, &mut driver).await,
        }
    }
}

/// Pumps the client until `done` picks something out of an event or input.
async fn pump_until<T>(
    session: &mut ClientSession,
    driver: &mut Driver<MemoryTransport>,
    received: &mut [u8],
    mut done: impl FnMut(Option<&Input>, Option<&Event>) -> Option<T>,
) -> T {
    loop {
        driver.flush(session).await.unwrap();
        while let Some(event) = session.poll_event() {
            if let Event::Closed(reason) = &event {
                panic!("closed: {reason:?}");
            }
            if let Some(found) = done(None, Some(&event)) {
                return found;
            }
        }
        let input = driver.next_input(session).await;
        if let Input::Chunk(chunk) = &input {
            let at = chunk.offset as usize;
            received[at..at + chunk.data().len()].copy_from_slice(chunk.data());
        }
        if let Some(found) = done(Some(&input), None) {
            return found;
        }
    }
}

#[tokio::test]
async fn a_download_over_two_associations_then_the_extra_one_is_lost() {
    let pki = TestPki::new(&["localhost"]);
    let file = test_file(400_000);
    let (client_end, server_end) = memory_pair(3);
    let (extra_tx, extra_rx) = mpsc::unbounded_channel();
    let connector = MemoryConnector::new(3, move |far| {
        let _ = extra_tx.send(far);
    });
    let server = tokio::spawn(serve(server_end, extra_rx, pki.clone(), file.clone()));

    let config = SessionConfig::new(client_end.streams());
    let mut driver = Driver::new(Arc::new(client_end));
    let name = "localhost".try_into().unwrap();
    let mut session = ClientSession::new(pki.client_config(), name, config, now()).unwrap();
    let mut received = vec![0u8; file.len()];
    session
        .send_command(Command::Login {
            user: "alice".into(),
            password: "pw".into(),
        })
        .unwrap();
    let allowed = pump_until(&mut session, &mut driver, &mut received, |_, e| match e {
        Some(Event::Response {
            reply: Reply::Limits {
                max_associations, ..
            },
            ..
        }) => Some(*max_associations),
        _ => None,
    })
    .await;
    assert_eq!(allowed, 2);

    // ASSOC, then BIND on the new association and wait for its ACK.
    let assoc = session.send_command(Command::Assoc).unwrap();
    let (index, ticket) = pump_until(&mut session, &mut driver, &mut received, |_, e| match e {
        Some(Event::Response {
            id,
            reply: Reply::AssocTicket { index, ticket },
        }) if *id == assoc => Some((*index, *ticket)),
        _ => None,
    })
    .await;
    assert_eq!(index, 1);
    let extra = connector.connect().await.unwrap();
    let bind = session
        .bind_association(index, ticket, extra.streams())
        .unwrap();
    extra.send(0, &bind.encode()).await.unwrap();
    let Ok(TransportEvent::Message { stream: 0, data }) = extra.recv().await else {
        panic!("no BIND_ACK");
    };
    assert!(BindAck::decode(&data).unwrap().is_bound());
    driver.add_association(index, Arc::new(extra));
    assert_eq!(driver.associations(), 0b11);

    // A download spread over both.
    let retr = session
        .send_command(Command::Retr {
            path: "f".into(),
            offset: 0,
        })
        .unwrap();
    let mut mask = None;
    let digest = pump_until(&mut session, &mut driver, &mut received, |_, e| match e {
        Some(Event::Response {
            id,
            reply: Reply::TransferOpen(open),
        }) if *id == retr => {
            mask = Some(open.associations);
            None
        }
        Some(Event::TransferFinished { sha256, .. }) => Some(*sha256),
        Some(Event::TransferFailed { reason, .. }) => panic!("failed: {reason}"),
        _ => None,
    })
    .await;
    assert_eq!(mask, Some(0b11));
    assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&file)));
    assert_eq!(received, file);
    for association in 0..2 {
        assert!(
            session
                .key_epoch_on(Direction::ServerToClient, Lane::new(association, 1))
                .is_some(),
            "association {association} carried records"
        );
    }

    // The server drops association 1: the client sees it lost, and goes on.
    session
        .send_command(Command::Mkd {
            path: "drop".into(),
        })
        .unwrap();
    let lost = pump_until(&mut session, &mut driver, &mut received, |i, _| match i {
        Some(Input::AssociationLost { index, error }) => Some((*index, error.is_none())),
        _ => None,
    })
    .await;
    assert_eq!(lost, (1, true), "a clean close by the peer");
    assert_eq!(driver.associations(), 0b01);
    assert!(driver.association(1).is_none());
    assert!(session.is_connected());
    assert_eq!(session.associations(), 0b01);
    let pwd = session.send_command(Command::Pwd).unwrap();
    let path = pump_until(&mut session, &mut driver, &mut received, |_, e| match e {
        Some(Event::Response { id, reply }) if *id == pwd => Some(reply.clone()),
        _ => None,
    })
    .await;
    assert_eq!(path, Reply::Path { path: "/".into() });

    session.close(ErrorCode::NO_ERROR, "bye");
    driver.flush(&mut session).await.unwrap();
    drop(driver);
    server.await.unwrap();
}

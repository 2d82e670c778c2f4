//! A real client session and a real server session, with real TLS, over the
//! in-memory transport: handshake, login, a request, and a download whose chunks
//! are spread over several data streams and checked by digest.

use std::sync::Arc;

use sfs_net::memory::memory_pair;
use sfs_net::{now, Driver, Input, Transport};
use sfs_proto::control::{Command, ErrorCode, Reply};
use sfs_proto::record::chunk_buffer;
use sfs_proto::session::{ClientSession, Event, ServerSession, SessionConfig};
use sfs_proto::testing::TestPki;
use sha2::{Digest, Sha256};

/// A file made of a repeating but offset-dependent pattern, so misplaced chunks show.
fn test_file(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
        .collect()
}

/// A tiny server: accepts alice, answers PWD, serves one file for RETR.
async fn serve(transport: sfs_net::memory::MemoryTransport, pki: &TestPki, file: Vec<u8>) {
    let config = SessionConfig::new(transport.streams());
    let mut driver = Driver::new(Arc::new(transport));
    let mut session = ServerSession::new(pki.server_config(), config, now()).unwrap();
    let mut sending = None;
    loop {
        if driver.flush(&mut session).await.is_err() {
            // The client went away after its close: the exchange is over.
            assert!(session.is_closed());
            return;
        }
        while let Some(event) = session.poll_event() {
            match event {
                Event::LoginRequested { id, user, .. } if user == "alice" => {
                    session.accept_login(id).unwrap();
                }
                Event::LoginRequested { id, .. } => {
                    session
                        .reject_login(id, ErrorCode::AUTH_FAILED, "login incorrect")
                        .unwrap();
                }
                Event::Request {
                    id,
                    command: Command::Pwd,
                } => {
                    session
                        .respond(id, Reply::Path { path: "/".into() })
                        .unwrap();
                }
                Event::Request {
                    id,
                    command: Command::Retr { offset, .. },
                } => {
                    let len = file.len() as u64 - offset;
                    sending = Some(session.open_transfer(id, offset, len, 3).unwrap());
                }
                Event::Request { id, .. } => {
                    session
                        .respond(
                            id,
                            Reply::Error {
                                code: ErrorCode::BAD_REQUEST,
                                message: "no".into(),
                            },
                        )
                        .unwrap();
                }
                Event::Closed(_) => return,
                _ => {}
            }
        }
        // Send as much of the file as the receiver's credit allows.
        if let Some(transfer) = sending {
            loop {
                let allowance = session.chunk_allowance(transfer).min(16 * 1024);
                if allowance == 0 {
                    break;
                }
                let offset = session.next_chunk_offset(transfer).unwrap() as usize;
                let end = (offset + allowance).min(file.len());
                let mut buf = chunk_buffer(end - offset);
                buf.extend_from_slice(&file[offset..end]);
                let transmit = session.send_chunk(transfer, buf).unwrap();
                driver.send(transmit).await.unwrap();
            }
            driver.flush(&mut session).await.unwrap();
        }
        if let Input::TransportClosed(_) = driver.next_input(&mut session).await {
            return;
        }
    }
}

#[tokio::test]
async fn login_request_and_download_over_the_memory_pair() {
    let pki = TestPki::new(&["localhost"]);
    let file = test_file(300_000);
    let (client_end, server_end) = memory_pair(5);
    let server = {
        let pki = TestPki::clone(&pki);
        let file = file.clone();
        tokio::spawn(async move { serve(server_end, &pki, file).await })
    };

    let config = SessionConfig::new(client_end.streams());
    let mut driver = Driver::new(Arc::new(client_end));
    let name = "localhost".try_into().unwrap();
    let mut session = ClientSession::new(pki.client_config(), name, config, now()).unwrap();
    let login = session
        .send_command(Command::Login {
            user: "alice".into(),
            password: "pw".into(),
        })
        .unwrap();
    let pwd = session.send_command(Command::Pwd).unwrap();
    let retr = session
        .send_command(Command::Retr {
            path: "f".into(),
            offset: 0,
        })
        .unwrap();

    let mut received = vec![0u8; file.len()];
    let mut answers = Vec::new();
    let digest = loop {
        driver.flush(&mut session).await.unwrap();
        match driver.next_input(&mut session).await {
            Input::Chunk(chunk) => {
                let at = chunk.offset as usize;
                received[at..at + chunk.data().len()].copy_from_slice(chunk.data());
            }
            Input::TransportClosed(err) => panic!("transport closed: {err:?}"),
            _ => {}
        }
        let mut finished = None;
        while let Some(event) = session.poll_event() {
            match event {
                Event::Response { id, reply } => answers.push((id, reply)),
                Event::TransferFinished { sha256, length, .. } => finished = Some((length, sha256)),
                Event::TransferFailed { reason, .. } => panic!("transfer failed: {reason}"),
                Event::Closed(reason) => panic!("closed: {reason:?}"),
                _ => {}
            }
        }
        if let Some(done) = finished {
            break done;
        }
    };
    assert_eq!(digest.0, file.len() as u64);
    assert_eq!(digest.1, <[u8; 32]>::from(Sha256::digest(&file)));
    assert_eq!(received, file);
    assert!(matches!(answers[0], (id, Reply::Limits { .. }) if id == login));
    assert_eq!(answers[1], (pwd, Reply::Path { path: "/".into() }));
    assert!(
        matches!(answers[2], (id, Reply::TransferOpen(open)) if id == retr && open.length == file.len() as u64)
    );
    assert!(
        driver.counters().received() > file.len() as u64,
        "records add overhead"
    );

    session.close(ErrorCode::NO_ERROR, "bye");
    driver.flush(&mut session).await.unwrap();
    drop(driver);
    server.await.unwrap();
}

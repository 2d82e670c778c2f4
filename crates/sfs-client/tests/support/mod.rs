//! A test-double server: a real `ServerSession` (real TLS, real records) over the
//! in-memory transport, answering from a scripted in-memory file table. It can be
//! hostile: listings, shares and downloads carry whatever names the test puts in.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sfs_client::connection::{Credentials, Remote, Reporter};
use sfs_net::memory::{memory_pair, MemoryTransport};
use sfs_net::{now, Driver, Input, Transport};
use sfs_proto::control::{
    Command, Entry, EntryKind, ErrorCode, Reply, RequestId, ShareEntry, TransferId,
};
use sfs_proto::digest::Sha256;
use sfs_proto::record::chunk_buffer;
use sfs_proto::session::{Event, ServerSession, SessionConfig};
use sfs_proto::testing::TestPki;

/// What the double serves and what it saw.
#[derive(Debug, Default)]
pub struct State {
    /// Files served by RETR, by the exact path the client sends.
    pub files: HashMap<String, Vec<u8>>,
    /// Files received by STOR, by path.
    pub uploads: HashMap<String, Vec<u8>>,
    /// What LIST answers (any names, hostile ones included).
    pub listing: Vec<Entry>,
    /// What SHWM and SHARED answer.
    pub shares: Vec<ShareEntry>,
    /// Every command received, in order, as its debug text (passwords excluded).
    pub log: Vec<String>,
    /// Pause between download chunks, to make transfers slow enough to interrupt.
    pub chunk_delay: Option<Duration>,
    /// Transfers the client aborted.
    pub aborted: Vec<TransferId>,
    /// The working directory.
    pub cwd: String,
    /// The double's idle timeout, instead of the protocol default.
    pub idle_timeout: Option<Duration>,
    /// Remote folders, by path without a trailing slash: STAT answers them as
    /// folders, and STOR refuses them (`IS_A_DIRECTORY`) and any name inside a
    /// folder that is not here (`NOT_FOUND`), as the real server does.
    pub dirs: HashSet<String>,
    /// Open every transfer, then abort it at once with `TIMED_OUT` and the
    /// stall timeout's reason, as a server whose stall timer fired does.
    pub stall_transfers: bool,
    /// Data streams each transfer spreads over, instead of up to 3 of those
    /// negotiated (clamped to those negotiated).
    pub transfer_streams: Option<u16>,
    /// What LIST answers for one path, instead of `listing`.
    pub listings: HashMap<String, Vec<Entry>>,
    /// Times set by MFMT, by path.
    pub mtimes: HashMap<String, i64>,
    /// Partial uploads kept for REPUT, by path (PARTIAL answers their length).
    pub partials: HashMap<String, Vec<u8>>,
}

/// The reason a server's stall timer gives (the protocol's own words).
pub const STALL_REASON: &str = "the transfer made no progress for 60 s";

/// A handle on the double's state.
pub type Shared = Arc<Mutex<State>>;

/// A file entry for a listing.
pub fn file_entry(name: &str, size: u64) -> Entry {
    Entry {
        name: name.to_owned(),
        kind: EntryKind::File,
        size,
        mtime: 1_700_000_000,
        mode: 0o644,
    }
}

/// Bytes that differ at every offset, so misplaced chunks show.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
        .collect()
}

/// The SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data)
}

/// The double's one user (it takes any password).
pub fn alice() -> Credentials {
    Credentials {
        user: "alice".into(),
        password: "pw".to_owned().into(),
        register: false,
    }
}

/// Logs in as alice over `transport` (the client's end from [`start`]);
/// returns the connection and the working directory.
pub async fn log_in(
    transport: MemoryTransport,
    pki: &TestPki,
) -> (Remote<MemoryTransport>, String) {
    Remote::open(
        transport,
        pki.client_config(),
        "localhost".try_into().unwrap(),
        &alice(),
        Reporter::hidden(),
    )
    .await
    .expect("login")
}

/// Starts a double on its own thread; returns the client's end of the transport.
pub fn start(pki: &TestPki, state: Shared) -> MemoryTransport {
    start_with_streams(pki, state, 8)
}

/// [`start`] over a pair with `streams` streams each way, stream 0 included.
pub fn start_with_streams(pki: &TestPki, state: Shared, streams: u16) -> MemoryTransport {
    let (client, server) = memory_pair(streams);
    let pki = pki.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the double");
        runtime.block_on(serve(server, pki, state));
    });
    client
}

fn lock(state: &Shared) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

struct Sending {
    data: Vec<u8>,
}

struct Receiving {
    request: RequestId,
    path: String,
    data: Vec<u8>,
}

/// Serves one client until it goes away.
pub async fn serve(transport: MemoryTransport, pki: TestPki, state: Shared) {
    let streams = transport.streams();
    let mut config = SessionConfig::new(streams);
    if let Some(idle) = lock(&state).idle_timeout {
        config.idle_timeout = Some(idle);
    }
    let data_streams = lock(&state)
        .transfer_streams
        .unwrap_or_else(|| streams.outbound.saturating_sub(1).clamp(1, 3));
    let mut driver = Driver::new(Arc::new(transport));
    let Ok(mut session) = ServerSession::new(pki.server_config(), config, now()) else {
        return;
    };
    let mut sending: HashMap<TransferId, Sending> = HashMap::new();
    let mut receiving: HashMap<TransferId, Receiving> = HashMap::new();
    loop {
        if driver.flush(&mut session).await.is_err() {
            return;
        }
        while let Some(event) = session.poll_event() {
            match event {
                Event::LoginRequested {
                    id, user, register, ..
                } => {
                    let verb = if register { "REGISTER" } else { "LOGIN" };
                    lock(&state).log.push(format!("{verb} {user}"));
                    if user == "alice" {
                        let _ = session.accept_login(id);
                    } else {
                        let _ = session.reject_login(id, ErrorCode::AUTH_FAILED, "login incorrect");
                    }
                }
                Event::Request { id, command } => {
                    lock(&state).log.push(command.name().to_owned());
                    answer(
                        &mut session,
                        &state,
                        id,
                        command,
                        data_streams,
                        &mut sending,
                        &mut receiving,
                    );
                }
                Event::TransferFinished { transfer, .. } => {
                    if let Some(done) = receiving.remove(&transfer) {
                        lock(&state).uploads.insert(done.path, done.data);
                        let _ = session.respond(done.request, Reply::Ok);
                    }
                }
                Event::TransferFailed { transfer, .. } => {
                    lock(&state).aborted.push(transfer);
                    sending.remove(&transfer);
                    if let Some(failed) = receiving.remove(&transfer) {
                        let _ = session.respond(
                            failed.request,
                            Reply::Error {
                                code: ErrorCode::ABORTED,
                                message: "aborted".into(),
                            },
                        );
                    }
                }
                Event::TransferSent { transfer, .. } => {
                    sending.remove(&transfer);
                }
                Event::Closed(_) => return,
                _ => {}
            }
        }
        let delay = lock(&state).chunk_delay;
        // One chunk per transfer per round when slowed down; all the credit otherwise.
        let mut sent_any = false;
        let ids: Vec<TransferId> = sending.keys().copied().collect();
        for transfer in ids {
            loop {
                let allowance = session.chunk_allowance(transfer).min(16 * 1024);
                if allowance == 0 {
                    break;
                }
                let Some(file) = sending.get(&transfer) else {
                    break;
                };
                let Some(offset) = session.next_chunk_offset(transfer) else {
                    break;
                };
                let offset = offset as usize;
                let end = (offset + allowance).min(file.data.len());
                let mut buf = chunk_buffer(end - offset);
                buf.extend_from_slice(&file.data[offset..end]);
                match session.send_chunk(transfer, buf) {
                    Ok(transmit) => {
                        // The last chunk queues End records: flush them before any
                        // later record on the same stream.
                        if driver.send(transmit).await.is_err()
                            || driver.flush(&mut session).await.is_err()
                        {
                            return;
                        }
                        sent_any = true;
                    }
                    Err(_) => break,
                }
                if delay.is_some() {
                    break;
                }
            }
        }
        if driver.flush(&mut session).await.is_err() {
            return;
        }
        let input = match (delay, sent_any) {
            (Some(delay), true) => tokio::select! {
                input = driver.next_input(&mut session) => input,
                () = tokio::time::sleep(delay) => Input::Handled,
            },
            _ => driver.next_input(&mut session).await,
        };
        match input {
            Input::Chunk(chunk) => {
                if let Some(upload) = receiving.get_mut(&chunk.transfer) {
                    let at = chunk.offset as usize;
                    let data = chunk.data();
                    if upload.data.len() < at + data.len() {
                        upload.data.resize(at + data.len(), 0);
                    }
                    upload.data[at..at + data.len()].copy_from_slice(data);
                }
            }
            Input::TransportClosed(_) => return,
            _ => {}
        }
    }
}

fn error(session: &mut ServerSession, id: RequestId, code: ErrorCode, message: &str) {
    let _ = session.respond(
        id,
        Reply::Error {
            code,
            message: message.to_owned(),
        },
    );
}

/// Why the real server refuses a STOR of `path` for folder reasons: a trailing
/// slash or an existing folder names a folder (`IS_A_DIRECTORY`), a missing one
/// (or a name in a missing one) `NOT_FOUND`. Paths outside any known folder are
/// taken as they come, so tests without folders upload anywhere.
fn folder_refusal(st: &State, path: &str) -> Option<(ErrorCode, &'static str)> {
    let trimmed = path.trim_end_matches('/');
    if st.dirs.contains(trimmed) {
        return Some((ErrorCode::IS_A_DIRECTORY, "is a folder"));
    }
    if path.ends_with('/') {
        return Some((ErrorCode::NOT_FOUND, "no such folder"));
    }
    match path.rsplit_once('/') {
        Some((parent, _)) if !parent.is_empty() && !st.dirs.contains(parent) => {
            Some((ErrorCode::NOT_FOUND, "no such folder"))
        }
        _ => None,
    }
}

fn answer(
    session: &mut ServerSession,
    state: &Shared,
    id: RequestId,
    command: Command,
    data_streams: u16,
    sending: &mut HashMap<TransferId, Sending>,
    receiving: &mut HashMap<TransferId, Receiving>,
) {
    if let Command::Reget { .. } | Command::Partial { .. } | Command::Reput { .. } = command {
        return answer_resume(
            session,
            state,
            id,
            command,
            data_streams,
            sending,
            receiving,
        );
    }
    let mut st = lock(state);
    let reply = match command {
        Command::Pwd => Reply::Path {
            path: if st.cwd.is_empty() {
                "/".into()
            } else {
                st.cwd.clone()
            },
        },
        Command::Cwd { path } => {
            st.cwd = if path.starts_with('/') {
                path
            } else {
                format!("/{path}")
            };
            Reply::Path {
                path: st.cwd.clone(),
            }
        }
        Command::Cdup => {
            st.cwd = "/".into();
            Reply::Path { path: "/".into() }
        }
        Command::List { path } => {
            // Two parts, to exercise multi-part answers.
            let entries = st.listings.get(&path).unwrap_or(&st.listing).clone();
            let half = entries.len() / 2;
            let _ = session.respond(
                id,
                Reply::Listing {
                    entries: entries[..half].to_vec(),
                    more: true,
                },
            );
            Reply::Listing {
                entries: entries[half..].to_vec(),
                more: false,
            }
        }
        Command::Retr { path, offset } => {
            let Some(data) = st.files.get(&path).cloned() else {
                drop(st);
                return error(session, id, ErrorCode::NOT_FOUND, "no such file");
            };
            let len = (data.len() as u64).saturating_sub(offset);
            match session.open_transfer(id, offset, len, data_streams) {
                Ok(transfer) if st.stall_transfers => {
                    let _ = session.abort_transfer(transfer, ErrorCode::TIMED_OUT, STALL_REASON);
                }
                Ok(transfer) => {
                    sending.insert(transfer, Sending { data });
                }
                Err(_) => {
                    drop(st);
                    error(session, id, ErrorCode::INTERNAL, "cannot open");
                }
            }
            return;
        }
        Command::Stor { path, size } => {
            if path.contains("forbidden") {
                drop(st);
                return error(
                    session,
                    id,
                    ErrorCode::PERMISSION_DENIED,
                    "permission denied",
                );
            }
            if let Some((code, message)) = folder_refusal(&st, &path) {
                drop(st);
                return error(session, id, code, message);
            }
            match session.open_transfer(id, 0, size, data_streams) {
                Ok(transfer) if st.stall_transfers => {
                    // What the real server does when its stall timer fires on an
                    // upload: abort the transfer, then refuse the STOR.
                    let _ = session.abort_transfer(transfer, ErrorCode::TIMED_OUT, STALL_REASON);
                    drop(st);
                    return error(
                        session,
                        id,
                        ErrorCode::TIMED_OUT,
                        "upload made no progress for too long; nothing was changed",
                    );
                }
                Ok(transfer) => {
                    receiving.insert(
                        transfer,
                        Receiving {
                            request: id,
                            path,
                            data: Vec::new(),
                        },
                    );
                }
                Err(_) => {
                    drop(st);
                    error(session, id, ErrorCode::INTERNAL, "cannot open");
                }
            }
            return;
        }
        Command::Size { path } => match st.files.get(&path) {
            Some(data) => Reply::Size {
                size: data.len() as u64,
            },
            None => Reply::Error {
                code: ErrorCode::NOT_FOUND,
                message: "no such file".into(),
            },
        },
        Command::Digest { path } => match st.files.get(&path) {
            Some(data) => Reply::Digest {
                size: data.len() as u64,
                sha256: sha256(data),
            },
            None => Reply::Error {
                code: ErrorCode::NOT_FOUND,
                message: "no such file".into(),
            },
        },
        Command::Stat { path } if st.dirs.contains(path.trim_end_matches('/')) => Reply::Stat {
            entry: Entry {
                kind: EntryKind::Dir,
                ..file_entry(&path, 4096)
            },
        },
        Command::Stat { path } => match st.files.get(&path) {
            Some(data) => Reply::Stat {
                entry: file_entry(&path, data.len() as u64),
            },
            None => Reply::Error {
                code: ErrorCode::NOT_FOUND,
                message: "no such file\x1b[2J".into(),
            },
        },
        Command::Dele { path } => {
            if st.files.remove(&path).is_some() {
                Reply::Ok
            } else {
                Reply::Error {
                    code: ErrorCode::NOT_FOUND,
                    message: "no such file".into(),
                }
            }
        }
        Command::Shwm | Command::SharedByMe => Reply::Shares {
            entries: st.shares.clone(),
            more: false,
        },
        Command::Status => Reply::ServerStatus {
            user: "alice".into(),
            cwd: if st.cwd.is_empty() {
                "/".into()
            } else {
                st.cwd.clone()
            },
            admin: false,
            transfers: 0,
        },
        Command::Quot => Reply::Quota {
            used_bytes: st.files.values().map(|data| data.len() as u64).sum(),
            limit_bytes: 1 << 30,
            used_files: st.files.len() as u64,
            limit_files: 0,
            reserved_bytes: 0,
            max_file_size: 0,
        },
        Command::Mfmt { path, mtime } => {
            st.mtimes.insert(path, mtime);
            Reply::Ok
        }
        Command::Mkd { .. }
        | Command::Rmd { .. }
        | Command::Rename { .. }
        | Command::Shar { .. }
        | Command::Unsh { .. }
        | Command::Noop
        | Command::Quit => Reply::Ok,
        Command::Reget { .. } | Command::Partial { .. } | Command::Reput { .. } => return,
        Command::Login { .. } | Command::Register { .. } => Reply::Error {
            code: ErrorCode::BAD_REQUEST,
            message: "already logged in".into(),
        },
        Command::Assoc | Command::Detach { .. } => Reply::Error {
            code: ErrorCode::ASSOCIATION_LIMIT,
            message: "no more associations allowed".into(),
        },
    };
    drop(st);
    let _ = session.respond(id, reply);
}

/// REGET, PARTIAL and REPUT, checked as the real server checks them: the first
/// `offset` bytes must have the client's prefix digest.
fn answer_resume(
    session: &mut ServerSession,
    state: &Shared,
    id: RequestId,
    command: Command,
    data_streams: u16,
    sending: &mut HashMap<TransferId, Sending>,
    receiving: &mut HashMap<TransferId, Receiving>,
) {
    let st = lock(state);
    let (upload, path, held, size, offset, prefix) = match command {
        Command::Partial { path } => {
            let size = st.partials.get(&path).map_or(0, |data| data.len() as u64);
            drop(st);
            let _ = session.respond(id, Reply::Partial { size });
            return;
        }
        Command::Reget {
            path,
            offset,
            prefix,
        } => {
            let held = st.files.get(&path).cloned();
            let size = held.as_ref().map_or(0, |data| data.len() as u64);
            (false, path, held, size, offset, prefix)
        }
        Command::Reput {
            path,
            size,
            offset,
            prefix,
        } => {
            let held = st.partials.get(&path).cloned();
            (true, path, held, size, offset, prefix)
        }
        _ => return,
    };
    drop(st);
    let Some(held) = held else {
        return error(session, id, ErrorCode::NO_PARTIAL, "nothing to resume");
    };
    let Some(start) = usize::try_from(offset)
        .ok()
        .filter(|&at| at <= held.len() && offset <= size)
    else {
        return error(session, id, ErrorCode::RESUME_MISMATCH, "shorter");
    };
    let mut hasher = Sha256::new();
    hasher.update(&held[..start]);
    if hasher.clone().finalize() != prefix {
        return error(session, id, ErrorCode::RESUME_MISMATCH, "changed");
    }
    let opened = session.open_transfer_from(id, offset, size - offset, data_streams, hasher);
    match opened {
        Ok(transfer) if upload => {
            lock(state).partials.remove(&path);
            let mut data = held;
            data.truncate(start);
            receiving.insert(
                transfer,
                Receiving {
                    request: id,
                    path,
                    data,
                },
            );
        }
        Ok(transfer) => {
            sending.insert(transfer, Sending { data: held });
        }
        Err(_) => error(session, id, ErrorCode::INTERNAL, "cannot open"),
    }
}

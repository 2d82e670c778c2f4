//! What the server's console (its log, standard error by default) gets from
//! the audit: nothing at the default `info` level while server.log takes the
//! events, and a warning with the event when server.log cannot.

use std::io::{self, Write};
use std::sync::Mutex;

use sfs_server::audit::{AuditEvent, AuditLog, AuditOutcome, EventKind};

/// Every log record: level, target and text.
static RECORDS: Mutex<Vec<(log::Level, String, String)>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        RECORDS.lock().unwrap().push((
            record.level(),
            record.target().to_owned(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

/// A server.log that cannot be written (a full or read-only disk).
struct Broken;

impl Write for Broken {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::from(io::ErrorKind::StorageFull))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn audit_events_stay_off_the_console_unless_server_log_fails() {
    log::set_logger(&Capture).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    let dir = tempfile::tempdir().unwrap();
    let audit = AuditLog::open(&dir.path().join("server.log")).unwrap();
    audit
        .record(&AuditEvent::new(EventKind::Connect, AuditOutcome::Info))
        .unwrap();
    let shown: Vec<_> = RECORDS
        .lock()
        .unwrap()
        .iter()
        .filter(|(level, _, _)| *level <= log::Level::Info)
        .cloned()
        .collect();
    assert!(shown.is_empty(), "on the console at info: {shown:?}");
    let file = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(file.contains("event=connect"), "{file}");

    RECORDS.lock().unwrap().clear();
    let broken = AuditLog::to_writer(Box::new(Broken));
    assert!(broken
        .record(&AuditEvent::new(EventKind::Connect, AuditOutcome::Info))
        .is_err());
    let records = RECORDS.lock().unwrap();
    let warned: Vec<_> = records
        .iter()
        .filter(|(level, _, _)| *level == log::Level::Warn)
        .collect();
    assert_eq!(warned.len(), 1, "{records:?}");
    assert_eq!(warned[0].1, "sfs::audit");
    assert!(
        warned[0].2.starts_with("not in server.log: ") && warned[0].2.contains("event=connect"),
        "{}",
        warned[0].2
    );
}

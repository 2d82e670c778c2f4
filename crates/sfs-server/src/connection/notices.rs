//! What the transport reports besides messages (a message that could not be
//! delivered, an SCTP error cause from the peer), for the server's console.
//!
//! When an association ends under a transfer (a client's Ctrl-C, a lost
//! peer), the kernel reports every queued message as not delivered: a dozen
//! notices that only say the association ended, which the session already
//! knows. So notices are logged at debug level as they come, and the console
//! gets at most one line per association: the first notice and how many came,
//! once the session is over, and none when the association went away right
//! after them.

/// The notices of one association.
#[derive(Debug, Default)]
pub(super) struct Notices {
    /// The first notice since the last loss, and how many there were.
    first: Option<String>,
    count: usize,
}

impl Notices {
    /// Keeps `text` (a transport notice) for the end of the session.
    pub(super) fn note(&mut self, text: String) {
        log::debug!("transport: {text}");
        self.count += 1;
        self.first.get_or_insert(text);
    }

    /// The association went away: the notices before it were part of its end.
    pub(super) fn association_lost(&mut self) {
        if self.count > 0 {
            log::debug!(
                "{} transport notice(s) came as the association ended",
                self.count
            );
        }
        *self = Self::default();
    }

    /// The console's one line for an association that outlived its notices, if
    /// there were any.
    pub(super) fn finish(&mut self) -> Option<String> {
        let first = self.first.take()?;
        let more = std::mem::take(&mut self.count).saturating_sub(1);
        Some(match more {
            0 => format!("transport: {first}"),
            n => format!("transport: {first} (and {n} more like it on this association)"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn undelivered(stream: u16) -> String {
        format!("a message on stream {stream} could not be delivered (error 0)")
    }

    #[test]
    fn notices_before_the_association_ends_say_nothing_on_the_console() {
        let mut notices = Notices::default();
        for stream in 1..=12 {
            notices.note(undelivered(stream));
        }
        notices.association_lost();
        assert_eq!(notices.finish(), None);
    }

    #[test]
    fn an_association_that_outlives_its_notices_gets_one_line() {
        let mut notices = Notices::default();
        for stream in 1..=12 {
            notices.note(undelivered(stream));
        }
        assert_eq!(
            notices.finish().as_deref(),
            Some(
                "transport: a message on stream 1 could not be delivered (error 0) \
                 (and 11 more like it on this association)"
            )
        );
        assert_eq!(notices.finish(), None, "once");
        let mut one = Notices::default();
        one.note(undelivered(5));
        assert_eq!(
            one.finish().as_deref(),
            Some("transport: a message on stream 5 could not be delivered (error 0)")
        );
    }
}

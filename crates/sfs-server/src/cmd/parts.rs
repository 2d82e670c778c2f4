//! Multi-part answers (`Listing`, `Shares`) produced one part at a time: a
//! command hands the connection a [`PartStream`], and the connection asks it for
//! the next part only while the peer keeps up, so one listing holds at most one
//! part in memory however large the folder is.

use sfs_proto::control::Reply;

use super::CommandResult;

/// Bytes of entries per multi-part reply (`Listing`, `Shares`), well under the
/// 64 KiB control message.
pub(crate) const PART_BUDGET: usize = 48 * 1024;

/// The parts of one answer still to produce. Blocking: each [`Iterator::next`]
/// may read a folder, so the connection calls it in a blocking job. The last
/// item is a final reply (`more` unset, or an `Error`); nothing follows it.
pub(crate) struct PartStream(Box<dyn Iterator<Item = Reply> + Send>);

impl PartStream {
    /// Cuts `items` into parts of at most [`PART_BUDGET`] bytes (`cost` says how
    /// many one item takes), each built by `part` (which may order its items),
    /// all but the last marked `more`; always at least one part, so an empty
    /// answer still gets its final one. An `Err` item ends the answer with that
    /// reply instead, and the part it interrupted is dropped.
    pub(crate) fn new<T: Send + 'static>(
        items: impl Iterator<Item = Result<T, Reply>> + Send + 'static,
        cost: fn(&T) -> usize,
        part: fn(Vec<T>, bool) -> Reply,
    ) -> Self {
        Self(Box::new(Parts {
            items,
            cost,
            part,
            carry: None,
            done: false,
        }))
    }

    /// Produces the first part now, in the command's job: an answer that fits
    /// one part is an ordinary reply, and a larger one comes back with the rest
    /// to stream.
    pub(crate) fn start(mut self) -> CommandResult {
        match self.0.next() {
            Some(first) if !first.is_last_part() => CommandResult::Parts { first, rest: self },
            Some(only) => CommandResult::reply(only),
            // `Parts` always yields a final part before ending.
            None => CommandResult::reply(Reply::Listing {
                entries: Vec::new(),
                more: false,
            }),
        }
    }

    /// The next part, `None` after the final one. Blocking.
    pub(crate) fn next_part(&mut self) -> Option<Reply> {
        self.0.next()
    }
}

struct Parts<I, T> {
    items: I,
    cost: fn(&T) -> usize,
    part: fn(Vec<T>, bool) -> Reply,
    /// The item that did not fit the previous part: it opens the next.
    carry: Option<T>,
    done: bool,
}

impl<I: Iterator<Item = Result<T, Reply>>, T> Iterator for Parts<I, T> {
    type Item = Reply;

    fn next(&mut self) -> Option<Reply> {
        if self.done {
            return None;
        }
        let mut current = Vec::new();
        let mut size = 0;
        if let Some(item) = self.carry.take() {
            size += (self.cost)(&item);
            current.push(item);
        }
        loop {
            match self.items.next() {
                None => {
                    self.done = true;
                    return Some((self.part)(current, false));
                }
                Some(Err(reply)) => {
                    self.done = true;
                    return Some(reply);
                }
                Some(Ok(item)) => {
                    let cost = (self.cost)(&item);
                    if size + cost > PART_BUDGET && !current.is_empty() {
                        // Only now is it known that another part follows.
                        self.carry = Some(item);
                        return Some((self.part)(current, true));
                    }
                    size += cost;
                    current.push(item);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(item: &usize) -> usize {
        *item
    }

    fn part(items: Vec<usize>, more: bool) -> Reply {
        Reply::Listing {
            entries: items
                .into_iter()
                .map(|size| super::super::common::synthesized_dir(&size.to_string()))
                .collect(),
            more,
        }
    }

    fn all(items: Vec<Result<usize, Reply>>) -> Vec<Reply> {
        let mut stream = PartStream::new(items.into_iter(), cost, part);
        std::iter::from_fn(|| stream.next_part()).collect()
    }

    #[test]
    fn empty_answer_has_one_final_part() {
        assert_eq!(all(Vec::new()), vec![part(Vec::new(), false)]);
    }

    #[test]
    fn an_item_that_does_not_fit_opens_the_next_part() {
        let half = PART_BUDGET / 2;
        let parts = all(vec![Ok(half), Ok(half), Ok(1), Ok(half)]);
        assert_eq!(
            parts,
            vec![part(vec![half, half], true), part(vec![1, half], false)]
        );
    }

    #[test]
    fn an_error_ends_the_answer_with_its_reply() {
        let error = Reply::error(sfs_proto::control::ErrorCode::INTERNAL, "internal error");
        let half = PART_BUDGET / 2;
        let parts = all(vec![
            Ok(half),
            Ok(half),
            Ok(half),
            Err(error.clone()),
            Ok(1),
        ]);
        assert_eq!(parts, vec![part(vec![half, half], true), error]);
    }
}

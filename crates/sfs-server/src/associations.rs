//! The extra data associations of every session: the tickets waiting for their
//! `BIND` (which session issued each, so a new association reaches it), and the
//! counts of extra associations per user and server-wide.
//!
//! ```text
//!  ASSOC ─▶ session task: reserve() a slot ─▶ register(ticket → its channel) ─▶ AssocTicket
//!  new association, first message BIND ─▶ serve(): redeem(ticket) ─▶ that session's channel
//!                                                     └ unknown, used, expired ─▶ refused
//! ```
//!
//! One owner, one lock (a std `Mutex`: nothing awaits while holding it). A
//! ticket leaves the registry when it is redeemed (single use, right or wrong),
//! when it expires, and when its session ends. Each extra association, from its
//! `ASSOC` until it ends, holds an [`AssociationSlot`], which counts it against
//! its user and the server; dropping the slot frees the place.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::accounts::Username;

/// The bound on extra associations beyond each session's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssociationLimits {
    /// Extra associations of one user across their sessions.
    pub per_user: usize,
    /// Extra associations of every session together.
    pub total: usize,
}

/// An extra association refused by a limit beyond the session's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AssociationLimit {
    /// The user already has the most extra associations allowed.
    #[error(
        "you already have the most data associations allowed ({limit} beyond your sessions' first)"
    )]
    PerUser {
        /// The per-user limit.
        limit: usize,
    },
    /// The server already carries the most extra associations allowed.
    #[error("the server carries the most data associations it allows; try again later")]
    Server {
        /// The server-wide limit.
        limit: usize,
    },
}

/// Identifies one session in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey(u64);

/// Why a ticket could not be redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unredeemed {
    /// No such ticket: never issued, already used, or its session ended.
    Unknown,
    /// The ticket was issued but its lifetime is over.
    Expired,
}

struct Pending {
    session: SessionKey,
    expires: Instant,
    /// The issuing session's channel for new associations; its type is the
    /// session's transport's, which this registry (shared by every connection)
    /// does not name.
    route: Box<dyn Any + Send>,
}

#[derive(Default)]
struct State {
    tickets: HashMap<[u8; 16], Pending>,
    per_user: HashMap<Username, usize>,
    total: usize,
    next_session: u64,
}

/// Every session's pending tickets and the counts of extra associations.
pub struct AssociationRegistry {
    limits: AssociationLimits,
    state: Mutex<State>,
}

impl std::fmt::Debug for AssociationRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AssociationRegistry")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// One extra association's place (from its `ASSOC` until it ends): counted
/// against its user and the server until dropped.
#[derive(Debug)]
pub struct AssociationSlot {
    registry: Arc<AssociationRegistry>,
    user: Username,
}

impl AssociationRegistry {
    /// No tickets and no extra associations yet, under `limits`.
    pub fn new(limits: AssociationLimits) -> Self {
        Self {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    /// The limits.
    pub fn limits(&self) -> AssociationLimits {
        self.limits
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere; the maps stay consistent
        // (every update is a single insert, remove or counter step).
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// A key for a new session.
    pub fn new_session(&self) -> SessionKey {
        let mut state = self.state();
        state.next_session += 1;
        SessionKey(state.next_session)
    }

    /// Takes a place for one more extra association of `user`.
    ///
    /// # Errors
    ///
    /// [`AssociationLimit`] when the user or the server is at its limit
    /// (nothing is taken then).
    pub fn reserve(self: &Arc<Self>, user: &Username) -> Result<AssociationSlot, AssociationLimit> {
        let mut state = self.state();
        if state.total >= self.limits.total {
            return Err(AssociationLimit::Server {
                limit: self.limits.total,
            });
        }
        let count = state.per_user.get(user).copied().unwrap_or(0);
        if count >= self.limits.per_user {
            return Err(AssociationLimit::PerUser {
                limit: self.limits.per_user,
            });
        }
        state.total += 1;
        state.per_user.insert(user.clone(), count + 1);
        Ok(AssociationSlot {
            registry: self.clone(),
            user: user.clone(),
        })
    }

    /// Extra associations (pending or bound) counted now: the user's, and all.
    pub fn counts(&self, user: &Username) -> (usize, usize) {
        let state = self.state();
        (state.per_user.get(user).copied().unwrap_or(0), state.total)
    }

    /// Records `ticket` of `session`, valid until `expires`: an association that
    /// presents it reaches `route`. Also drops every ticket already expired.
    pub fn register<R: Send + 'static>(
        &self,
        ticket: [u8; 16],
        session: SessionKey,
        expires: Instant,
        route: R,
        now: Instant,
    ) {
        let mut state = self.state();
        state.tickets.retain(|_, pending| pending.expires > now);
        state.tickets.insert(
            ticket,
            Pending {
                session,
                expires,
                route: Box::new(route),
            },
        );
    }

    /// Takes `ticket` out (single use, whatever comes of it) and returns the
    /// route of the session that issued it.
    ///
    /// # Errors
    ///
    /// [`Unredeemed::Unknown`] if it is not registered (or its route is not a
    /// `R`), [`Unredeemed::Expired`] if its time is over.
    pub fn redeem<R: 'static>(&self, ticket: &[u8; 16], now: Instant) -> Result<R, Unredeemed> {
        let pending = self
            .state()
            .tickets
            .remove(ticket)
            .ok_or(Unredeemed::Unknown)?;
        if pending.expires <= now {
            return Err(Unredeemed::Expired);
        }
        pending
            .route
            .downcast::<R>()
            .map(|route| *route)
            .map_err(|_| Unredeemed::Unknown)
    }

    /// Drops `ticket` (its time is over, or its grant failed).
    pub fn withdraw(&self, ticket: &[u8; 16]) {
        self.state().tickets.remove(ticket);
    }

    /// Drops every ticket of `session` (it ended, or logged out).
    pub fn forget_session(&self, session: SessionKey) {
        self.state()
            .tickets
            .retain(|_, pending| pending.session != session);
    }

    /// Tickets waiting for their association.
    pub fn pending_tickets(&self) -> usize {
        self.state().tickets.len()
    }
}

impl Drop for AssociationSlot {
    fn drop(&mut self) {
        let mut state = self.registry.state();
        state.total = state.total.saturating_sub(1);
        if let Some(count) = state.per_user.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                state.per_user.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn user(name: &str) -> Username {
        Username::parse(name).unwrap()
    }

    #[test]
    fn slots_are_capped_per_user_and_in_total_and_freed_on_drop() {
        let registry = Arc::new(AssociationRegistry::new(AssociationLimits {
            per_user: 2,
            total: 3,
        }));
        let (alice, bob) = (user("alice"), user("bob"));
        let a1 = registry.reserve(&alice).unwrap();
        let _a2 = registry.reserve(&alice).unwrap();
        assert_eq!(
            registry.reserve(&alice).unwrap_err(),
            AssociationLimit::PerUser { limit: 2 }
        );
        let _b1 = registry.reserve(&bob).unwrap();
        assert_eq!(
            registry.reserve(&bob).unwrap_err(),
            AssociationLimit::Server { limit: 3 }
        );
        drop(a1);
        assert_eq!(registry.counts(&alice), (1, 2));
        assert!(registry.reserve(&bob).is_ok());
    }

    #[test]
    fn a_ticket_is_redeemed_once_and_only_in_time() {
        let registry = AssociationRegistry::new(AssociationLimits {
            per_user: 4,
            total: 4,
        });
        let now = Instant::now();
        let session = registry.new_session();
        registry.register([1; 16], session, now + Duration::from_secs(10), 7u32, now);
        registry.register([2; 16], session, now + Duration::from_secs(10), 8u32, now);
        assert_eq!(registry.redeem::<u32>(&[1; 16], now), Ok(7));
        assert_eq!(
            registry.redeem::<u32>(&[1; 16], now),
            Err(Unredeemed::Unknown)
        );
        let later = now + Duration::from_secs(10);
        assert_eq!(
            registry.redeem::<u32>(&[2; 16], later),
            Err(Unredeemed::Expired)
        );
        assert_eq!(registry.pending_tickets(), 0);
        // A route of another type is not handed out (nor kept).
        registry.register(
            [3; 16],
            session,
            later + Duration::from_secs(1),
            9u32,
            later,
        );
        assert_eq!(
            registry.redeem::<u64>(&[3; 16], later),
            Err(Unredeemed::Unknown)
        );
    }

    #[test]
    fn a_session_takes_its_tickets_with_it_and_expired_ones_are_swept() {
        let registry = AssociationRegistry::new(AssociationLimits {
            per_user: 4,
            total: 4,
        });
        let now = Instant::now();
        let (one, two) = (registry.new_session(), registry.new_session());
        registry.register([1; 16], one, now + Duration::from_secs(10), (), now);
        registry.register([2; 16], two, now + Duration::from_secs(10), (), now);
        registry.forget_session(one);
        assert_eq!(
            registry.redeem::<()>(&[1; 16], now),
            Err(Unredeemed::Unknown)
        );
        // Registering another ticket later sweeps the expired one.
        let later = now + Duration::from_secs(11);
        registry.register([3; 16], one, later + Duration::from_secs(10), (), later);
        assert_eq!(registry.pending_tickets(), 1);
    }
}

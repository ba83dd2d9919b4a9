//! Concurrent-call limits: a gateway-wide and a per-user count of calls in progress,
//! each call holding an RAII [`SlotGuard`] (the counting-semaphore pattern of STYLE.md R6,
//! without async: acquiring never waits, a full gateway refuses at once with 503).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use jid::BareJid;

use super::LimitReached;

#[derive(Debug)]
struct Counts {
    max_calls: u32,
    max_per_user: Option<u32>,
    total: u32,
    per_user: HashMap<BareJid, u32>,
}

/// Counts calls in progress against `calls.max_calls` and an optional per-user limit.
///
/// Cloning gives another handle to the same counts (share one per gateway).
#[derive(Clone, Debug)]
pub struct CallSlots {
    counts: Arc<Mutex<Counts>>,
}

impl CallSlots {
    /// Slots for at most `max_calls` calls in all and `max_per_user` per user (`None`:
    /// no per-user limit). A limit of 0 refuses every call.
    pub fn new(max_calls: u32, max_per_user: Option<u32>) -> Self {
        Self {
            counts: Arc::new(Mutex::new(Counts {
                max_calls,
                max_per_user,
                total: 0,
                per_user: HashMap::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // The counts stay consistent even if a holder panicked: every update is one
        // statement.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a slot for a call of `user` (the caller of an outbound call, the called user
    /// of an inbound one); the slot is given back when the guard is dropped.
    ///
    /// # Errors
    ///
    /// [`LimitReached::Global`] when `max_calls` calls are in progress (checked first),
    /// [`LimitReached::User`] when `user` has `max_per_user`: refuse with
    /// [`super::Denied::Limit`] (SIP 503 + `Retry-After`, Jingle `<busy/>`).
    pub fn try_acquire(&self, user: &BareJid) -> Result<SlotGuard, LimitReached> {
        let mut c = self.lock();
        if c.total >= c.max_calls {
            return Err(LimitReached::Global { max: c.max_calls });
        }
        let mine = c.per_user.get(user).copied().unwrap_or(0);
        if let Some(max) = c.max_per_user {
            if mine >= max {
                return Err(LimitReached::User { max });
            }
        }
        c.total += 1;
        c.per_user.insert(user.clone(), mine + 1);
        Ok(SlotGuard {
            counts: Arc::clone(&self.counts),
            user: user.clone(),
        })
    }

    /// Calls in progress in all.
    pub fn in_use(&self) -> u32 {
        self.lock().total
    }

    /// Calls in progress of `user`.
    pub fn in_use_by(&self, user: &BareJid) -> u32 {
        self.lock().per_user.get(user).copied().unwrap_or(0)
    }
}

/// One call's slot; dropping it frees the slot.
#[derive(Debug)]
#[must_use = "the slot is freed when the guard is dropped"]
pub struct SlotGuard {
    counts: Arc<Mutex<Counts>>,
    user: BareJid,
}

impl SlotGuard {
    /// The user the slot counts for.
    pub fn user(&self) -> &BareJid {
        &self.user
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_user.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_user.remove(&self.user);
            }
        }
    }
}

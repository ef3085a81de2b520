//! Re-sent frames delivered once per destination (the Python concept
//! `yomo.zipper.resend`; the mark is `yomo.wire.resent`): a client that gave up a silent
//! connection writes the frames the zipper had not acknowledged again on a new one, each
//! marked `yomo-resent: "<connection id>/<n>"` (the n-th DataFrame of the connection it
//! was first written on). A zipper that was only paused may route them from the old
//! connection as well, when it wakes.
//!
//! Every connection has a `Progress`: per destination (a function's connection, or the
//! mesh links and taps together) the place after the last of its frames sent there. A
//! frame at place `n` of connection `c` (its own, or `c` named by the mark) goes to a
//! destination only if `n` is past what `c` sent there; so a destination never gets a
//! frame twice nor an older one after a newer one, and a function that reconnected gets
//! the re-sent copies (the old connection's copies may have died with its old one). An
//! old connection's frames that its re-sent successors overtook are skipped for the
//! destinations that got those (acknowledged, unread frames; the client reports them as
//! possibly lost). The check and the sending run under the progress's lock.
//!
//! Bounded: `MAX_DESTS` destinations per connection (past it the oldest is forgotten);
//! a closed connection's progress is kept `RETAIN` (at most `MAX_CLOSED` of them); a mark
//! naming a forgotten or unknown connection (a restarted zipper) counts for nothing. A
//! mark counts only between connections of the same client id (`<client id>-<n>`).

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use parking_lot::Mutex;

/// The metadata key of a re-sent frame.
pub const RESENT: &str = "yomo-resent";
/// How long a closed connection's progress is kept for re-sends that name it.
const RETAIN: Duration = Duration::from_secs(300);
/// Closed connections remembered at most.
const MAX_CLOSED: usize = 65536;

/// Destinations remembered per connection.
const MAX_DESTS: usize = 256;
/// The destination key of the mesh links and taps (a connection number never reaches it).
pub const FORWARDING: u64 = u64::MAX;

#[derive(Default)]
struct State {
    /// (destination, the place after the last frame sent there)
    sent: Vec<(u64, u64)>,
}

impl State {
    fn take(&mut self, dest: u64, at: u64) -> bool {
        match self.sent.iter_mut().find(|(d, _)| *d == dest) {
            Some((_, next)) if at < *next => false,
            Some((_, next)) => {
                *next = at + 1;
                true
            }
            None => {
                if self.sent.len() >= MAX_DESTS {
                    self.sent.remove(0);
                }
                self.sent.push((dest, at + 1));
                true
            }
        }
    }
}

/// One connection's frames: how many were routed (or skipped) in order.
pub struct Progress {
    id: String,
    client: String,
    state: Mutex<State>,
}

fn client_key(id: &str) -> &str {
    id.rsplit_once('-').map_or(id, |(head, _)| head)
}

#[derive(Default)]
struct Known {
    open: HashMap<String, Arc<Progress>>,
    closed: HashMap<String, Arc<Progress>>,
    order: VecDeque<(Instant, Arc<Progress>)>,
}

/// Every connection's progress, and the decision for each frame (module docs).
#[derive(Default)]
pub struct ResendLedger {
    known: Mutex<Known>,
    pub duplicates: AtomicU64,
}

impl ResendLedger {
    /// A connection registered with the client's id for it.
    pub fn opened(&self, id: &str) -> Arc<Progress> {
        let progress =
            Arc::new(Progress { id: id.to_string(), client: client_key(id).to_string(), state: Mutex::default() });
        let mut known = self.known.lock();
        known.closed.remove(id);
        known.open.insert(id.to_string(), progress.clone());
        progress
    }

    /// The connection ended: keep its count a while for late re-sends.
    pub fn closed(&self, progress: &Arc<Progress>) {
        let now = Instant::now();
        let mut known = self.known.lock();
        if known.open.get(&progress.id).is_some_and(|p| Arc::ptr_eq(p, progress)) {
            known.open.remove(&progress.id);
        }
        known.closed.insert(progress.id.clone(), progress.clone());
        known.order.push_back((now, progress.clone()));
        while let Some((at, _)) = known.order.front() {
            if known.order.len() <= MAX_CLOSED && now.duration_since(*at) < RETAIN {
                break;
            }
            let (_, old) = known.order.pop_front().expect("front exists");
            if known.closed.get(&old.id).is_some_and(|p| Arc::ptr_eq(p, &old)) {
                known.closed.remove(&old.id);
            }
        }
    }

    fn find(&self, id: &str) -> Option<Arc<Progress>> {
        let known = self.known.lock();
        known.open.get(id).or_else(|| known.closed.get(id)).cloned()
    }

    /// Run `route` for the `index`-th frame of connection `own` (re-sent as `mark`) with
    /// the filter it must ask before sending to a destination (false: that one had it).
    pub fn admit<R>(
        &self,
        own: &Progress,
        index: u64,
        mark: Option<&str>,
        route: impl FnOnce(&mut dyn FnMut(u64) -> bool) -> R,
    ) -> R {
        let parsed = mark.and_then(|m| m.rsplit_once('/')).and_then(|(id, n)| Some((id, n.parse::<u64>().ok()?)));
        let first = parsed.and_then(|(id, at)| Some((self.find(id)?, at))).filter(|(p, _)| p.client == own.client);
        let (progress, at) = match &first {
            Some((p, at)) => (&**p, *at),
            None => (own, index), // unmarked, or nothing known of where it was first written
        };
        let mut state = progress.state.lock();
        let mut skipped = 0;
        let out = route(&mut |dest| {
            let ok = state.take(dest, at);
            skipped += !ok as u64;
            ok
        });
        drop(state);
        if skipped > 0 {
            self.duplicates.fetch_add(skipped, Relaxed);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deliver(ledger: &ResendLedger, own: &Progress, index: u64, mark: Option<&str>, dests: &[u64]) -> Vec<u64> {
        ledger.admit(own, index, mark, |ok| dests.iter().copied().filter(|d| ok(*d)).collect())
    }

    #[test]
    fn each_destination_gets_a_frame_once_and_in_order() {
        let ledger = ResendLedger::default();
        let old = ledger.opened("abc-0");
        let new = ledger.opened("abc-1");
        for i in 0..2 {
            assert_eq!(deliver(&ledger, &old, i, None, &[7]), vec![7]);
        }
        // re-sent 1..4 on the new connection: 7 had 1; 8 (a function that reconnected) gets all
        let got: Vec<Vec<u64>> =
            (1..4).map(|i| deliver(&ledger, &new, i - 1, Some(&format!("abc-0/{i}")), &[7, 8])).collect();
        assert_eq!(got, vec![vec![8], vec![7, 8], vec![7, 8]]);
        // the old connection wakes up and reads 2 and 3 again: nobody gets them twice
        for i in 2..4 {
            assert!(deliver(&ledger, &old, i, None, &[7, 8]).is_empty());
        }
        assert_eq!(ledger.duplicates.load(Relaxed), 5);
    }

    #[test]
    fn strangers_and_unknown_marks_count_for_nothing_and_closed_ones_are_kept() {
        let ledger = ResendLedger::default();
        let old = ledger.opened("abc-0");
        let new = ledger.opened("abc-1");
        assert_eq!(deliver(&ledger, &old, 0, None, &[7]), vec![7]);
        let other = ledger.opened("xyz-0");
        assert_eq!(deliver(&ledger, &other, 0, Some("abc-0/0"), &[7]), vec![7], "another client");
        assert_eq!(deliver(&ledger, &new, 0, Some("gone-7/0"), &[7]), vec![7], "unknown");
        ledger.closed(&old);
        assert!(deliver(&ledger, &new, 1, Some("abc-0/0"), &[7]).is_empty(), "closed, still known");
    }
}

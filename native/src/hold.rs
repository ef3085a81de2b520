//! The startup hold: frames that reach a freshly started zipper before any stream function
//! observing their tag has registered (the Python concept `yomo.zipper.startup_hold`).
//!
//! After a zipper restart its clients redial at once and in no set order. A source that
//! registers before the functions it feeds re-sends the frames the dead zipper never
//! acknowledged, and those would be routed to nobody: measured, 91-1,861 of 24,000 frames
//! lost in 5 of 8 SIGKILL runs, each time the source registered 11-32 ms before the
//! function (docs/reliability.md). So for `window` after the start, a frame that would be
//! dropped as unobserved is held instead (at most `max_bytes` in all), and a function that
//! registers within the window gets the held frames it observes, oldest first, before any
//! live frame. When the window ends, what nobody observed is dropped and counted as
//! unobserved, as Go's zipper does at once ("no observed").
//!
//! Ordering: `hold` runs under the router's read lock and `take_for` under its write lock
//! (the registration), so a frame is either held before a function registers or routed to
//! it after, never both and never in between.

use std::{
    collections::VecDeque,
    sync::atomic::{AtomicBool, Ordering::Relaxed},
    time::{Duration, Instant},
};

use bytes::Bytes;
use parking_lot::Mutex;

struct Held {
    tag: u32,
    target: Option<String>,
    frame: Bytes,
    size: u64,
    taken: bool,
}

/// Frames held for observers that have not registered yet (see the module docs).
pub struct StartupHold {
    until: Instant,
    max_bytes: usize,
    open: AtomicBool,
    held: Mutex<(VecDeque<Held>, usize)>,
}

impl StartupHold {
    /// Hold for `window` from now (zero: never), at most `max_bytes` of frames.
    pub fn new(window: Duration, max_bytes: usize) -> Self {
        StartupHold {
            until: Instant::now() + window,
            max_bytes,
            open: AtomicBool::new(!window.is_zero() && max_bytes > 0),
            held: Mutex::new((VecDeque::new(), 0)),
        }
    }

    /// How long the window still lasts (None once it is over).
    pub fn remaining(&self) -> Option<Duration> {
        if !self.open.load(Relaxed) {
            return None;
        }
        self.until.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
    }

    /// Hold a frame nobody observes yet; false when the window is over or the hold is full
    /// (the caller drops and counts it as before). `size` is the payload's, for the stats.
    pub fn hold(&self, tag: u32, target: Option<&str>, frame: &Bytes, size: u64) -> bool {
        if self.remaining().is_none() {
            return false;
        }
        let mut held = self.held.lock();
        if held.1 + frame.len() > self.max_bytes {
            return false;
        }
        held.1 += frame.len();
        let target = target.filter(|t| !t.is_empty()).map(str::to_string);
        held.0.push_back(Held { tag, target, frame: frame.clone(), size, taken: false });
        true
    }

    /// The held frames a function observing `tags` (with `wanted_target`) gets, oldest
    /// first, as `(tag, payload size, frame)`.
    pub fn take_for(&self, tags: &[u32], wanted_target: &str) -> Vec<(u32, u64, Bytes)> {
        if !self.open.load(Relaxed) {
            return vec![];
        }
        let mut held = self.held.lock();
        held.0
            .iter_mut()
            .filter(|h| tags.contains(&h.tag) && h.target.as_deref().is_none_or(|t| t == wanted_target))
            .map(|h| {
                h.taken = true;
                (h.tag, h.size, h.frame.clone())
            })
            .collect()
    }

    /// End the window: forget every held frame; returns the tags of those nobody got (to
    /// be counted as unobserved).
    pub fn expire(&self) -> Vec<u32> {
        self.open.store(false, Relaxed);
        let (frames, _) = std::mem::take(&mut *self.held.lock());
        frames.into_iter().filter(|h| !h.taken).map(|h| h.tag).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_within_bounds_and_hands_over_by_tag_and_target() {
        let hold = StartupHold::new(Duration::from_secs(60), 10);
        assert!(hold.hold(1, None, &Bytes::from_static(b"aaaa"), 4));
        assert!(hold.hold(2, Some("bob"), &Bytes::from_static(b"bbbb"), 4));
        assert!(!hold.hold(1, None, &Bytes::from_static(b"cccc"), 4), "over max_bytes");
        let got = hold.take_for(&[1, 2], "alice");
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![1]);
        assert_eq!(hold.take_for(&[2], "bob").len(), 1);
        assert!(hold.expire().is_empty(), "both were taken");
        assert!(!hold.hold(1, None, &Bytes::from_static(b"a"), 1), "closed after expire");
    }

    #[test]
    fn expire_counts_what_nobody_took_and_a_zero_window_never_holds() {
        let hold = StartupHold::new(Duration::from_secs(60), 100);
        assert!(hold.hold(7, None, &Bytes::from_static(b"x"), 1));
        assert_eq!(hold.expire(), vec![7]);
        assert!(!StartupHold::new(Duration::ZERO, 100).hold(7, None, &Bytes::from_static(b"x"), 1));
    }
}

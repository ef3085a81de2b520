//! The zipper's slow lane: the QUIC work of idle connections runs a few connections at
//! a time, behind the socket, new connections and the ones that carry frames.
//!
//! Why: quinn runs the endpoint's driver (which reads the UDP socket) and every
//! connection's driver as tasks on the zipper's one tokio worker, served first come,
//! first served. When 10,000 idle clients close at once, each CONNECTION_CLOSE the
//! driver reads wakes one connection, whose teardown is far more work than the read:
//! the driver read 50 µs of datagrams, then waited behind the thousands it woke, the
//! 8 MiB receive buffer overflowed, a new client's Initial was dropped (its handshake
//! then waited for the client's 1 s retransmission) and a producer's frames waited in
//! the same queue. Here the driver of a registered connection that has never carried a
//! DataFrame (an idle one) is polled only with a ticket, which the sweeper hands out
//! a slice at a time, once per turn of the worker's queue: a flood of idle connections'
//! work waits in the lane, and the rest of the queue stays short.
//!
//! A connection that carries frames is never slowed down, and costs one relaxed load
//! per poll. quinn 0.11 spawns exactly one future per endpoint before any connection
//! exists (its driver), then one per connection, from inside `Incoming::accept`
//! (`accept` below hands the connection's `Class` to its caller).

use std::{
    cell::RefCell,
    collections::VecDeque,
    fmt,
    future::Future,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc, OnceLock,
    },
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use parking_lot::Mutex;

/// Idle connections let run per turn of the sweeper, at least (each a connection
/// driver's turn: a teardown is tens of µs).
const BATCH: usize = 16;
/// At most this many per turn while none has waited long (see `Sweeper`).
const MAX_BATCH: usize = 128;
/// Once the oldest queued one has waited `AGE_START`, `BATCH` more per turn, and twice
/// as many more for each `AGE_STEP` after that: however busy the worker, none waits
/// much over 1.5 s (an idle connection's keep-alive PING is due 2 s into the 5 s idle
/// timeout), while a mass close's slices stay small for the first second.
const AGE_START: Duration = Duration::from_secs(1);
const AGE_STEP: Duration = Duration::from_millis(100);

/// A registered connection that carried no DataFrame for this long after its
/// registration goes to the slow lane (the HandshakeAck and the first frames go out at
/// full speed).
const GRACE: Duration = Duration::from_secs(2);

/// The process's clock origin for `Class::demote_at` (milliseconds since it).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64 + 1
}

/// One connection driver's place: in the fast lane (the default) or the slow one.
#[derive(Default)]
pub struct Class {
    /// Carried a DataFrame: fast for good.
    active: AtomicBool,
    /// Idle since `demote_at`: polled with a ticket only.
    slow: AtomicBool,
    /// When an idle registered connection goes slow (ms since `epoch`, 0: not registered).
    demote_at: AtomicU64,
    /// The sweeper let it run once.
    ticket: AtomicBool,
    /// Waiting in the sweeper's queue.
    queued: AtomicBool,
    /// Its task's waker while queued (to wake it at once if it turns active).
    waker: Mutex<Option<Waker>>,
}

impl Class {
    /// Registered now: slow after `GRACE` unless it carries a DataFrame.
    pub fn registered(&self) {
        self.demote_at.store(now_ms() + GRACE.as_millis() as u64, Relaxed);
    }

    /// It carries frames: fast from now on (cheap when it already is).
    #[inline]
    pub fn active(&self) {
        if !self.active.load(Relaxed) {
            self.active.store(true, Relaxed);
            self.slow.store(false, Relaxed);
            if let Some(w) = self.waker.lock().take() {
                w.wake();
            }
        }
    }

    /// Whether this turn of its driver goes ahead (false: it waits in `lane`).
    fn may_run(self: &Arc<Self>, lane: &Lane, cx: &Context<'_>) -> bool {
        if !self.slow.load(Relaxed) {
            if self.active.load(Relaxed) {
                return true;
            }
            let at = self.demote_at.load(Relaxed);
            if at == 0 || now_ms() < at {
                return true;
            }
            self.slow.store(true, Relaxed);
            if self.active.load(Relaxed) {
                self.slow.store(false, Relaxed); // it turned active just now (another thread)
                return true;
            }
        }
        if self.ticket.swap(false, Relaxed) {
            return true;
        }
        if !self.queued.swap(true, Relaxed) {
            *self.waker.lock() = Some(cx.waker().clone());
            lane.push(self.clone());
        }
        // it turned active meanwhile: it runs now
        !self.slow.load(Relaxed)
    }
}

impl fmt::Debug for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Class").field("active", &self.active).field("slow", &self.slow).finish_non_exhaustive()
    }
}

/// The queue of slow connections waiting for a ticket (at most one entry per
/// connection, so bounded by the connections), and its sweeper's waker while it is idle.
#[derive(Default)]
struct Lane {
    queue: Mutex<Queue>,
    closed: AtomicBool,
}

#[derive(Default)]
struct Queue {
    /// Each with the time it was queued.
    waiting: VecDeque<(Instant, Arc<Class>)>,
    /// Set while the sweeper is idle (its queue was empty on a whole turn).
    sweeper: Option<Waker>,
}

impl Lane {
    fn push(&self, class: Arc<Class>) {
        let idle = {
            let mut q = self.queue.lock();
            q.waiting.push_back((Instant::now(), class));
            q.sweeper.take()
        };
        if let Some(w) = idle {
            w.wake();
        }
    }

    fn close(&self) {
        self.closed.store(true, Relaxed);
        let (idle, queued) = {
            let mut q = self.queue.lock();
            (q.sweeper.take(), std::mem::take(&mut q.waiting))
        };
        if let Some(w) = idle {
            w.wake();
        }
        for (_, class) in queued {
            class.waker.lock().take();
        }
    }
}

/// Hands out tickets: a slice of the queued connections per turn, then goes to the back
/// of the worker's queue, behind them and everything else that is ready. A push wakes
/// it only when it is idle: a wake from another task would put it first in line
/// (tokio's LIFO slot), so while there is work it reschedules itself, which tokio
/// treats as a yield.
struct Sweeper(Arc<Lane>);

impl Future for Sweeper {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let lane = &self.0;
        if lane.closed.load(Relaxed) {
            return Poll::Ready(());
        }
        let batch: Vec<Arc<Class>> = {
            let mut q = lane.queue.lock();
            if q.waiting.is_empty() {
                q.sweeper = Some(cx.waker().clone()); // idle until the next push
                return Poll::Pending;
            }
            // a sixteenth of the queue, at least `BATCH`, at most `MAX_BATCH` (so that a
            // slice fits tokio's local queue, 256: what overflows goes to the queue where
            // wake-ups from other threads, Python's answers among them, wait); and
            // more and more once the oldest has waited `AGE_START`, so that the lane keeps
            // up with any steady load (the keep-alives of thousands of idle
            // connections while the worker is busy with handshakes: an idle
            // connection's PING must go out well within the 5 s idle timeout)
            let waited = q.waiting.front().map_or(Duration::ZERO, |(at, _)| at.elapsed());
            let n = slice(q.waiting.len(), waited);
            q.waiting.drain(..n).map(|(_, class)| class).collect()
        };
        for class in batch {
            class.ticket.store(true, Relaxed);
            class.queued.store(false, Relaxed);
            if let Some(w) = class.waker.lock().take() {
                w.wake();
            }
        }
        cx.waker().wake_by_ref(); // one more turn: idle only after a turn with nothing queued
        Poll::Pending
    }
}

/// How many of `queued` get a ticket this turn, the oldest having waited `waited`.
fn slice(queued: usize, waited: Duration) -> usize {
    let late = waited.saturating_sub(AGE_START);
    let aged = if late.is_zero() { 0 } else { BATCH << (late.as_millis() / AGE_STEP.as_millis()).min(20) };
    queued.min((queued / 16).clamp(BATCH, MAX_BATCH) + aged)
}

/// A connection driver, polled when its `Class` lets it.
struct Driver {
    inner: Pin<Box<dyn Future<Output = ()> + Send>>,
    class: Arc<Class>,
    lane: Arc<Lane>,
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.class.may_run(&self.lane, cx) {
            return Poll::Pending;
        }
        self.inner.as_mut().poll(cx)
    }
}

/// How long the endpoint's driver may read the socket per turn of the worker's queue
/// (quinn reads for 50 µs, then goes to the back of the queue).
const READ_TURN: Duration = Duration::from_millis(1);

/// The endpoint's driver, polled again while it asks for more turns, for up to
/// `READ_TURN`: in a burst of datagrams for idle connections each read costs little
/// (their work waits in the lane), and a short turn would let the socket's buffer
/// overflow behind the lane's slices. A turn that drains the socket ends at once.
struct Reader {
    inner: Pin<Box<dyn Future<Output = ()> + Send>>,
    wake: Arc<Forward>,
    waker: Waker,
}

/// The waker the endpoint's driver is polled with: notes that it asked for another
/// turn, and passes the wake-up on to its task.
#[derive(Default)]
struct Forward {
    again: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl std::task::Wake for Forward {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.again.store(true, Relaxed);
        if let Some(w) = self.task.lock().as_ref() {
            w.wake_by_ref();
        }
    }
}

impl Reader {
    fn new(inner: Pin<Box<dyn Future<Output = ()> + Send>>) -> Self {
        let wake = Arc::new(Forward::default());
        Reader { inner, waker: Waker::from(wake.clone()), wake }
    }
}

impl Future for Reader {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        {
            let mut task = self.wake.task.lock();
            if !task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        let this = &mut *self;
        let mut started: Option<Instant> = None;
        loop {
            this.wake.again.store(false, Relaxed);
            if this.inner.as_mut().poll(&mut Context::from_waker(&this.waker)).is_ready() {
                return Poll::Ready(());
            }
            if !this.wake.again.load(Relaxed) {
                return Poll::Pending;
            }
            let t0 = *started.get_or_insert_with(Instant::now);
            if t0.elapsed() >= READ_TURN {
                return Poll::Pending; // its task was woken: the back of the queue
            }
        }
    }
}

thread_local! {
    /// The `Class` of the connection whose driver was spawned last on this thread.
    static SPAWNED: RefCell<Option<Arc<Class>>> = const { RefCell::new(None) };
}

/// `incoming.accept()`, and the `Class` of its connection's driver (None: it was not
/// spawned by a `ZipperRuntime`).
pub fn accept(incoming: quinn::Incoming) -> (Result<quinn::Connecting, quinn::ConnectionError>, Option<Arc<Class>>) {
    SPAWNED.with(|s| s.borrow_mut().take());
    let accepted = incoming.accept();
    (accepted, SPAWNED.with(|s| s.borrow_mut().take()))
}

/// quinn's runtime for the zipper's endpoint: tokio's, with its connections' drivers in
/// lanes (see the module docs). The sweeper runs until the runtime is dropped, which is
/// when the endpoint and its last connection are gone.
pub struct ZipperRuntime {
    lane: Arc<Lane>,
    driver_spawned: AtomicBool,
}

impl ZipperRuntime {
    /// Call inside the tokio runtime that will run the endpoint (it starts the sweeper).
    pub fn new() -> Self {
        let lane = Arc::new(Lane::default());
        tokio::spawn(Sweeper(lane.clone()));
        ZipperRuntime { lane, driver_spawned: AtomicBool::new(false) }
    }
}

impl Drop for ZipperRuntime {
    fn drop(&mut self) {
        // no driver is left (each holds the runtime): the sweeper ends
        self.lane.close();
    }
}

impl fmt::Debug for ZipperRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZipperRuntime").finish_non_exhaustive()
    }
}

impl quinn::Runtime for ZipperRuntime {
    fn new_timer(&self, i: Instant) -> Pin<Box<dyn quinn::AsyncTimer>> {
        quinn::Runtime::new_timer(&quinn::TokioRuntime, i)
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        if !self.driver_spawned.swap(true, Relaxed) {
            return quinn::Runtime::spawn(&quinn::TokioRuntime, Box::pin(Reader::new(future))); // the endpoint's driver
        }
        let class = Arc::new(Class::default());
        SPAWNED.with(|s| *s.borrow_mut() = Some(class.clone()));
        quinn::Runtime::spawn(&quinn::TokioRuntime, Box::pin(Driver { inner: future, class, lane: self.lane.clone() }));
    }

    fn wrap_udp_socket(&self, sock: std::net::UdpSocket) -> std::io::Result<Arc<dyn quinn::AsyncUdpSocket>> {
        quinn::Runtime::wrap_udp_socket(&quinn::TokioRuntime, sock)
    }

    fn now(&self) -> Instant {
        quinn::Runtime::now(&quinn::TokioRuntime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    impl Class {
        /// Idle since long ago (as if registered more than `GRACE` ago).
        fn idle(&self) {
            self.demote_at.store(1, Relaxed);
        }
    }

    /// Runs `test` as a task on a runtime of the zipper's shape (one worker).
    fn on_worker<T: Send + 'static>(test: impl Future<Output = T> + Send + 'static) -> T {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        rt.block_on(async { tokio::spawn(test).await.unwrap() })
    }

    /// A fake connection driver: counts itself in `waiting`, waits for `go`, then counts
    /// itself in `done`.
    fn parked(
        go: Arc<tokio::sync::Notify>,
        done: Arc<AtomicUsize>,
        waiting: Arc<AtomicUsize>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            let wait = go.notified();
            tokio::pin!(wait);
            wait.as_mut().enable();
            waiting.fetch_add(1, Relaxed);
            wait.await;
            done.fetch_add(1, Relaxed);
        })
    }

    /// Fake connection drivers spawned through `rt` (after its endpoint driver); each
    /// waits for `go`, then counts itself in `done`. Returns their classes once every one
    /// of them waits.
    async fn drivers(rt: &ZipperRuntime, n: usize, go: &Arc<tokio::sync::Notify>, done: &Arc<AtomicUsize>) -> Vec<Arc<Class>> {
        let waiting = Arc::new(AtomicUsize::new(0));
        let classes = (0..n)
            .map(|_| {
                let (go, done, waiting) = (go.clone(), done.clone(), waiting.clone());
                quinn::Runtime::spawn(rt, parked(go, done, waiting));
                SPAWNED.with(|s| s.borrow_mut().take()).expect("a connection driver has a class")
            })
            .collect();
        while waiting.load(Relaxed) < n {
            tokio::task::yield_now().await;
        }
        classes
    }

    /// Waits one turn of the worker's queue as quinn's endpoint driver does between two
    /// reads of the socket (it wakes itself and goes to the back).
    async fn one_turn() {
        let mut first = true;
        std::future::poll_fn(|cx| {
            if std::mem::take(&mut first) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(())
        })
        .await
    }

    async fn until(done: &AtomicUsize, n: usize) -> usize {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while done.load(Relaxed) < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        done.load(Relaxed)
    }

    fn endpoint() -> ZipperRuntime {
        let rt = ZipperRuntime::new();
        quinn::Runtime::spawn(&rt, Box::pin(async {})); // the endpoint's driver: never in a lane
        rt
    }

    #[test]
    fn a_burst_of_idle_connections_waits_in_the_lane_behind_other_work() {
        let (before, all) = on_worker(async {
            let rt = endpoint();
            let go = Arc::new(tokio::sync::Notify::new());
            let done = Arc::new(AtomicUsize::new(0));
            let idle = drivers(&rt, 200, &go, &done).await;
            for c in &idle {
                c.idle();
            }
            go.notify_waiters(); // 200 idle connections wake at once (a mass close)
            one_turn().await; // the endpoint's next read of the socket
            let before = done.load(Relaxed);
            (before, until(&done, 200).await)
        });
        assert!(before <= 2 * BATCH, "{before} of 200 idle connections ran before the endpoint's next turn: the lane did not hold them");
        assert_eq!(all, 200, "every idle connection ran in the end (no lost wake-up)");
    }

    #[test]
    fn slices_grow_with_the_queue_and_with_the_oldest_ones_wait() {
        let ms = Duration::from_millis;
        assert_eq!(slice(5, ms(0)), 5);
        assert_eq!(slice(200, ms(0)), BATCH);
        assert_eq!(slice(1_000, ms(50)), 1_000 / 16);
        assert_eq!(slice(10_000, ms(0)), MAX_BATCH, "a burst is cut into slices that fit tokio's local queue");
        assert_eq!(slice(10_000, ms(900)), MAX_BATCH, "slices stay small for a second");
        assert_eq!(slice(10_000, ms(1_050)), MAX_BATCH + BATCH);
        assert_eq!(slice(10_000, ms(1_300)), MAX_BATCH + 8 * BATCH);
        assert_eq!(slice(10_000, ms(2_000)), 10_000, "a lane that fell behind catches up");
        assert_eq!(slice(100, ms(10_000)), 100);
    }

    #[test]
    fn without_the_lane_the_same_burst_runs_first() {
        // the control for the test above: what tokio alone does
        let before = on_worker(async {
            let go = Arc::new(tokio::sync::Notify::new());
            let done = Arc::new(AtomicUsize::new(0));
            let rt = quinn::TokioRuntime;
            let waiting = Arc::new(AtomicUsize::new(0));
            for _ in 0..200 {
                let (go, done, waiting) = (go.clone(), done.clone(), waiting.clone());
                quinn::Runtime::spawn(&rt, parked(go, done, waiting));
            }
            while waiting.load(Relaxed) < 200 {
                tokio::task::yield_now().await;
            }
            go.notify_waiters();
            one_turn().await;
            done.load(Relaxed)
        });
        assert_eq!(before, 200, "tokio alone runs the whole burst before the endpoint's next turn");
    }

    #[test]
    fn a_queued_connection_that_turns_active_runs_at_once() {
        let ran = on_worker(async {
            let rt = endpoint();
            let go = Arc::new(tokio::sync::Notify::new());
            let done = Arc::new(AtomicUsize::new(0));
            let idle = drivers(&rt, 1, &go, &done).await;
            idle[0].idle();
            rt.lane.closed.store(true, Relaxed); // no tickets: only a promotion lets it run
            go.notify_waiters();
            for _ in 0..50 {
                tokio::task::yield_now().await;
            }
            let held = done.load(Relaxed);
            idle[0].active();
            (held, until(&done, 1).await)
        });
        assert_eq!(ran, (0, 1), "held while idle, run once active");
    }

    #[test]
    fn new_and_active_connections_are_never_held() {
        let done = on_worker(async {
            let rt = endpoint();
            rt.lane.closed.store(true, Relaxed); // no tickets at all
            let go = Arc::new(tokio::sync::Notify::new());
            let done = Arc::new(AtomicUsize::new(0));
            let classes = drivers(&rt, 3, &go, &done).await;
            classes[1].registered(); // within its grace time
            classes[2].idle();
            classes[2].active(); // carried a frame
            go.notify_waiters();
            until(&done, 3).await
        });
        assert_eq!(done, 3);
    }
}

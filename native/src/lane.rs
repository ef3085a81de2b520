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
//! the same queue. Here the driver of a registered connection that has carried no
//! DataFrame (an idle one) is not polled by its own task: the task queues it in the
//! lane, and one task, the sweeper, polls the queued drivers itself for a short turn
//! (`TURN`) per turn of the worker's queue, with a waker that queues them again
//! (`Requeue`): a flood of idle connections' work waits in the lane, never in tokio's
//! run queues, and every other task, a new connection's steps among them, waits behind
//! at most one such turn.
//!
//! A connection that carries frames is never slowed down, and costs one relaxed load
//! and an uncontended lock per poll. quinn 0.11 spawns exactly one future per endpoint
//! before any connection exists (its driver), then one per connection, from inside
//! `Incoming::accept` (`accept` below hands the connection's `Class` to its caller).

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

/// How long the sweeper runs idle connections' drivers per turn of the worker's queue
/// (a teardown is tens of µs: some tens of them), while none has waited long.
const TURN: Duration = Duration::from_micros(500);
/// At most this many drivers per turn, however cheap they are (the tasks they wake, a
/// closed connection's own among them, then fit tokio's local queue, 256).
const MAX_BATCH: usize = 128;
/// Once the oldest queued one has waited `AGE_START`, the turn doubles for each
/// `AGE_STEP` after that, up to `MAX_TURN`: an idle connection's keep-alive PING is
/// due 2 s into the 5 s idle timeout, so the lane must keep up with thousands of them
/// on a busy worker, while a mass close's turns stay short for its first second.
const AGE_START: Duration = Duration::from_secs(1);
const AGE_STEP: Duration = Duration::from_millis(100);
const MAX_TURN: Duration = Duration::from_millis(8);

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

type BoxedDriver = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One connection driver's place: in the fast lane (the default) or the slow one.
pub struct Class {
    /// Carried a DataFrame: fast for good.
    active: AtomicBool,
    /// Idle since `demote_at`: polled by the sweeper only.
    slow: AtomicBool,
    /// When an idle registered connection goes slow (ms since `epoch`, 0: not registered).
    demote_at: AtomicU64,
    /// Waiting in the sweeper's queue.
    queued: AtomicBool,
    /// Its task's waker, kept by the task's first slow poll (`active` wakes it, and the
    /// sweeper once the driver ended).
    waker: Mutex<Option<Waker>>,
    /// The waker the sweeper polls the driver with (`Requeue`): a wake-up of a slow
    /// connection puts it back in the lane without scheduling any tokio task.
    requeue: OnceLock<Waker>,
    /// quinn's connection driver: polled by its own task while fast, by the sweeper
    /// while slow; None once it ended.
    driver: Mutex<Option<BoxedDriver>>,
}

impl Class {
    fn new(driver: BoxedDriver) -> Self {
        Class {
            active: AtomicBool::new(false),
            slow: AtomicBool::new(false),
            demote_at: AtomicU64::new(0),
            queued: AtomicBool::new(false),
            waker: Mutex::new(None),
            requeue: OnceLock::new(),
            driver: Mutex::new(Some(driver)),
        }
    }

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
            if let Some(w) = self.waker.lock().as_ref() {
                w.wake_by_ref();
            }
        }
    }

    /// Whether its own task polls the driver now (false: the sweeper does).
    #[inline]
    fn fast(&self) -> bool {
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
        false
    }

    /// Polls the driver once with `cx` (drops it once it ends); true: it ended.
    fn poll_driver(&self, cx: &mut Context<'_>) -> bool {
        let mut driver = self.driver.lock();
        let Some(d) = driver.as_mut() else { return true };
        if d.as_mut().poll(cx).is_ready() {
            *driver = None; // quinn's connection state goes here, in the caller's turn
            return true;
        }
        false
    }
}

impl fmt::Debug for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Class").field("active", &self.active).field("slow", &self.slow).finish_non_exhaustive()
    }
}

/// The queue of slow connections waiting for the sweeper (at most one entry per
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
        drop(queued);
    }
}

/// Runs the queued idle connections' drivers itself, inside its own task, for up to a
/// turn's time (`turn`), then goes to the back of the worker's queue, behind everything
/// else that is ready. So a mass close's teardown never enters tokio's run queue in
/// bulk: between two of the sweeper's turns the endpoint, new connections, Python's
/// answers (from tokio's shared queue) and the connections that carry frames each get
/// theirs, and none of them waits behind more than one turn of teardown. (Waking the
/// drivers' own tasks instead, a slice at a time, put everything woken meanwhile behind
/// the whole slice, and a slice bigger than tokio's local queue, 256, spilled into the
/// shared queue ahead of Python's answers.) A push wakes the sweeper only when it is
/// idle: a wake from another task would put it first in line (tokio's LIFO slot), so
/// while there is work it reschedules itself, which tokio treats as a yield.
struct Sweeper(Arc<Lane>);

impl Future for Sweeper {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let lane = &self.0;
        if lane.closed.load(Relaxed) {
            return Poll::Ready(());
        }
        let started = Instant::now();
        let mut budget = None;
        for n in 0.. {
            let class = {
                let mut q = lane.queue.lock();
                let Some((at, class)) = q.waiting.pop_front() else {
                    if n == 0 {
                        q.sweeper = Some(cx.waker().clone()); // idle until the next push
                        return Poll::Pending;
                    }
                    break;
                };
                // the oldest one's wait sets this turn's length
                budget.get_or_insert_with(|| turn(started.saturating_duration_since(at)));
                class
            };
            class.queued.store(false, Relaxed);
            let requeue = class
                .requeue
                .get_or_init(|| Waker::from(Arc::new(Requeue { class: Arc::downgrade(&class), lane: lane.clone() })));
            // tokio's cooperative budget is per task turn (128 operations): the drivers
            // run here each get their own, or those late in a turn would stop for nothing
            if class.poll_driver_unconstrained(&mut Context::from_waker(requeue)) {
                if let Some(task) = class.waker.lock().take() {
                    task.wake(); // its task ends
                }
            }
            let (time, most) = budget.unwrap_or((TURN, MAX_BATCH));
            if n + 1 >= most || started.elapsed() >= time {
                break;
            }
        }
        cx.waker().wake_by_ref(); // one more turn: idle only after a turn with nothing queued
        Poll::Pending
    }
}

impl Class {
    fn poll_driver_unconstrained(&self, cx: &mut Context<'_>) -> bool {
        let mut polled = false;
        let mut once = std::pin::pin!(tokio::task::unconstrained(std::future::poll_fn(|cx| {
            polled = self.poll_driver(cx);
            Poll::Ready(())
        })));
        let _ = once.as_mut().poll(cx);
        polled
    }
}

/// A slow connection's driver's waker while the sweeper polls it: queues the connection
/// in the lane again (at most once), or wakes its task if it has turned fast. It holds
/// the connection weakly (quinn keeps its wakers in the state the driver owns).
struct Requeue {
    class: std::sync::Weak<Class>,
    lane: Arc<Lane>,
}

impl std::task::Wake for Requeue {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let Some(class) = self.class.upgrade() else { return };
        if !class.slow.load(Relaxed) {
            if let Some(task) = class.waker.lock().as_ref() {
                task.wake_by_ref();
            }
        } else if !class.queued.swap(true, Relaxed) {
            self.lane.push(class);
        }
    }
}

/// How long the sweeper runs this turn, and how many drivers at most, the oldest queued
/// one having waited `waited`.
fn turn(waited: Duration) -> (Duration, usize) {
    let late = waited.saturating_sub(AGE_START);
    if late.is_zero() {
        return (TURN, MAX_BATCH);
    }
    let doublings = (late.as_millis() / AGE_STEP.as_millis()).min(8) as u32 + 1;
    ((TURN * (1 << doublings)).min(MAX_TURN), MAX_BATCH << doublings)
}

/// A connection driver's task: polls the driver while its `Class` is fast, else queues
/// it for the sweeper.
struct Driver {
    class: Arc<Class>,
    lane: Arc<Lane>,
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let class = &self.class;
        if class.fast() {
            return if class.poll_driver(cx) { Poll::Ready(()) } else { Poll::Pending };
        }
        if class.driver.lock().is_none() {
            return Poll::Ready(()); // the sweeper ran it to its end
        }
        {
            // a task's waker stays the same for its life: kept once
            let mut w = class.waker.lock();
            if w.is_none() {
                *w = Some(cx.waker().clone());
            }
        }
        if !class.queued.swap(true, Relaxed) {
            self.lane.push(class.clone());
        }
        // it turned active meanwhile: it runs now
        if class.fast() {
            return if class.poll_driver(cx) { Poll::Ready(()) } else { Poll::Pending };
        }
        Poll::Pending
    }
}

/// How long the endpoint's driver may read the socket per turn of the worker's queue
/// (quinn reads for 50 µs, then goes to the back of the queue).
const READ_TURN: Duration = Duration::from_millis(1);

/// The endpoint's driver, polled again while it asks for more turns, for up to
/// `READ_TURN`: in a burst of datagrams for idle connections each read costs little
/// (their work waits in the lane), and a short turn would let the socket's buffer
/// overflow behind the rest of the queue. A turn that drains the socket ends at once.
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
            return quinn::Runtime::spawn(&quinn::TokioRuntime, Box::pin(Reader::new(future)));
            // the endpoint's driver
        }
        let class = Arc::new(Class::new(future));
        SPAWNED.with(|s| *s.borrow_mut() = Some(class.clone()));
        quinn::Runtime::spawn(&quinn::TokioRuntime, Box::pin(Driver { class, lane: self.lane.clone() }));
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
            let t0 = Instant::now();
            while t0.elapsed() < SPIN {} // a teardown's work
            done.fetch_add(1, Relaxed);
        })
    }

    /// What a fake driver costs when it runs (a teardown is tens of µs).
    const SPIN: Duration = Duration::from_micros(50);
    /// The most fake drivers one turn of the sweeper runs (it stops once a turn's time
    /// is over, each costing at least `SPIN`).
    const PER_TURN: usize = (TURN.as_micros() / SPIN.as_micros()) as usize + 1;

    /// Fake connection drivers spawned through `rt` (after its endpoint driver); each
    /// waits for `go`, then counts itself in `done`. Returns their classes once every one
    /// of them waits.
    async fn drivers(
        rt: &ZipperRuntime,
        n: usize,
        go: &Arc<tokio::sync::Notify>,
        done: &Arc<AtomicUsize>,
    ) -> Vec<Arc<Class>> {
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
        assert!(
            before <= 2 * PER_TURN,
            "{before} of 200 idle connections ran before the endpoint's next turn: the lane did not hold them"
        );
        assert_eq!(all, 200, "every idle connection ran in the end (no lost wake-up)");
    }

    #[test]
    fn turns_stay_short_for_a_second_then_grow_to_a_bound() {
        let ms = Duration::from_millis;
        assert_eq!(turn(ms(0)), (TURN, MAX_BATCH));
        assert_eq!(turn(ms(900)), (TURN, MAX_BATCH), "a mass close's turns stay short for a second");
        assert_eq!(turn(ms(1_050)), (TURN * 2, MAX_BATCH * 2));
        assert_eq!(turn(ms(1_300)), (TURN * 16, MAX_BATCH * 16));
        assert_eq!(turn(ms(3_000)).0, MAX_TURN, "a lane that fell behind catches up, a bounded turn at a time");
    }

    #[test]
    fn a_task_woken_from_another_thread_waits_behind_one_turn_at_most() {
        // Python's answer to a HandshakeFrame wakes its connection's task from another
        // thread (tokio's shared queue) while the lane works through a mass close
        let (n, queued, before, after) = on_worker(async {
            let rt = endpoint();
            let go = Arc::new(tokio::sync::Notify::new());
            let done = Arc::new(AtomicUsize::new(0));
            let n = 1_000;
            // idle connections that the lane ran before (their keep-alive): quinn keeps
            // the latest waker, the lane's
            let prime = Arc::new(tokio::sync::Notify::new());
            let ready = Arc::new(AtomicUsize::new(0));
            let waiting = Arc::new(AtomicUsize::new(0));
            let idle: Vec<Arc<Class>> = (0..n)
                .map(|_| {
                    let (prime, go, ready, waiting, done) =
                        (prime.clone(), go.clone(), ready.clone(), waiting.clone(), done.clone());
                    quinn::Runtime::spawn(
                        &rt,
                        Box::pin(async move {
                            let primed = prime.notified();
                            tokio::pin!(primed);
                            primed.as_mut().enable();
                            ready.fetch_add(1, Relaxed);
                            primed.await;
                            parked(go, done, waiting).await;
                        }),
                    );
                    SPAWNED.with(|s| s.borrow_mut().take()).expect("a connection driver has a class")
                })
                .collect();
            assert_eq!(until(&ready, n).await, n);
            for c in &idle {
                c.idle();
            }
            prime.notify_waiters();
            assert_eq!(until(&waiting, n).await, n);

            let (tx, rx) = tokio::sync::oneshot::channel::<(usize, usize)>();
            let answered = tokio::spawn({
                let done = done.clone();
                async move {
                    let (queued, before) = rx.await.unwrap();
                    (queued, before, done.load(Relaxed))
                }
            });
            // the other thread: once the burst waits in the lane, wake the task
            let (lane, from) = (rt.lane.clone(), done.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(30);
                while lane.queue.lock().waiting.len() < n / 10 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_micros(100));
                }
                let queued = lane.queue.lock().waiting.len();
                let _ = tx.send((queued, from.load(Relaxed)));
            });
            go.notify_waiters(); // a mass close
            let (queued, before, after) = answered.await.unwrap();
            assert_eq!(until(&done, n).await, n, "every idle connection ran in the end");
            (n, queued, before, after)
        });
        assert!(queued >= n / 10, "the burst waited in the lane ({queued} of {n})");
        assert!(
            after - before <= 3 * PER_TURN,
            "{} idle connections ran between the wake-up and the task's turn: more than a few of the sweeper's turns",
            after - before
        );
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
            rt.lane.closed.store(true, Relaxed); // no sweeper: only a promotion lets it run
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
            rt.lane.closed.store(true, Relaxed); // no sweeper at all
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

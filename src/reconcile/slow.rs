//! Slow generation (fresh DH primes, RSA 8192 keys) off the reconcile path: a reconcile
//! starts a tracked task and returns at once; the task runs on a blocking thread, at most
//! [`SlowTasks::slots`] at a time, and when it ends the resource is reconciled again to
//! collect the result, which stays available until a reconcile that no longer needs it
//! ([`SlowTasks::settle`]): a failed Secret write does not throw a finished generation
//! away. A task is cancelled when its resource is deleted, when a reconcile of the resource
//! does not ask for it any more, when it runs past the timeout, and when the operator stops
//! (a restart simply starts it again: nothing half-done is ever written). Work that cannot
//! be interrupted (an RSA key) runs to its end; its result is then discarded.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::channel::mpsc::UnboundedReceiver;
use tokio::sync::Semaphore;

use crate::material::MaterialError;
use crate::material::progress::Progress;
use crate::metrics::GenerateLabels;

use super::context::Context;
use super::outcome::task_owner;
use super::resource::KeysmithResource;
use super::wakeups::Wakeups;

/// The resource a task generates for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TaskOwner {
    /// Kind of the resource.
    pub kind: &'static str,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// What [`SlowTasks::poll`] found.
#[derive(Debug)]
pub enum Poll<T> {
    /// Still queued or running: a progress message for the `Generating` condition.
    Running(String),
    /// Done: the result (a copy; the task keeps it until [`SlowTasks::settle`]).
    Finished(Result<T, MaterialError>),
}

type Output = Result<Box<dyn Any + Send>, String>;

enum State {
    Queued,
    Running(Instant),
    Finished(Output),
}

struct Task {
    uid: String,
    job: String,
    progress: Arc<Progress>,
    state: Arc<Mutex<State>>,
}

impl Task {
    fn cancel(&self) {
        self.progress.cancel();
    }
}

/// The slow generations in flight, shared by every controller.
pub struct SlowTasks {
    tasks: Mutex<HashMap<TaskOwner, Task>>,
    permits: Arc<Semaphore>,
    slots: usize,
    timeout: Duration,
    wakeups: Wakeups,
    closed: std::sync::atomic::AtomicBool,
}

/// Polls the slow task `job` of `object` (see [`SlowTasks::poll`]), recording how long a
/// successful run took in `keysmith_generate_duration_seconds{kind, algorithm}`.
pub fn tracked<K, T, F>(ctx: &Context, object: &K, job: &str, algorithm: String, work: F) -> Poll<T>
where
    K: KeysmithResource,
    T: Clone + Send + 'static,
    F: FnOnce(&Progress) -> Result<T, MaterialError> + Send + 'static,
{
    let metrics = ctx.metrics.clone();
    let uid = kube::ResourceExt::uid(object).unwrap_or_default();
    ctx.slow
        .poll(&task_owner(object), &uid, job, move |progress| {
            let started = Instant::now();
            let result = work(progress);
            if result.is_ok() {
                let labels = GenerateLabels {
                    kind: K::KIND.into(),
                    algorithm,
                };
                metrics
                    .generate_duration
                    .get_or_create(&labels)
                    .observe(started.elapsed().as_secs_f64());
            }
            result
        })
}

/// Generates on a blocking thread now (a generation of seconds at most), recording how long
/// it took in `keysmith_generate_duration_seconds{kind, algorithm}`.
pub async fn timed_generation<T, F>(
    ctx: &Context,
    kind: &'static str,
    algorithm: String,
    work: F,
) -> Result<T, super::error::Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, MaterialError> + Send + 'static,
{
    let started = Instant::now();
    let made = tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| {
            super::error::Error::Generate(MaterialError::Crypto(format!(
                "generation task failed: {e}"
            )))
        })?
        .map_err(super::error::Error::Generate)?;
    ctx.metrics
        .generate_duration
        .get_or_create(&GenerateLabels {
            kind: kind.into(),
            algorithm,
        })
        .observe(started.elapsed().as_secs_f64());
    Ok(made)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SlowTasks {
    /// At most `slots` generations run at once (more wait, queued); each may take `timeout`.
    pub fn new(slots: usize, timeout: Duration) -> Self {
        let slots = slots.max(1);
        Self {
            tasks: Mutex::new(HashMap::new()),
            permits: Arc::new(Semaphore::new(slots)),
            slots,
            timeout,
            wakeups: Wakeups::default(),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// How many generations run at once.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// The `(namespace, name)` of every resource of `kind` whose task finished: the
    /// controller reconciles it again to collect the result.
    pub fn finished(&self, kind: &'static str) -> UnboundedReceiver<(String, String)> {
        self.wakeups.receiver(kind)
    }

    /// The result of `job` for `owner` (uid `uid`) if it finished, else its progress. The
    /// first call starts it; a task of another job or an earlier object of the same name is
    /// cancelled and replaced. `job` names what is generated, in words (e.g. "4096-bit DH
    /// parameters"); `work` does it on a blocking thread, checking `Progress` as it can.
    /// Once the operator is stopping, nothing new starts.
    pub fn poll<T, F>(&self, owner: &TaskOwner, uid: &str, job: &str, work: F) -> Poll<T>
    where
        T: Clone + Send + 'static,
        F: FnOnce(&Progress) -> Result<T, MaterialError> + Send + 'static,
    {
        let mut tasks = lock(&self.tasks);
        if let Some(task) = tasks.get(owner) {
            if task.uid == uid && task.job == job {
                return match self.check(task) {
                    Some(output) => Poll::Finished(output),
                    None => Poll::Running(self.describe(task)),
                };
            }
            task.cancel();
            tasks.remove(owner);
        }
        if self.closed.load(std::sync::atomic::Ordering::Relaxed) {
            return Poll::Running(format!("generating {job}: the operator is stopping"));
        }
        let task = self.start(owner.clone(), uid, job, work);
        let message = self.describe(&task);
        tasks.insert(owner.clone(), task);
        Poll::Running(message)
    }

    /// A copy of the output of a finished task, or a timeout error for one running too
    /// long (cancelled; the next poll starts it again).
    fn check<T: Clone + 'static>(&self, task: &Task) -> Option<Result<T, MaterialError>> {
        let state = lock(&task.state);
        match &*state {
            State::Finished(Ok(output)) => {
                Some(output.downcast_ref::<T>().cloned().ok_or_else(|| {
                    MaterialError::Crypto("the generation task returned something else".into())
                }))
            }
            State::Finished(Err(message)) => Some(Err(MaterialError::Crypto(message.clone()))),
            State::Running(since) if since.elapsed() > self.timeout => {
                drop(state);
                task.cancel();
                *lock(&task.state) = State::Finished(Err(format!(
                    "generating {} did not finish within the timeout of {}",
                    task.job,
                    human(self.timeout)
                )));
                self.check(task)
            }
            _ => None,
        }
    }

    /// Called after every reconcile of `owner` that did not wait for a task: forgets its
    /// task, cancelling one still running. With `failed` a finished result is kept for the
    /// retry (the write that should have stored it failed).
    pub fn settle(&self, owner: &TaskOwner, failed: bool) {
        let mut tasks = lock(&self.tasks);
        let Some(task) = tasks.get(owner) else {
            return;
        };
        let finished = matches!(*lock(&task.state), State::Finished(Ok(_)));
        if failed && finished {
            return;
        }
        if !finished {
            tracing::info!(kind = owner.kind, namespace = %owner.namespace, name = %owner.name, job = %task.job, "slow generation cancelled: no longer needed");
        }
        task.cancel();
        tasks.remove(owner);
    }

    fn start<T, F>(&self, owner: TaskOwner, uid: &str, job: &str, work: F) -> Task
    where
        T: Send + 'static,
        F: FnOnce(&Progress) -> Result<T, MaterialError> + Send + 'static,
    {
        let progress = Arc::new(Progress::default());
        let state = Arc::new(Mutex::new(State::Queued));
        let permits = self.permits.clone();
        let wakeup = self.wakeups.sender(owner.kind);
        let (task_progress, task_state) = (progress.clone(), state.clone());
        tracing::info!(kind = owner.kind, namespace = %owner.namespace, name = %owner.name, %job, "slow generation queued");
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            if task_progress.is_cancelled() {
                return;
            }
            *lock(&task_state) = State::Running(Instant::now());
            let worker_progress = task_progress.clone();
            let output = tokio::task::spawn_blocking(move || {
                work(&worker_progress)
                    .map(|t| Box::new(t) as Box<dyn Any + Send>)
                    .map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|e| Err(format!("the generation task failed: {e}")));
            if task_progress.is_cancelled() {
                return;
            }
            *lock(&task_state) = State::Finished(output);
            if let Some(wakeup) = wakeup {
                let _ = wakeup.unbounded_send((owner.namespace, owner.name));
            }
        });
        Task {
            uid: uid.to_owned(),
            job: job.to_owned(),
            progress,
            state,
        }
    }

    fn describe(&self, task: &Task) -> String {
        let timeout = human(self.timeout);
        match *lock(&task.state) {
            State::Queued => format!(
                "generating {}: queued, waiting for one of {} generation slots (timeout {timeout})",
                task.job, self.slots
            ),
            State::Running(since) => {
                let steps = task.progress.steps();
                let tested = if steps > 0 {
                    format!(", {steps} candidates tested")
                } else {
                    String::new()
                };
                format!(
                    "generating {}: running for {}{tested} (timeout {timeout})",
                    task.job,
                    human(since.elapsed())
                )
            }
            State::Finished(_) => format!("generating {}: finished", task.job),
        }
    }

    /// Cancels the tasks whose resource is gone: `alive(owner, uid)` is false.
    pub fn cancel_orphans(&self, alive: impl Fn(&TaskOwner, &str) -> bool) {
        lock(&self.tasks).retain(|owner, task| {
            let keep = alive(owner, &task.uid);
            if !keep {
                tracing::info!(kind = owner.kind, namespace = %owner.namespace, name = %owner.name, job = %task.job, "slow generation cancelled: the resource is gone");
                task.cancel();
            }
            keep
        });
    }

    /// The operator is stopping: cancels every task and starts no new one.
    pub fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        for (_, task) in lock(&self.tasks).drain() {
            task.cancel();
        }
    }

    /// How many tasks are queued or running.
    pub fn len(&self) -> usize {
        lock(&self.tasks).len()
    }

    /// True when no task is queued or running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `1h`, `2m10s`, `45s`.
fn human(d: Duration) -> String {
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(name: &str) -> TaskOwner {
        TaskOwner {
            kind: "KeyringSecret",
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    async fn wait_finished<T: Clone + Send + 'static>(
        tasks: &SlowTasks,
        owner: &TaskOwner,
        job: &str,
    ) -> Result<T, MaterialError> {
        for _ in 0..500 {
            if let Poll::Finished(r) =
                tasks.poll::<T, _>(owner, "uid", job, |_| unreachable!("already started"))
            {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the task did not finish");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_task_runs_once_and_hands_over_its_result_once() {
        let tasks = SlowTasks::new(1, Duration::from_secs(60));
        let mut finished = tasks.finished("KeyringSecret");
        let first = tasks.poll(&owner("a"), "uid", "job", |_| Ok(42u32));
        assert!(matches!(first, Poll::Running(ref m) if m.contains("generating job")));
        let value: u32 = wait_finished(&tasks, &owner("a"), "job").await.unwrap();
        assert_eq!(value, 42);
        use futures::StreamExt;
        assert_eq!(
            finished.next().await,
            Some(("ns".to_owned(), "a".to_owned()))
        );
        // Until settled, the result stays (a failed write retries with it).
        tasks.settle(&owner("a"), true);
        let again: u32 = wait_finished(&tasks, &owner("a"), "job").await.unwrap();
        assert_eq!(again, 42);
        tasks.settle(&owner("a"), false);
        assert!(tasks.is_empty(), "a settled task is forgotten");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_different_job_cancels_the_running_one() {
        let tasks = SlowTasks::new(2, Duration::from_secs(60));
        let (tx, rx) = std::sync::mpsc::channel();
        let first = tasks.poll::<u32, _>(&owner("a"), "uid", "slow", move |p| {
            let _ = tx.send(());
            while !p.is_cancelled() {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(MaterialError::Crypto("cancelled".into()))
        });
        assert!(matches!(first, Poll::Running(_)));
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let _ = tasks.poll(&owner("a"), "uid", "fast", |_| Ok(1u32));
        let value: u32 = wait_finished(&tasks, &owner("a"), "fast").await.unwrap();
        assert_eq!(value, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn orphans_are_cancelled_and_a_timeout_is_an_error() {
        let tasks = SlowTasks::new(1, Duration::from_millis(200));
        let (tx, rx) = std::sync::mpsc::channel();
        let _ = tasks.poll::<u32, _>(&owner("a"), "uid", "slow", move |p| {
            while !p.is_cancelled() {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = tx.send(());
            Err(MaterialError::Crypto("cancelled".into()))
        });
        // Queued behind nothing; the timeout ends it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        match tasks.poll::<u32, _>(&owner("a"), "uid", "slow", |_| unreachable!()) {
            Poll::Finished(Err(e)) => assert!(e.to_string().contains("timeout"), "{e}"),
            other => panic!("expected a timeout, got {other:?}"),
        }
        rx.recv_timeout(Duration::from_secs(5)).unwrap();

        let tasks = SlowTasks::new(1, Duration::from_secs(60));
        let (tx, rx) = std::sync::mpsc::channel();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let _ = tasks.poll::<u32, _>(&owner("b"), "uid", "slow", move |p| {
            let _ = started_tx.send(());
            while !p.is_cancelled() {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = tx.send(());
            Err(MaterialError::Crypto("cancelled".into()))
        });
        // A second task waits for the only slot.
        let queued = tasks.poll::<u32, _>(&owner("c"), "uid", "other", |_| Ok(3));
        assert!(
            matches!(queued, Poll::Running(ref m) if m.contains("queued")),
            "{queued:?}"
        );
        started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        tasks.cancel_orphans(|o, _| o.name != "b");
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let value: u32 = wait_finished(&tasks, &owner("c"), "other").await.unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn settling_cancels_a_running_task_and_closing_starts_nothing() {
        let tasks = SlowTasks::new(1, Duration::from_secs(60));
        let (tx, rx) = std::sync::mpsc::channel();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let _ = tasks.poll::<u32, _>(&owner("a"), "uid", "slow", move |p| {
            let _ = started_tx.send(());
            while !p.is_cancelled() {
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = tx.send(());
            Err(MaterialError::Crypto("cancelled".into()))
        });
        started_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        tasks.settle(&owner("a"), false);
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(tasks.is_empty());
        tasks.close();
        let refused = tasks.poll::<u32, _>(&owner("b"), "uid", "job", |_| Ok(1));
        assert!(
            matches!(refused, Poll::Running(ref m) if m.contains("stopping")),
            "{refused:?}"
        );
        assert!(tasks.is_empty(), "nothing starts once closed");
    }

    #[test]
    fn durations_read_like_kubernetes_durations() {
        assert_eq!(human(Duration::from_secs(3600)), "1h");
        assert_eq!(human(Duration::from_secs(130)), "2m10s");
        assert_eq!(human(Duration::from_secs(0)), "0s");
    }
}

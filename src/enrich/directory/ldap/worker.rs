//! The LDAP directory's one runtime: a current-thread tokio runtime on one background thread
//! (`ldap`), owned by the directory. The first sync, the refreshes and the live queries all
//! run on it; nothing else in the process starts a runtime or a thread for LDAP work.
//!
//! Callers hand it a future from any thread, inside another runtime or not, and either await
//! the answer ([`Worker::run`]) or wait for it synchronously, optionally within a bound
//! ([`Worker::wait`], [`Worker::wait_within`]); they never enter a runtime themselves, so
//! calling from inside the relay's or preview's runtime is safe. CPU-heavy steps (decoding and
//! indexing a sync's entries) go to the runtime's small blocking pool (`ldap-blocking`, at most
//! [`BLOCKING_THREADS`] threads, which end when idle), so a sync never delays a live query.
//!
//! Dropping the worker stops it at once: every task still running (the refresh loop, a query
//! waiting for a frozen server) is cancelled and the thread ends. The drop waits for that
//! (moments; a running index build winds down first) except on the worker's own thread or
//! inside an async runtime, where the thread is left to end by itself. Errors:
//! [`LdapError::Worker`].

use std::sync::mpsc;
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use tokio::runtime::Handle;

use super::LdapError;

/// The most threads the runtime's blocking pool runs at once (an index build, name lookups).
pub(crate) const BLOCKING_THREADS: usize = 4;

/// The directory's runtime and its thread.
pub(crate) struct Worker {
    handle: Handle,
    thread_id: ThreadId,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the thread and its runtime.
    pub fn start() -> Result<Worker, LdapError> {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, started) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("ldap".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .thread_name("ldap-blocking")
                    .max_blocking_threads(BLOCKING_THREADS)
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let _ = ready.send(Ok(runtime.handle().clone()));
                // Runs the spawned tasks until the worker is dropped (or its sender is).
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                // Dropping the runtime here cancels every task and ends the blocking pool.
            })
            .map_err(|e| worker_error("could not start its thread", Some(e)))?;
        let handle = match started.recv() {
            Ok(Ok(handle)) => handle,
            Ok(Err(e)) => return Err(worker_error("could not start its runtime", Some(e))),
            Err(_) => return Err(worker_error("ended while starting", None)),
        };
        Ok(Worker { handle, thread_id: thread.thread().id(), stop: Some(stop), thread: Some(thread) })
    }

    /// Runs `future` on the worker and awaits its output (from any runtime).
    pub async fn run<F>(&self, future: F) -> Result<F::Output, LdapError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match self.handle.spawn(future).await {
            Ok(output) => Ok(output),
            Err(e) if e.is_panic() => Err(worker_error("failed (a task panicked)", None)),
            Err(_) => Err(worker_error("stopped before answering", None)),
        }
    }

    /// Runs `future` on the worker and blocks this thread until its output is there.
    pub fn wait<F>(&self, future: F) -> Result<F::Output, LdapError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.wait_for(future, None)?.ok_or_else(|| worker_error("stopped before answering", None))
    }

    /// Runs `future` on the worker and blocks this thread at most `bound`; `None` when the
    /// answer did not come in time (the task is then cancelled), when the worker is gone, or
    /// when called on the worker's own thread (waiting there could never be answered).
    pub(crate) fn wait_within<F>(&self, future: F, bound: Duration) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.wait_for(future, Some(bound)).ok().flatten()
    }

    /// `Err` only on the worker's own thread; `Ok(None)` when no answer came (in time).
    fn wait_for<F>(&self, future: F, bound: Option<Duration>) -> Result<Option<F::Output>, LdapError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if std::thread::current().id() == self.thread_id {
            return Err(worker_error("cannot be waited for on its own thread", None));
        }
        let (reply, answer) = mpsc::sync_channel(1);
        let task = self.handle.spawn(async move {
            let _ = reply.send(future.await);
        });
        let received = match bound {
            None => answer.recv().ok(),
            Some(bound) => answer.recv_timeout(bound).ok(),
        };
        if received.is_none() {
            task.abort();
        }
        Ok(received)
    }

    /// Starts `future` on the worker; it runs until done or until the worker is dropped.
    pub fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(self.handle.spawn(future));
    }

    /// True on the worker's own thread.
    pub(crate) fn is_current(&self) -> bool {
        std::thread::current().id() == self.thread_id
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let may_block = !self.is_current() && Handle::try_current().is_err();
        if let Some(thread) = self.thread.take()
            && may_block
            && thread.join().is_err()
        {
            tracing::warn!("the ldap worker thread panicked while stopping");
        }
    }
}

fn worker_error(what: &'static str, source: Option<std::io::Error>) -> LdapError {
    LdapError::Worker { what, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_from_any_thread_and_inside_another_runtime() {
        let worker = Worker::start().expect("starts");
        assert_eq!(worker.wait(async { 40 + 2 }).expect("answered"), 42);
        let other = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let (awaited, waited) = other.block_on(async {
            let awaited = worker.run(async { "run" }).await.expect("answered");
            // blocking wait inside a runtime: allowed (no runtime is entered), answered
            (awaited, worker.wait(async { "wait" }).expect("answered"))
        });
        assert_eq!((awaited, waited), ("run", "wait"));
    }

    #[test]
    fn a_bound_gives_up_and_cancels_the_task() {
        let worker = Worker::start().expect("starts");
        let (dropped, flag) = mpsc::channel::<()>();
        let slow = async move {
            let _still_running = dropped;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        };
        assert_eq!(worker.wait_within(slow, Duration::from_millis(20)), None);
        // the task's future was dropped, so the channel is closed
        assert!(flag.recv().is_err(), "the task was cancelled");
    }

    #[test]
    fn dropping_the_worker_cancels_its_tasks_and_ends_the_thread() {
        let worker = Worker::start().expect("starts");
        let (dropped, flag) = mpsc::channel::<()>();
        worker.spawn(async move {
            let _still_running = dropped;
            std::future::pending::<()>().await;
        });
        let thread = worker.wait(async { std::thread::current().id() }).expect("answered");
        assert_ne!(thread, std::thread::current().id());
        drop(worker);
        assert!(flag.recv().is_err(), "the forever task was cancelled");
    }

    #[test]
    fn waiting_on_its_own_thread_is_refused_not_a_deadlock() {
        let worker = std::sync::Arc::new(Worker::start().expect("starts"));
        let inner = std::sync::Arc::clone(&worker);
        let (answer, answered) = mpsc::channel();
        worker.spawn(async move {
            let _ = answer.send((inner.is_current(), inner.wait_within(async { 1 }, Duration::from_secs(60))));
        });
        assert_eq!(answered.recv().expect("answered"), (true, None));
    }
}

//! A thread of its own for the writer's connection.
//!
//! The PostgreSQL driver is synchronous and runs its own small async runtime for every call,
//! which it cannot do on a thread that already runs one (the actor threads do). So the writer's
//! connection lives on a plain thread, and each call is handed to it and waited for.
//!
//! A call may be given a deadline: when the answer has not come by then (a server that stopped
//! answering, a network that drops packets), the caller gets [`StorageErrorKind::TimedOut`]
//! and the thread is abandoned with whatever it was doing; the next call starts a fresh thread
//! with a fresh connection. An abandoned transaction may still commit later: its messages were
//! answered 503, so their redelivery is a harmless duplicate.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use crate::storage::{StorageError, StorageErrorKind};

type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// Where the answer to a [`Worker::submit`]ted call arrives.
pub struct Answer<T>(mpsc::Receiver<Result<T, StorageError>>);

/// Runs calls on a `S` (the state a connection lives in) owned by a thread of its own.
pub struct Worker<S: Send + 'static> {
    make: Box<dyn Fn() -> S + Send>,
    jobs: Option<mpsc::Sender<Job<S>>>,
}

impl<S: Send + 'static> Worker<S> {
    /// A worker whose thread starts with the state `make` builds (lazily, on the first call).
    pub fn new(make: impl Fn() -> S + Send + 'static) -> Self {
        Self {
            make: Box::new(make),
            jobs: None,
        }
    }

    /// Runs `call` on the worker's thread and returns its answer, or `TimedOut` when it has not
    /// answered within `deadline` (no deadline: wait as long as it takes).
    pub fn run<T: Send + 'static>(
        &mut self,
        deadline: Option<Duration>,
        call: impl FnOnce(&mut S) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let answer = self.submit(call);
        self.wait(answer, deadline)
    }

    /// Hands `call` to the worker's thread without waiting; [`Worker::wait`] gets its answer.
    pub fn submit<T: Send + 'static>(
        &mut self,
        call: impl FnOnce(&mut S) -> Result<T, StorageError> + Send + 'static,
    ) -> Answer<T> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job<S> = Box::new(move |state| {
            let _ = reply.send(call(state));
        });
        if let Err(mpsc::SendError(job)) = self.sender().send(job) {
            // The thread is gone (it panicked): start another and hand it the call.
            self.jobs = None;
            let _ = self.sender().send(job);
        }
        Answer(answer)
    }

    /// The answer to a submitted call, or `TimedOut` when it has not come within `deadline`;
    /// then the thread is abandoned.
    pub fn wait<T>(
        &mut self,
        answer: Answer<T>,
        deadline: Option<Duration>,
    ) -> Result<T, StorageError> {
        let answered = match deadline {
            Some(deadline) => answer.0.recv_timeout(deadline),
            None => answer.0.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match answered {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => {
                self.jobs = None;
                Err(StorageError::new(
                    StorageErrorKind::TimedOut,
                    format!("the database did not answer within {deadline:?}"),
                ))
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.jobs = None;
                Err(StorageError::new(
                    StorageErrorKind::Other,
                    "the database connection's thread stopped",
                ))
            }
        }
    }

    fn sender(&mut self) -> &mpsc::Sender<Job<S>> {
        if self.jobs.is_none() {
            let (jobs, incoming) = mpsc::channel::<Job<S>>();
            let mut state = (self.make)();
            std::thread::Builder::new()
                .name("postgres-writer".to_owned())
                .spawn(move || {
                    for job in incoming {
                        job(&mut state);
                    }
                })
                .expect("a thread can be started");
            self.jobs = Some(jobs);
        }
        self.jobs.as_ref().expect("a thread was just started")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_run_in_order_on_one_state() {
        let mut worker = Worker::new(Vec::<u32>::new);
        for n in 0..3 {
            worker
                .run(None, move |seen: &mut Vec<u32>| {
                    seen.push(n);
                    Ok(())
                })
                .unwrap();
        }
        let seen = worker.run(None, |seen: &mut Vec<u32>| Ok(seen.clone()));
        assert_eq!(seen.unwrap(), vec![0, 1, 2]);
    }

    #[test]
    fn a_call_past_its_deadline_times_out_and_the_next_gets_a_fresh_state() {
        let mut worker = Worker::new(Vec::<u32>::new);
        worker
            .run(None, |seen: &mut Vec<u32>| {
                seen.push(1);
                Ok(())
            })
            .unwrap();
        let stuck = worker.run(Some(Duration::from_millis(50)), |_: &mut Vec<u32>| {
            std::thread::sleep(Duration::from_millis(500));
            Ok(())
        });
        assert_eq!(stuck.unwrap_err().kind, StorageErrorKind::TimedOut);
        let fresh = worker.run(Some(Duration::from_secs(5)), |seen: &mut Vec<u32>| {
            Ok(seen.clone())
        });
        assert_eq!(fresh.unwrap(), Vec::<u32>::new());
    }
}

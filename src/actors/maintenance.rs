//! `MaintenanceActor`: runs the work a store declares for a thread of its own
//! ([`Storage::background`](crate::storage::Storage::background)), so neither the writer nor the
//! HTTP workers wait for it. Each step hears [`Load::Busy`]: it runs beside ingest.

use actix::{Actor, AsyncContext, Context};

use crate::storage::{Load, Progress, Upkeep};

pub struct MaintenanceActor {
    task: Box<dyn Upkeep>,
}

impl MaintenanceActor {
    pub fn new(task: Box<dyn Upkeep>) -> Self {
        Self { task }
    }

    /// Steps until the task has nothing more waiting, or fails.
    fn run(&mut self) {
        loop {
            match self.task.step(Load::Busy) {
                Ok(Progress::Done) => return,
                Ok(Progress::MoreWaiting) => {}
                Err(error) => {
                    tracing::warn!(error = %error, "store maintenance failed; retrying");
                    return;
                }
            }
        }
    }
}

impl Actor for MaintenanceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.task.interval(), |act, _| act.run());
    }
}

//! `MaintenanceActor`: runs the store's background upkeep (WAL checkpoints for SQLite) on its
//! own thread, so neither the writer nor the HTTP workers wait for it.

use actix::{Actor, AsyncContext, Context};

use crate::storage::Maintenance;

pub struct MaintenanceActor {
    task: Box<dyn Maintenance>,
}

impl MaintenanceActor {
    pub fn new(task: Box<dyn Maintenance>) -> Self {
        Self { task }
    }
}

impl Actor for MaintenanceActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.task.interval(), |act, _| {
            if let Err(error) = act.task.run_once() {
                tracing::warn!(error = %error, "store maintenance failed; retrying");
            }
        });
    }
}

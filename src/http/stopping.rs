//! Connections end cleanly, and soon, while the service stops.
//!
//! Once a stop has begun (see `startup`: readiness turns 503 for `SHUTDOWN_DELAY_SECS` while
//! requests are still served), every answer says `Connection: close` and the connection is
//! closed after it. A client or a proxy holding a pooled connection to this replica then opens
//! its next one elsewhere, instead of sending a request on a connection that the stop closes a
//! moment later, where it would get no answer.
//!
//! [`OpenConnections`] counts the connections from the moment they are handed to the HTTP
//! service until they close, and says at once when none is left. The server's own graceful
//! stop looks only once a second, so under load a stop would last a second longer than its
//! last answer: with one replica, a second more in which senders get no answer.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web::Data;
use tokio::sync::Notify;

use crate::actors::HealthHandle;

/// Closes the connection after this answer when the service is stopping.
pub async fn close_connections_while_stopping(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let health = req.app_data::<Data<HealthHandle>>().cloned();
    let mut response = next.call(req).await?;
    if health.is_some_and(|health| health.is_stopping()) {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(response)
}

/// How many connections are open; clones share the count.
#[derive(Clone, Default)]
pub struct OpenConnections(Arc<Count>);

#[derive(Default)]
struct Count {
    open: AtomicUsize,
    closed_the_last: Notify,
}

impl OpenConnections {
    /// For `HttpServer::on_connect`: counts this connection until it closes (its extensions
    /// are dropped with it).
    pub fn track(&self, _connection: &dyn Any, extensions: &mut Extensions) {
        self.0.open.fetch_add(1, Ordering::SeqCst);
        extensions.insert(OpenConnection(Arc::clone(&self.0)));
    }

    /// Resolves once no connection is open.
    pub async fn none_left(&self) {
        loop {
            let closed = self.0.closed_the_last.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if self.0.open.load(Ordering::SeqCst) == 0 {
                return;
            }
            closed.await;
        }
    }
}

/// Held in a connection's extensions: one open connection, until dropped.
struct OpenConnection(Arc<Count>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.closed_the_last.notify_waiters();
        }
    }
}

//! Keep-alive connections end cleanly while the service stops.
//!
//! Once a stop has begun (see `startup`: readiness turns 503 for `SHUTDOWN_DELAY_SECS` while
//! requests are still served), every answer says `Connection: close` and the connection is
//! closed after it. A client or a proxy holding a pooled connection to this replica then opens
//! its next one elsewhere, instead of sending a request on a connection that the stop closes a
//! moment later, where it would get no answer.

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web::Data;

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

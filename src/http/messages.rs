//! `GET /messages` and `GET /stats`: read-only views answered by the reader pool.

use actix_web::web::Bytes;
use actix_web::web::{Data, Json, Query};
use actix_web::{HttpRequest, HttpResponse, get};
use serde::Serialize;

use super::auth::ReadAccess;
use crate::actors::ReaderPool;
use crate::domain::validation::{FieldError, Location};
use crate::domain::{CursorCodec, MessageFilter, MessageQuery, Position, Stats, StoredMessage};
use crate::error::ApiError;

/// The `/messages` response body.
#[derive(Serialize)]
pub struct MessagesPage {
    pub data: Vec<StoredMessage>,
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
    /// Pass as `cursor` (with the same filters) for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// Rows per read while streaming an export.
const EXPORT_SLICE: usize = 1000;

#[get("/messages")]
pub async fn list(
    _: ReadAccess,
    req: HttpRequest,
    readers: Data<ReaderPool>,
    cursors: Data<CursorCodec>,
) -> Result<Json<MessagesPage>, ApiError> {
    let pairs = query_pairs(&req)?;
    let query = MessageQuery::from_pairs(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &cursors,
    )?;
    let (limit, offset, filter) = (query.limit, query.offset, query.filter.clone());
    let page = readers.list(query).await?;
    Ok(Json(MessagesPage {
        data: page.data,
        total: page.total,
        limit,
        offset,
        next_cursor: page.next.map(|next| cursors.seal(&next, &filter)),
    }))
}

/// Streams every message matching the filters as NDJSON, in listing order, a slice at a time.
#[get("/messages/export")]
pub async fn export(
    _: ReadAccess,
    req: HttpRequest,
    readers: Data<ReaderPool>,
) -> Result<HttpResponse, ApiError> {
    let pairs = query_pairs(&req)?;
    let filter = MessageFilter::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let readers = readers.get_ref().clone();
    // The first slice is read before answering, so an unavailable database is a proper 503.
    let first = readers.scan(filter.clone(), None, EXPORT_SLICE).await?;
    let slices = futures_util::stream::unfold(
        (Some(first), None::<Position>, readers, filter),
        |(ready, after, readers, filter)| async move {
            let slice = match (ready, after) {
                (Some(slice), _) => slice,
                (None, None) => return None,
                (None, Some(after)) => {
                    match readers
                        .scan(filter.clone(), Some(after), EXPORT_SLICE)
                        .await
                    {
                        Ok(slice) => slice,
                        Err(error) => {
                            tracing::error!(error = %error, "export interrupted");
                            let failed = std::io::Error::other("export interrupted");
                            return Some((Err(failed), (None, None, readers, filter)));
                        }
                    }
                }
            };
            let mut lines = Vec::with_capacity(slice.messages.len() * 160);
            slice
                .messages
                .iter()
                .for_each(|m| m.write_ndjson(&mut lines));
            Some((Ok(Bytes::from(lines)), (None, slice.next, readers, filter)))
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(slices))
}

/// The decoded query-string pairs, in order.
fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, ApiError> {
    Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(Query::into_inner)
        .map_err(|_| {
            ApiError::Validation(vec![FieldError::new(
                Location::query_string(),
                "query_invalid",
                "The query string could not be decoded",
            )])
        })
}

#[get("/stats")]
pub async fn stats(_: ReadAccess, readers: Data<ReaderPool>) -> Result<Json<Stats>, ApiError> {
    Ok(Json(readers.stats().await?))
}

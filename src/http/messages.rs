//! `GET /messages` and `GET /stats`: read-only views answered by the reader pool.

use actix_web::web::{Data, Json, Query};
use actix_web::{HttpRequest, get};
use serde::Serialize;

use super::auth::ReadAccess;
use crate::actors::ReaderPool;
use crate::domain::validation::{FieldError, Location};
use crate::domain::{CursorCodec, MessageQuery, Stats, StoredMessage};
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

#[get("/messages")]
pub async fn list(
    _: ReadAccess,
    req: HttpRequest,
    readers: Data<ReaderPool>,
    cursors: Data<CursorCodec>,
) -> Result<Json<MessagesPage>, ApiError> {
    let pairs = Query::<Vec<(String, String)>>::from_query(req.query_string()).map_err(|_| {
        vec![FieldError::new(
            Location::query_string(),
            "query_invalid",
            "The query string could not be decoded",
        )]
    })?;
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

#[get("/stats")]
pub async fn stats(_: ReadAccess, readers: Data<ReaderPool>) -> Result<Json<Stats>, ApiError> {
    Ok(Json(readers.stats().await?))
}

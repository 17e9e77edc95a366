//! `GET /messages`, `GET /messages/export` and `GET /stats`: read-only views answered by the
//! reader pool. Their answers hold messages, so they carry `Cache-Control: no-store`.

use actix_web::http::header::CACHE_CONTROL;
use actix_web::web::Bytes;
use actix_web::web::{Data, Json, Query};
use actix_web::{CustomizeResponder, HttpRequest, HttpResponse, Responder, get};
use futures_util::{StreamExt, stream};
use serde::Serialize;
use utoipa::{IntoParams, IntoResponses, ToSchema};

use super::auth::ReadAccess;
use crate::actors::ReaderPool;
use crate::domain::validation::{FieldError, Location};
use crate::domain::{Message, MessageFilter, MessageQuery, MessageSlice, Stats};
use crate::error::{ApiError, ErrorBody, ValidationErrorBody};
use crate::signing::cursor::CursorCodec;

/// One page of `/messages`.
#[derive(Serialize, ToSchema)]
pub struct MessagesPage {
    /// The page's messages, ordered by the instant `ts` denotes, then by `message_id`.
    pub data: Vec<Message>,
    /// Every message matching the filters, ignoring `limit`, `offset` and `cursor`.
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
    /// Pass as `cursor` (with the same filters) for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// The filters of `/messages` and `/messages/export`, as the OpenAPI document lists them; the
/// handlers parse them with `MessageFilter` (a test checks the bounds against it). All given
/// filters must hold; unknown parameters are ignored and a repeated one takes its last value.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "only describes the parameters; MessageFilter parses them"
)]
pub struct FilterParams {
    /// Exact sender, E.164. A leading space is read as `+` (an unencoded `+` decodes to one).
    #[param(pattern = r"^\+[0-9]{1,15}$", example = "+919876543210")]
    from: Option<String>,
    /// Exact recipient, E.164, read like `from`.
    #[param(pattern = r"^\+[0-9]{1,15}$", example = "+14155550100")]
    to: Option<String>,
    /// RFC 3339 UTC (`Z` only, as `ts`): messages whose `ts` is at or after this instant.
    #[param(
        format = DateTime,
        pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$",
        example = "2025-01-01T00:00:00Z"
    )]
    since: Option<String>,
    /// RFC 3339 UTC (`Z` only, as `ts`): messages whose `ts` is strictly before this instant.
    #[param(
        format = DateTime,
        pattern = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$",
        example = "2025-02-01T00:00:00Z"
    )]
    until: Option<String>,
    /// Case-insensitive (all of Unicode) substring of `text`; every character is literal,
    /// `%` and `_` included. Empty means no filter. At most 4096 characters, like `text`.
    #[param(max_length = 4096)]
    q: Option<String>,
}

/// The paging parameters of `/messages`, as the OpenAPI document lists them.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "only describes the parameters; MessageQuery parses them"
)]
pub struct PageParams {
    /// Messages per page.
    #[param(minimum = 1, maximum = 100, default = 50)]
    limit: Option<u32>,
    /// Messages to skip; not together with `cursor` unless `0`.
    #[param(minimum = 0, default = 0)]
    offset: Option<u64>,
    /// The `next_cursor` of a previous page, with the same filters: continue right after its
    /// last row. An altered cursor, or one made for other filters or another `WEBHOOK_SECRET`,
    /// is a `422` at `["query", "cursor"]`. Empty means absent, as for `q`.
    cursor: Option<String>,
}

/// The failures every read can answer, as the OpenAPI document lists them beside each read's
/// own responses.
#[derive(IntoResponses)]
#[allow(
    dead_code,
    reason = "only describes the responses; ApiError renders them"
)]
pub enum ReadFailures {
    /// `API_TOKEN` is set and the bearer token is missing or wrong
    #[response(
        status = 401,
        headers(("WWW-Authenticate" = String, description = "`Bearer`")),
        example = json!({"detail": "missing or invalid bearer token"})
    )]
    Unauthorized(ErrorBody),
    /// The database is unavailable, or the read ran past `READ_TIMEOUT_MS` and was stopped
    #[response(
        status = 503,
        headers(("Retry-After" = String, description = "Seconds to wait: `1`"))
    )]
    Unavailable(ErrorBody),
}

/// Rows per read while streaming an export.
const EXPORT_SLICE: usize = 1000;

/// List messages
///
/// Filtered and paginated, ordered by the instant `ts` denotes, then by `message_id`. A page
/// and its `total` come from one consistent snapshot.
#[utoipa::path(
    operation_id = "list_messages",
    tag = "read",
    params(PageParams, FilterParams),
    security(("api_token" = [])),
    responses(
        (status = 200, description = "One page", body = MessagesPage,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 422, description = "A parameter is malformed or out of range; `loc` is \
            `[\"query\", name]`", body = ValidationErrorBody),
        ReadFailures,
    )
)]
#[get("/messages")]
pub async fn list(
    _: ReadAccess,
    req: HttpRequest,
    readers: Data<ReaderPool>,
    cursors: Data<CursorCodec>,
) -> Result<CustomizeResponder<Json<MessagesPage>>, ApiError> {
    let pairs = query_pairs(&req)?;
    let query = MessageQuery::from_pairs(
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        cursors.get_ref(),
    )?;
    let (limit, offset, filter) = (query.limit, query.offset, query.filter.clone());
    let page = readers.list(query).await?;
    Ok(not_stored(Json(MessagesPage {
        data: page.data,
        total: page.total,
        limit,
        offset,
        next_cursor: page.next.map(|next| cursors.seal(&next, &filter)),
    })))
}

/// `answer` with `Cache-Control: no-store`: it holds messages, which no cache may keep.
pub(super) fn not_stored<R: Responder>(answer: R) -> CustomizeResponder<R> {
    answer.customize().insert_header((CACHE_CONTROL, NO_STORE))
}

pub(super) const NO_STORE: &str = "no-store";

/// Export messages
///
/// Streams every message matching the filters as NDJSON (one `Message` object per line), in
/// listing order, with constant memory. Takes the filters of `/messages`, no paging.
#[utoipa::path(
    operation_id = "export_messages",
    tag = "read",
    params(FilterParams),
    security(("api_token" = [])),
    responses(
        (status = 200, description = "Every matching message, one JSON object per line",
            content_type = "application/x-ndjson", body = Message,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 422, description = "A filter is malformed; `loc` is `[\"query\", name]`",
            body = ValidationErrorBody),
        ReadFailures,
    )
)]
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
    let MessageSlice { messages, next } = readers.scan(filter.clone(), None, EXPORT_SLICE).await?;
    let rest = stream::try_unfold(
        (next, readers, filter),
        |(after, readers, filter)| async move {
            let Some(after) = after else {
                return Ok(None);
            };
            let slice = readers
                .scan(filter.clone(), Some(after), EXPORT_SLICE)
                .await
                .map_err(|error| {
                    tracing::error!(error = %error, "export interrupted");
                    std::io::Error::other("export interrupted")
                })?;
            Ok(Some((
                ndjson(&slice.messages),
                (slice.next, readers, filter),
            )))
        },
    );
    let first = async move { Ok::<_, std::io::Error>(ndjson(&messages)) };
    let slices = stream::once(first).chain(rest);
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header((CACHE_CONTROL, NO_STORE))
        .streaming(slices))
}

/// Messages as NDJSON lines.
fn ndjson(messages: &[Message]) -> Bytes {
    let mut lines = Vec::with_capacity(messages.len() * 160);
    messages.iter().for_each(|m| m.write_ndjson(&mut lines));
    Bytes::from(lines)
}

/// The decoded query-string pairs, in order.
pub(super) fn query_pairs(req: &HttpRequest) -> Result<Vec<(String, String)>, ApiError> {
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

/// Statistics
///
/// Totals, the ten busiest senders and the first and last `ts`, kept up to date as messages
/// are stored, so answering reads a few rows whatever the database size.
#[utoipa::path(
    operation_id = "get_stats",
    tag = "read",
    security(("api_token" = [])),
    responses(
        (status = 200, description = "The aggregates", body = Stats,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        ReadFailures,
    )
)]
#[get("/stats")]
pub async fn stats(
    _: ReadAccess,
    readers: Data<ReaderPool>,
) -> Result<CustomizeResponder<Json<Stats>>, ApiError> {
    Ok(not_stored(Json(readers.stats().await?)))
}

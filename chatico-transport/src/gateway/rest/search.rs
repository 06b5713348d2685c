//! Message search.

use axum::Json;
use axum::extract::State;
use chatico_core::ErrorBody;
use chatico_core::ids::ConversationId;
use chatico_core::protocol::{SearchRequest, SearchResults, paths};
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::Caller;
use super::{ApiResult, S};
use crate::gateway::error::ApiQuery;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchParams {
    /// The words to find, all of them (case-insensitive, whole words; punctuation separates
    /// words and is never query syntax). 1 to `max_search_query_chars` characters.
    q: String,
    /// Only this conversation (`404` if the caller is not a member).
    #[param(value_type = Option<String>, format = Uuid)]
    conversation_id: Option<ConversationId>,
    /// The `next_cursor` of the previous page of the same search.
    cursor: Option<String>,
    /// Page size (clamped to `max_search_page`). Default 20.
    limit: Option<u32>,
}

/// A page of the messages the caller can read that contain every word of `q`: their
/// conversations, from when they joined, never deleted or hidden messages. Best match
/// first, then newest first.
#[utoipa::path(get, path = paths::SEARCH, tag = "messages",
    security(("bearer" = [])), params(SearchParams),
    responses((status = 200, description = "One page of results", body = SearchResults),
        (status = 400, description = "`invalid_input` (`q`: empty, too long, no words, too many words; \
            `cursor`: not one this search handed out)", body = ErrorBody),
        (status = 404, description = "`not_found` (`conversation_id` of a conversation the caller is not in)",
            body = ErrorBody)))]
pub(super) async fn search(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiQuery(p): ApiQuery<SearchParams>,
) -> ApiResult<Json<SearchResults>> {
    let req = SearchRequest {
        q: p.q,
        conversation_id: p.conversation_id,
        cursor: p.cursor,
        limit: p.limit,
    };
    Ok(Json(gw.engine.search_messages(ctx.user_id, req).await?))
}

//! Changes since a cursor.

use axum::Json;
use axum::extract::State;
use chatico_core::ErrorBody;
use chatico_core::protocol::{SyncResponse, paths};
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::Caller;
use super::{ApiResult, S};
use crate::gateway::error::ApiQuery;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SyncParams {
    /// The cursor to read after (0 for everything).
    since: i64,
    /// Page size (clamped). Default 200.
    limit: Option<u32>,
}

/// Changes after a cursor (one page) and the ephemeral state now.
#[utoipa::path(get, path = paths::SYNC, tag = "sync", security(("bearer" = [])), params(SyncParams),
    responses((status = 200, description = "A page of changes; `limited` when more remain", body = SyncResponse),
        (status = 400, description = "`invalid_input` (since)", body = ErrorBody)))]
pub(super) async fn sync(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiQuery(q): ApiQuery<SyncParams>,
) -> ApiResult<Json<SyncResponse>> {
    let limit = q.limit.unwrap_or(gw.config.sync_page);
    Ok(Json(gw.engine.sync(ctx.user_id, q.since, limit).await?))
}

//! This node's health, for load balancers and operators.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chatico_core::protocol::{Health, HealthStatus, paths};

use super::S;

/// How this node's delivery is doing (no authentication). `degraded` still answers 200: the
/// node serves its own users, and other nodes' events reach them from the store's tail
/// about a second late; taking every node out of a load balancer on a broker outage would
/// turn a delay into an outage. Only a draining node answers 503.
#[utoipa::path(get, path = paths::HEALTH, tag = "meta",
    responses((status = 200, description = "`ok` or `degraded` (see the body)", body = Health),
        (status = 503, description = "`shutting_down`: the node is draining its connections", body = Health)))]
pub(super) async fn health(State(gw): State<S>) -> (StatusCode, Json<Health>) {
    let h = gw.cluster.health(&gw);
    let status = match h.status {
        HealthStatus::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        HealthStatus::Ok | HealthStatus::Degraded => StatusCode::OK,
    };
    (status, Json(h))
}

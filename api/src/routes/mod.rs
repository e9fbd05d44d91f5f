//! The API's operations, one file per resource; the webhooks, with several
//! groups of operations, have a folder with a file per group. Each file's
//! `*Api` struct is a poem-openapi service; [`all`] combines them into one
//! spec.

pub mod admin;
pub mod deliveries;
pub mod event_types;
pub mod events;
pub mod health;
pub mod me;
pub mod portal;
pub mod tenants;
pub mod webhooks;

use poem_openapi::Tags;

use crate::state::AppState;

/// Groups of operations in Swagger UI.
/// In the order a user meets them; `spec::order_tags` keeps Swagger UI's
/// groups in this order.
#[derive(Tags)]
pub enum ApiTags {
    /// Endpoints that receive events ("webhooks"), their tests, logs and stats.
    Webhooks,
    /// Publishing events and following their deliveries.
    Events,
    /// The delivery log: find, inspect and retry deliveries.
    Deliveries,
    /// The event types a tenant can publish and subscribe to.
    EventTypes,
    /// Who a credential is, and portal links: the console for a tenant's
    /// customers.
    Access,
    /// Managing tenants and their API keys (admin key only).
    Tenants,
    /// Operating the fleet (admin key only).
    Admin,
    /// Liveness and readiness probes.
    Health,
}

/// Every API service, for `OpenApiService::new`, in the order their
/// operations appear in the spec (the webhooks' as one nested tuple).
pub fn all(
    state: &AppState,
) -> (
    tenants::TenantsApi,
    webhooks::Apis,
    event_types::EventTypesApi,
    events::EventsApi,
    deliveries::DeliveriesApi,
    health::HealthApi,
    admin::AdminApi,
    me::MeApi,
    portal::PortalApi,
) {
    (
        tenants::TenantsApi {
            state: state.clone(),
        },
        webhooks::all(state),
        event_types::EventTypesApi {
            state: state.clone(),
        },
        events::EventsApi {
            state: state.clone(),
        },
        deliveries::DeliveriesApi {
            state: state.clone(),
        },
        health::HealthApi {
            state: state.clone(),
        },
        admin::AdminApi {
            state: state.clone(),
        },
        me::MeApi {
            state: state.clone(),
        },
        portal::PortalApi {
            state: state.clone(),
        },
    )
}

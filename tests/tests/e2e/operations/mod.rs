mod delivery_ops;
mod finding;
mod replays;
mod retention_quotas;
mod tenant_lifecycle;

mod delivery_ops;
mod finding;
mod replays;
mod tenant_lifecycle;
mod retention_quotas;

/// The id layout the Lua scripts slice ids by, run in Redis.
mod id_layout;
/// The plain-command modules (caps, tenants and keys, event types, the
/// worker registry, notices) and a retry whose endpoint is gone.
mod records;

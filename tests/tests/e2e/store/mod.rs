/// The id layout the Lua scripts slice ids by, run in Redis.
mod id_layout;

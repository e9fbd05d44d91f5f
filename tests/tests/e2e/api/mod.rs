mod auth;
mod framing;
mod isolation;
mod pool;
mod portal;
mod scopes;
mod spec;

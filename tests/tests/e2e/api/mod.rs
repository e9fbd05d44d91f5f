mod auth;
mod framing;
mod isolation;
mod pool;
mod spec;

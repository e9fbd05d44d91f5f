mod circuit_breaker;
mod crud;
mod pause;
mod ssrf;

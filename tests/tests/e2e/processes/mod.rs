mod binaries;
mod crash;
mod observability;
mod redis_outage;

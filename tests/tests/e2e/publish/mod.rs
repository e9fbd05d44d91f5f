mod batch;
mod exact_payloads;
mod index_cache;
mod retention;
mod storage;

mod batch;
mod exact_payloads;
mod retention;
mod storage;

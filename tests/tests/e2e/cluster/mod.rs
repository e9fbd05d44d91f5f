mod fanout;
mod slots;

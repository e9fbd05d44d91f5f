mod delivery_ops;
mod finding;
mod replays;

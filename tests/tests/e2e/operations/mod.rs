mod delivery_ops;
mod replays;

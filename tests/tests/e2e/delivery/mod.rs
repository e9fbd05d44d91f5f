mod end_to_end;
mod invariants;
mod noisy_neighbour;
mod rate_limit;
mod receiving;
mod test_sends;

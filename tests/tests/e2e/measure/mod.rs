mod aof_loss;
mod memory;

mod delivery_ops;

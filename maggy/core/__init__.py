"""maggy's runtime: the driver, its executors, and the channel between them."""

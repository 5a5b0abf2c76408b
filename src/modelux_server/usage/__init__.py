"""Monthly request metering: exact admission counters and their durable ledger."""

"""Plans, entitlements and billing."""

"""Enterprise plans: made per customer by the operator, versioned, with their terms."""

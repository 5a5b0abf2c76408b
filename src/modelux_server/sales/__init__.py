"""Talk to sales: an organization's inquiry about a custom plan, stored and emailed to sales."""
